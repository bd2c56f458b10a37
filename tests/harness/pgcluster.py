"""Throwaway PostgreSQL 15 clusters for tests, the demo and molecule.

The one place that knows how to start, load and remove a local cluster:

    with Cluster.start(auth="trust") as pg:        # context manager: always removed
        pg.load_fixtures(companies=200)
        pg.psql("SELECT 1")

and from the shell (the demo and molecule use this):

    python tests/harness/pgcluster.py start --dir .demo/pg --fixtures --companies 50
    python tests/harness/pgcluster.py info  --dir .demo/pg
    python tests/harness/pgcluster.py stop  --dir .demo/pg
    python tests/harness/pgcluster.py load  --dir .demo/pg --dbname tenant_b   # another fixture database
    python tests/harness/pgcluster.py schema --dir .demo/pg --dbname cockpit   # its schema dump

initdb refuses root, so when the caller is root every server command runs as
the ``postgres`` OS user and the data directory is owned by it. The binaries
are found under /usr/lib/postgresql/15/bin, $PG_BINDIR, or through pg_config.
"""

import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PG_MAJOR = "15"
SHARED_DIR = os.environ.get(
    "TEEI_SHARED_DIR",
    os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")),
)
FIXTURE_SCHEMA = os.path.join(SHARED_DIR, "fixtures", "pre_phase_c_schema.sql")
FIXTURE_DATA = os.path.join(SHARED_DIR, "fixtures", "pre_phase_c_data.sql")
STATE_FILE = "cluster.json"
SUPERUSER = "postgres"


class HarnessError(RuntimeError):
    pass


