"""A stand-in for the application: one query after another as cockpit_app, through a
PgBouncer, from before the rollout until after it, writing one JSON line per query
(and per error) to a log that the pgbouncer scenario's verifiers read.

    app_client.py start --pidfile P --log L --host H --port N --dbname D --user U
    app_client.py stop  --pidfile P

``start`` forks the loop into the background, returns once its first query has
answered, and leaves its pid in P. The password comes from the libpq password file
named by $PGPASSFILE, never from the command line. ``stop`` ends the loop (SIGTERM:
it finishes the query it is in and writes a last line with its counts) and waits for
it; shared/destroy.yml runs it for every pid file it finds.
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time

import psycopg2

QUERY = "SELECT count(*) FROM companies"
PAUSE_SECONDS = 0.1
START_TIMEOUT = 30
STOP_TIMEOUT = 60


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Loop(object):
    """The query loop; ``stopping`` is set by SIGTERM."""

    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.stopping = False
        self.queries = 0
        self.errors = 0

    def write(self, **line):
        self.log.write(json.dumps(line, sort_keys=True) + "\n")
        self.log.flush()

    def connect(self):
        return psycopg2.connect(host=self.args.host, port=self.args.port, dbname=self.args.dbname,
                                user=self.args.user, connect_timeout=10, application_name="molecule_app_client")

    def run(self):
        signal.signal(signal.SIGTERM, self.stop)
        conn = None
        while not self.stopping:
            started = now()
            try:
                if conn is None:
                    conn = self.connect()
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(QUERY)
                    cur.fetchone()
                self.queries += 1
                self.write(started=started, answered=now(), ok=True)
            except psycopg2.Error as exc:
                self.errors += 1
                self.write(started=started, failed=now(), ok=False, error=str(exc).strip())
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(PAUSE_SECONDS)
        self.write(done=now(), queries=self.queries, errors=self.errors)

    def stop(self, *_):
        self.stopping = True


def read_log(path):
    """The lines a loop wrote: (query lines, the final counts or None)."""
    lines = []
    with open(path) as handle:
        for line in handle:
            lines.append(json.loads(line))
    final = lines[-1] if lines and "done" in lines[-1] else None
    return [line for line in lines if "done" not in line], final


def start(args):
    if not os.environ.get("PGPASSFILE"):
        raise SystemExit("app_client: set PGPASSFILE to a password file for %s" % args.user)
    log = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "run"] + args.forward,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    os.close(log)
    with open(args.pidfile, "w") as handle:
        handle.write("%d\n" % child.pid)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit("app_client: the loop ended at once (exit %s); see %s" % (child.returncode, args.log))
        queries, _ = read_log(args.log) if os.path.getsize(args.log) else ([], None)
        if any(line["ok"] for line in queries):
            print(json.dumps(dict(pid=child.pid, log=args.log)))
            return 0
        time.sleep(PAUSE_SECONDS)
    child.terminate()
    raise SystemExit("app_client: no query answered within %d s; see %s" % (START_TIMEOUT, args.log))


def stop(args):
    if not os.path.exists(args.pidfile):
        return 0
    with open(args.pidfile) as handle:
        pid = int(handle.read())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while _running(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(PAUSE_SECONDS)
    os.unlink(args.pidfile)
    return 0


def _running(pid):
    """Whether the process is alive (an exited one waiting to be reaped is not)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "run"):
        cmd = sub.add_parser(name)
        if name == "start":
            cmd.add_argument("--pidfile", required=True)
            cmd.add_argument("--log", required=True)
        cmd.add_argument("--host", required=True)
        cmd.add_argument("--port", type=int, required=True)
        cmd.add_argument("--dbname", required=True)
        cmd.add_argument("--user", required=True)
    stop_cmd = sub.add_parser("stop")
    stop_cmd.add_argument("--pidfile", required=True)
    args = parser.parse_args(argv)
    if args.command == "start":
        args.forward = ["--host", args.host, "--port", str(args.port), "--dbname", args.dbname, "--user", args.user]
        return start(args)
    if args.command == "run":
        Loop(args, sys.stdout).run()
        return 0
    return stop(args)


if __name__ == "__main__":
    sys.exit(main())
