"""Throwaway PgBouncers in front of a harness cluster, for tests and molecule.

    with pgcluster.Cluster.start() as pg, PgBouncer.start(pg, databases=["cockpit"],
                                                          users={"cockpit_app": "cockpit_app"}) as bouncer:
        bouncer.show("DATABASES")                         # the admin console, as a list of dicts
        psycopg2.connect(bouncer.dsn("cockpit", "cockpit_app", "cockpit_app"))

and from the shell:

    python tests/harness/pgbouncer.py start --dir .demo/bouncer --cluster-dir .demo/pg --database cockpit
    python tests/harness/pgbouncer.py info  --dir .demo/bouncer
    python tests/harness/pgbouncer.py stop  --dir .demo/bouncer

It runs Debian's /usr/sbin/pgbouncer (or $PGBOUNCER) on a free loopback port, as the postgres
OS user when the caller is root (PgBouncer refuses root), with transaction pooling and SCRAM
authentication from an auth_file. The admin user's password is random and kept in
``admin_password_file`` (mode 0600), never on a command line.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pgcluster  # noqa: E402
from pgcluster import HarnessError, _as_server_user, _chown_to_server_user, free_port  # noqa: E402

STATE_FILE = "pgbouncer.json"
ADMIN_USER = "bouncer_admin"


def find_pgbouncer():
    for cand in (os.environ.get("PGBOUNCER"), "/usr/sbin/pgbouncer", shutil.which("pgbouncer")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise HarnessError("pgbouncer not found (looked at $PGBOUNCER and /usr/sbin/pgbouncer): install Debian's "
                       "pgbouncer package (apt-get install pgbouncer)")


def _quote(value):
    return '"%s"' % value.replace('"', '""')


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    _chown_to_server_user(path)


class PgBouncer(object):
    """One PgBouncer living in ``base`` (pgbouncer.ini, userlist.txt, log, pid)."""

    def __init__(self, base, port, admin_user, admin_password, binary, owns_base=True):
        self.base = base
        self.port = port
        self.host = "127.0.0.1"
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.binary = binary
        self.owns_base = owns_base

    @property
    def ini(self):
        return os.path.join(self.base, "pgbouncer.ini")

    @property
    def pidfile(self):
        return os.path.join(self.base, "pgbouncer.pid")

    @property
    def logfile(self):
        return os.path.join(self.base, "pgbouncer.log")

    @property
    def admin_password_file(self):
        return os.path.join(self.base, "admin_password")

    @classmethod
    def start(cls, cluster, databases, users=None, base=None, port=None, admin_user=ADMIN_USER,
              admin_password=None, pool_mode="transaction", query_wait_timeout=120, settings=None):
        """Write a configuration for ``databases`` of ``cluster`` and start PgBouncer on it.

        ``users`` maps the client users PgBouncer lets in to their passwords (it logs in to the
        cluster with the same ones); ``settings`` adds or overrides [pgbouncer] settings.
        """
        binary = find_pgbouncer()
        owns_base = base is None
        if base is None:
            base = tempfile.mkdtemp(prefix="teei-bouncer-")
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o700)
        _chown_to_server_user(base)
        if os.geteuid() == 0 and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", base],
                                                check=False).returncode != 0:
            raise HarnessError("the postgres OS user cannot reach %s (a parent directory is closed to it); put "
                               "the PgBouncer elsewhere" % base)
        bouncer = cls(os.path.abspath(base), port or free_port(), admin_user,
                      admin_password or "admin-" + os.urandom(8).hex(), binary, owns_base)
        try:
            bouncer._configure(cluster, databases, users or {}, pool_mode, query_wait_timeout, settings or {})
            bouncer._run()
            bouncer._save_state()
        except BaseException:
            bouncer.remove()
            raise
        return bouncer

    @classmethod
    def attach(cls, base):
        with open(os.path.join(base, STATE_FILE)) as handle:
            state = json.load(handle)
        with open(os.path.join(base, "admin_password")) as handle:
            password = handle.read().strip()
        return cls(state["base"], state["port"], state["admin_user"], password, state["binary"], owns_base=False)

    def _configure(self, cluster, databases, users, pool_mode, query_wait_timeout, settings):
        lines = ["[databases]"]
        for name in databases:
            lines.append("%s = host=%s port=%d dbname=%s" % (name, cluster.host, cluster.port, name))
        config = dict(listen_addr=self.host, listen_port=self.port, unix_socket_dir="", auth_type="scram-sha-256",
                      auth_file=os.path.join(self.base, "userlist.txt"), admin_users=self.admin_user,
                      pool_mode=pool_mode, query_wait_timeout=query_wait_timeout, logfile=self.logfile,
                      pidfile=self.pidfile, ignore_startup_parameters="extra_float_digits,options",
                      default_pool_size=5, max_client_conn=100, server_reset_query="")
        config.update(settings)
        lines.append("[pgbouncer]")
        lines.extend("%s = %s" % (key, value) for key, value in sorted(config.items()))
        _write_private(self.ini, "\n".join(lines) + "\n")
        userlist = dict(users)
        userlist[self.admin_user] = self.admin_password
        if cluster.password:
            userlist.setdefault(cluster.user, cluster.password)
        _write_private(os.path.join(self.base, "userlist.txt"),
                       "".join("%s %s\n" % (_quote(u), _quote(p)) for u, p in sorted(userlist.items())))
        _write_private(self.admin_password_file, self.admin_password + "\n")

    def _run(self):
        proc = subprocess.run(_as_server_user([self.binary, "-d", "-q", self.ini]), capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise HarnessError("pgbouncer failed to start (exit %d): %s%s%s" % (
                proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:], self._log_tail()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise HarnessError("pgbouncer did not listen on %s:%d within 30 s%s" % (self.host, self.port, self._log_tail()))

    def _log_tail(self):
        try:
            with open(self.logfile) as handle:
                return "\n" + handle.read()[-2000:]
        except OSError:
            return ""

    def _pid(self):
        try:
            with open(self.pidfile) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self._pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def remove(self):
        self.stop()
        if self.owns_base:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            for name in ("pgbouncer.ini", "userlist.txt", "admin_password", STATE_FILE, "pgbouncer.log",
                         "pgbouncer.pid"):
                path = os.path.join(self.base, name)
                if os.path.exists(path):
                    os.unlink(path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def _save_state(self):
        _write_private(os.path.join(self.base, STATE_FILE), json.dumps(self.info(), indent=2))

    def info(self):
        return {"base": self.base, "host": self.host, "port": self.port, "admin_user": self.admin_user,
                "admin_password_file": self.admin_password_file, "binary": self.binary, "ini": self.ini,
                "logfile": self.logfile}

    # -- use ---------------------------------------------------------------
    def dsn(self, dbname, user, password):
        return "host=%s port=%d dbname=%s user=%s password=%s" % (self.host, self.port, dbname, user, password)

    def admin_connect(self):
        import psycopg2
        conn = psycopg2.connect(self.dsn("pgbouncer", self.admin_user, self.admin_password))
        conn.autocommit = True
        return conn

    def show(self, what):
        """``SHOW <what>`` on the admin console, as a list of dicts."""
        conn = self.admin_connect()
        try:
            cur = conn.cursor()
            cur.execute("SHOW %s" % what)
            names = [col[0] for col in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()

    def database(self, name):
        """The SHOW DATABASES row of ``name``."""
        for row in self.show("DATABASES"):
            if row["name"] == name:
                return row
        raise HarnessError("PgBouncer on port %d has no database %s" % (self.port, name))

    def admin(self, command):
        conn = self.admin_connect()
        try:
            conn.cursor().execute(command)
        finally:
            conn.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a PgBouncer in --dir in front of the cluster in --cluster-dir")
    start.add_argument("--dir", required=True)
    start.add_argument("--cluster-dir", required=True, help="a folder `pgcluster.py start` set up")
    start.add_argument("--database", action="append", required=True)
    start.add_argument("--users-file", help="a JSON file {user: password} of the client users to let in")
    start.add_argument("--port", type=int)
    start.add_argument("--pool-mode", default="transaction", choices=["session", "transaction", "statement"])
    for name in ("stop", "info"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            if os.path.exists(os.path.join(args.dir, STATE_FILE)):
                bouncer = PgBouncer.attach(args.dir)
                if bouncer._pid() is None:
                    bouncer._run()
            else:
                users = {}
                if args.users_file:
                    with open(args.users_file) as handle:
                        users = json.load(handle)
                bouncer = PgBouncer.start(pgcluster.Cluster.attach(args.cluster_dir), args.database, users=users,
                                          base=args.dir, port=args.port, pool_mode=args.pool_mode)
                bouncer.owns_base = False
            print(json.dumps(bouncer.info(), indent=2))
        elif args.command == "info":
            print(json.dumps(PgBouncer.attach(args.dir).info(), indent=2))
        elif args.command == "stop":
            if os.path.exists(os.path.join(args.dir, STATE_FILE)):
                PgBouncer.attach(args.dir).remove()
    except HarnessError as exc:
        sys.stderr.write("pgbouncer: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