def find_bindir():
    """Return the directory holding PostgreSQL 15's initdb and pg_ctl."""
    candidates = [os.environ.get("PG_BINDIR"), "/usr/lib/postgresql/%s/bin" % PG_MAJOR]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    for cand in candidates:
        if cand and os.path.isfile(os.path.join(cand, "initdb")) and os.path.isfile(os.path.join(cand, "pg_ctl")):
            return cand
    raise HarnessError(
        "PostgreSQL %s server binaries not found (looked in %s). Install Debian's "
        "postgresql-%s (apt-get install postgresql-%s) or set PG_BINDIR."
        % (PG_MAJOR, ", ".join(c for c in candidates if c), PG_MAJOR, PG_MAJOR))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(cmd):
    """Prefix a command so that it runs as the postgres OS user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def _chown_to_server_user(path):
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(cmd, env=None, input_text=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, input=input_text, check=False)
    if proc.returncode != 0:
        raise HarnessError("%s failed (exit %d): %s%s" % (" ".join(cmd[:6]), proc.returncode,
                                                          proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc.stdout


class Cluster(object):
    """A local PostgreSQL cluster living in ``base`` (data/, socket/, log)."""

    def __init__(self, base, port, auth, password, bindir, owns_base=True):
        self.base = base
        self.port = port
        self.auth = auth
        self.password = password
        self.bindir = bindir
        self.owns_base = owns_base
        self.host = "127.0.0.1"
        self.user = SUPERUSER

    # -- paths -------------------------------------------------------------
    @property
    def datadir(self):
        return os.path.join(self.base, "data")

    @property
    def socketdir(self):
        return os.path.join(self.base, "socket")

    @property
    def logfile(self):
        return os.path.join(self.base, "server.log")

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def start(cls, base=None, port=None, auth="trust", password=None):
        """initdb and start a cluster; ``base`` defaults to a new temporary folder."""
        if auth not in ("trust", "scram-sha-256"):
            raise HarnessError("auth must be trust or scram-sha-256, not %r" % auth)
        bindir = find_bindir()
        owns_base = base is None
        if base is None:
            base = tempfile.mkdtemp(prefix="teei-pg-")
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o755)
        if auth == "scram-sha-256" and not password:
            password = "harness-" + os.urandom(8).hex()
        if os.geteuid() == 0 and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", base],
                                                check=False).returncode != 0:
            raise HarnessError("the postgres OS user cannot reach %s (a parent directory is closed to it, "
                               "like /root); put the cluster elsewhere" % base)
        cluster = cls(os.path.abspath(base), port or free_port(), auth, password, bindir, owns_base)
        try:
            cluster._initdb()
            cluster._pg_ctl_start()
            cluster._save_state()
        except BaseException:
            cluster.remove()
            raise
        return cluster

    @classmethod
    def attach(cls, base):
        """Return the cluster whose state was saved in ``base`` by ``start``."""
        with open(os.path.join(base, STATE_FILE)) as handle:
            state = json.load(handle)
        return cls(state["base"], state["port"], state["auth"], state.get("password"),
                   state["bindir"], owns_base=False)

    def _initdb(self):
        for sub in (self.datadir, self.socketdir):
            os.makedirs(sub, exist_ok=True)
            os.chmod(sub, 0o700)
            _chown_to_server_user(sub)
        cmd = [os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", SUPERUSER,
               "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--auth=%s" % self.auth]
        pwfile = None
        if self.password:
            fd, pwfile = tempfile.mkstemp(prefix="pw-", dir=self.socketdir)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.password + "\n")
            _chown_to_server_user(pwfile)
            cmd.append("--pwfile=%s" % pwfile)
        try:
            _run(_as_server_user(cmd))
        finally:
            if pwfile:
                os.unlink(pwfile)
        with open(os.path.join(self.datadir, "postgresql.auto.conf"), "a") as conf:
            conf.write("listen_addresses = '127.0.0.1'\n"
                       "port = %d\n"
                       "unix_socket_directories = '%s'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "max_connections = 50\nshared_buffers = 64MB\n"
                       "log_min_messages = warning\n" % (self.port, self.socketdir))
        if self.auth == "trust":
            hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        else:
            hba = ("local all all scram-sha-256\n"
                   "host all all 127.0.0.1/32 scram-sha-256\n")
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as conf:
            conf.write(hba)

    def _pg_ctl_start(self):
        logfile = self.logfile
        if not os.path.exists(logfile):
            open(logfile, "a").close()
            _chown_to_server_user(logfile)
        _run(_as_server_user([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-l", logfile,
                              "-w", "-t", "60", "-o", "-c port=%d" % self.port, "start"]))

    def stop(self):
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            subprocess.run(_as_server_user([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir,
                                            "-m", "immediate", "-w", "-t", "30", "stop"]),
                           capture_output=True, check=False)

    def remove(self):
        """Stop the server and delete everything it had on disk."""
        self.stop()
        if self.owns_base:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            for sub in (self.datadir, self.socketdir, self.logfile, os.path.join(self.base, STATE_FILE)):
                if os.path.isdir(sub):
                    shutil.rmtree(sub, ignore_errors=True)
                elif os.path.exists(sub):
                    os.unlink(sub)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def _save_state(self):
        path = os.path.join(self.base, STATE_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.info(), handle, indent=2)

    # -- use ---------------------------------------------------------------
    def info(self):
        return {"base": self.base, "port": self.port, "host": self.host, "user": self.user,
                "auth": self.auth, "password": self.password, "bindir": self.bindir,
                "datadir": self.datadir, "socketdir": self.socketdir}

    def env(self):
        """Environment for libpq clients (psql, pg_dump) run by the caller."""
        env = dict(os.environ, PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)
        if self.password:
            env["PGPASSWORD"] = self.password
        else:
            env.pop("PGPASSWORD", None)
        return env

    def dsn(self, dbname="postgres", user=None, password=None):
        parts = ["host=%s" % self.host, "port=%d" % self.port, "dbname=%s" % dbname,
                 "user=%s" % (user or self.user)]
        pw = password if password is not None else (self.password if user in (None, self.user) else None)
        if pw:
            parts.append("password=%s" % pw)
        return " ".join(parts)

    def psql(self, sql=None, dbname="postgres", file=None, variables=None, tuples=True):
        """Run psql with ON_ERROR_STOP; return its stdout (unaligned, tuples only)."""
        cmd = [os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbname]
        if tuples:
            cmd += ["-A", "-t"]
        for key, value in sorted((variables or {}).items()):
            cmd += ["-v", "%s=%s" % (key, value)]
        if file:
            cmd += ["-f", file]
        else:
            cmd += ["-c", sql]
        return _run(cmd, env=self.env()).strip()

    def create_database(self, dbname):
        self.psql('CREATE DATABASE "%s"' % dbname)
        return dbname

    def load_fixtures(self, dbname="cockpit", companies=50, users_per_company=4, sessions_per_user=1):
        """Create ``dbname`` and load the pre-Phase-C schema and data into it at this scale."""
        self.create_database(dbname)
        self.psql(dbname=dbname, file=FIXTURE_SCHEMA)
        self.psql(dbname=dbname, file=FIXTURE_DATA, variables={
            "companies": companies, "users_per_company": users_per_company,
            "sessions_per_user": sessions_per_user})
        return dbname

    def pg_dump_schema(self, dbname, exclude_tables=()):
        """``pg_dump --schema-only`` (without ``exclude_tables``) with pg_dump 15.18's random
        \\restrict lines removed."""
        out = _run([os.path.join(self.bindir, "pg_dump"), "--schema-only", "--no-owner", "-d", dbname]
                   + ["--exclude-table=%s" % table for table in exclude_tables], env=self.env())
        return "\n".join(line for line in out.splitlines()
                         if not line.startswith("\\restrict") and not line.startswith("\\unrestrict"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="initdb and start a cluster in --dir (kept until stop)")
    start.add_argument("--dir", required=True)
    start.add_argument("--port", type=int)
    start.add_argument("--auth", choices=["trust", "scram-sha-256"], default="trust")
    start.add_argument("--fixtures", action="store_true", help="load the pre-Phase-C fixtures")
    start.add_argument("--dbname", default="cockpit")
    start.add_argument("--companies", type=int, default=50)
    start.add_argument("--users-per-company", type=int, default=4)
    for name in ("stop", "info"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--dir", required=True)
    load = sub.add_parser("load", help="create another database in the cluster of --dir, with the fixtures")
    load.add_argument("--dir", required=True)
    load.add_argument("--dbname", required=True)
    load.add_argument("--companies", type=int, default=50)
    load.add_argument("--users-per-company", type=int, default=4)
    schema = sub.add_parser("schema", help="print a database's schema dump (pg_dump --schema-only)")
    schema.add_argument("--dir", required=True)
    schema.add_argument("--dbname", required=True)
    schema.add_argument("--exclude-table", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            if os.path.exists(os.path.join(args.dir, STATE_FILE)):
                cluster = Cluster.attach(args.dir)
                if not os.path.exists(os.path.join(cluster.datadir, "postmaster.pid")):
                    cluster._pg_ctl_start()
            else:
                cluster = Cluster.start(base=args.dir, port=args.port, auth=args.auth)
                cluster.owns_base = False
                if args.fixtures:
                    cluster.load_fixtures(args.dbname, companies=args.companies,
                                          users_per_company=args.users_per_company)
            print(json.dumps(dict(cluster.info(), password=None), indent=2))
        elif args.command == "load":
            Cluster.attach(args.dir).load_fixtures(args.dbname, companies=args.companies,
                                                   users_per_company=args.users_per_company)
        elif args.command == "schema":
            print(Cluster.attach(args.dir).pg_dump_schema(args.dbname, exclude_tables=args.exclude_table))
        elif args.command == "info":
            print(json.dumps(dict(Cluster.attach(args.dir).info(), password=None), indent=2))
        elif args.command == "stop":
            if os.path.exists(os.path.join(args.dir, STATE_FILE)):
                Cluster.attach(args.dir).remove()
    except HarnessError as exc:
        sys.stderr.write("pgcluster: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
