"""Measure the rollout over a fleet: database per tenant on one harness cluster, found by the
teei.db_rollout.pg_databases inventory plugin.

    .venv/bin/python benchmarks/fleet.py                      # all three measurements
    .venv/bin/python benchmarks/fleet.py --only fleet --databases 200 --forks 10

1. fleet:  playbooks/rollout.yml over --databases tenant databases (default 200) with --forks (10):
           wall time, time per database, peak memory of the controller (ansible-playbook and its workers).
2. forks:  a fleet of 8 in one wave with forks 8 against forks 1 (issue 11 targets at least 2.5 times faster),
           with the ceiling the controller's CPU and cores put on that ratio.
3. noop:   rollout.yml when nothing is pending against a one-task playbook that only connects
           (community.postgresql.postgresql_ping), same 8 databases (issue 11 targets at most 3 times).

Tenants are copies (CREATE DATABASE ... TEMPLATE, in one session) of one database loaded with the
fixtures at --companies. Measures only; asserts nothing. Any failed run is reported, not hidden.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import pgcluster  # noqa: E402
from conftest import VENV_BIN, ansible_env  # noqa: E402
from tenants import create_tenant_databases, write_fleet_inventory  # noqa: E402

TEMPLATE = "fleet_template"
ROLLOUT = os.path.join(ROOT, "playbooks", "rollout.yml")
RECORD_CALLBACK = os.path.join(ROOT, "plugins", "callback", "rollout_record.py")
PAGE = os.sysconf("SC_PAGE_SIZE")
PING_PLAYBOOK = """---
- name: Only connect to every database
  hosts: databases
  gather_facts: false
  tasks:
    - name: Connect to the database
      community.postgresql.postgresql_ping:
        login_host: "{{ db_host }}"
        login_port: "{{ db_port }}"
        login_user: "{{ db_user }}"
        login_db: "{{ db_name }}"
      delegate_to: localhost
"""


class TreeMemory(threading.Thread):
    """Samples the memory of a process and all its descendants; keeps the peak.

    RSS counts the pages forked workers share with ansible-playbook once per process; PSS (from
    /proc/PID/smaps_rollup) divides shared pages among their sharers, so its sum is what the tree costs."""

    def __init__(self, pid, interval=0.2):
        super(TreeMemory, self).__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self.done = threading.Event()

    def _tree(self):
        children = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def run(self):
        while not self.done.is_set():
            total = pss = 0
            tree = self._tree()
            for pid in tree:
                try:
                    with open("/proc/%d/statm" % pid) as handle:
                        total += int(handle.read().split()[1]) * PAGE
                    with open("/proc/%d/smaps_rollup" % pid) as handle:
                        pss += sum(int(line.split()[1]) * 1024 for line in handle if line.startswith("Pss:"))
                except (OSError, IndexError, ValueError):
                    pass
            if total > self.peak:
                self.peak, self.peak_processes = total, len(tree)
            self.peak_pss = max(self.peak_pss, pss)
            self.done.wait(self.interval)


def playbook(playbook_path, inventory, workdir, forks, label, extra_vars=None):
    """Run ansible-playbook; return wall seconds, peak tree memory, rc and the log path."""
    log = os.path.join(workdir, "%s.log" % label)
    env = ansible_env({"ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                       "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    if os.path.exists(RECORD_CALLBACK):
        env["ANSIBLE_CALLBACKS_ENABLED"] = "teei.db_rollout.rollout_record"
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "--forks", str(forks), playbook_path]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        memory = TreeMemory(proc.pid)
        memory.start()
        rc = proc.wait()
        wall = time.monotonic() - started
        memory.done.set()
        memory.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if rc != 0:
        with open(log) as handle:
            tail = handle.read()[-3000:]
        print("  !! %s FAILED (rc %d); the end of %s:\n%s" % (label, rc, log, tail))
    return dict(wall=wall, cpu=cpu, peak=memory.peak, pss=memory.peak_pss, processes=memory.peak_processes,
                rc=rc, log=log,
                load=os.getloadavg()[0])


def rollout_vars(workdir, run):
    return dict(rollout_environment="local", rollout_operator="bench", change_ticket="CHG0001",
                backup_dir=os.path.join(workdir, "backups", run), rollout_record_dir=os.path.join(workdir, "records"))


def fleet_inventory(cluster, workdir, name, pattern):
    return write_fleet_inventory(os.path.join(workdir, "%s.pg_databases.yml" % name),
                                 [dict(name="pg1", host=cluster.host, port=cluster.port, user=cluster.user)],
                                 databases=[pattern])


def migrated(cluster, names):
    """How many of the databases hold all six Phase C migrations."""
    import psycopg2
    count = 0
    for name in names:
        conn = psycopg2.connect(cluster.dsn(name))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
                if cur.fetchone()[0]:
                    cur.execute("SELECT count(*) FROM public.schema_migrations WHERE migration_set = 'phase_c'")
                    count += cur.fetchone()[0] == 6
        finally:
            conn.close()
    return count


def mib(nbytes):
    return nbytes / 1048576.0


def bench_fleet(cluster, workdir, databases, forks):
    started = time.monotonic()
    names = create_tenant_databases(cluster, "tenant_%04d", databases, template=TEMPLATE)
    print("fleet: %d tenant databases created from %s in %.1f s (one session)"
          % (databases, TEMPLATE, time.monotonic() - started))
    inventory = fleet_inventory(cluster, workdir, "fleet", "tenant_*")
    listing = subprocess.run([os.path.join(VENV_BIN, "ansible-inventory"), "-i", inventory, "--list"],
                             capture_output=True, text=True, env=ansible_env(), cwd=ROOT)
    found = len(json.loads(listing.stdout).get("databases", {}).get("hosts", [])) if listing.returncode == 0 else 0
    print("fleet: the inventory plugin found %d databases" % found)
    run = playbook(ROLLOUT, inventory, workdir, forks, "fleet-rollout", rollout_vars(workdir, "fleet"))
    print("fleet: rollout.yml over %d databases, forks %d: wall %.1f s, %.2f s per database, "
          "controller CPU %.1f s (%.2f s per database), peak controller memory %.0f MiB PSS (%.0f MiB RSS "
          "summed over %d processes), rc %d; %d/%d databases at 006; load average %.1f on %d cores"
          % (databases, forks, run["wall"], run["wall"] / databases, run["cpu"], run["cpu"] / databases,
             mib(run["pss"]), mib(run["peak"]), run["processes"], run["rc"], migrated(cluster, names), databases,
             run["load"], os.cpu_count()))
    return run


def bench_forks_and_noop(cluster, workdir):
    # One wave (rollout_waves ['100%']) so that only forks differ; the default waves (1, 25%, the rest) make
    # the canary and the second wave wait for each other whatever the forks.
    for prefix in ("forks8", "forks1"):
        create_tenant_databases(cluster, prefix + "_%d", 8, template=TEMPLATE)
    one_wave = dict(rollout_waves=["100%"])
    wide = playbook(ROLLOUT, fleet_inventory(cluster, workdir, "forks8", "forks8_*"), workdir, 8, "forks8",
                    dict(rollout_vars(workdir, "forks8"), **one_wave))
    narrow = playbook(ROLLOUT, fleet_inventory(cluster, workdir, "forks1", "forks1_*"), workdir, 1, "forks1",
                      dict(rollout_vars(workdir, "forks1"), **one_wave))
    # What the machine allows: forks 1 spends its controller CPU one database after another; forks 8 can at
    # best spread that CPU over the cores, so the speed-up cannot pass wall(forks 1) / (CPU / cores).
    cores = os.cpu_count()
    ceiling = narrow["wall"] / max(narrow["cpu"] / cores, narrow["wall"] / 8)
    print("forks: fleet of 8 in one wave, rollout.yml: forks 8 %.1f s, forks 1 %.1f s: forks 8 is %.2f times "
          "faster (target >= 2.5); controller CPU %.1f s and %.1f s (%.0f%% of forks 1's wall), so %d cores allow "
          "at most %.2f times; load average %.1f%s"
          % (wide["wall"], narrow["wall"], narrow["wall"] / wide["wall"], wide["cpu"], narrow["cpu"],
             100 * narrow["cpu"] / narrow["wall"], cores, ceiling, narrow["load"],
             "" if wide["rc"] == narrow["rc"] == 0 else "  [a run FAILED: see above]"))

    inventory = os.path.join(workdir, "forks8.pg_databases.yml")
    ping_path = os.path.join(workdir, "ping.yml")
    with open(ping_path, "w") as handle:
        handle.write(PING_PLAYBOOK)
    noop = playbook(ROLLOUT, inventory, workdir, 8, "noop-rollout", rollout_vars(workdir, "noop"))
    ping = playbook(ping_path, inventory, workdir, 8, "ping")
    print("noop: fleet of 8, forks 8: rollout.yml with nothing pending %.1f s, postgresql_ping only %.1f s: "
          "%.2f times (target <= 3); controller CPU %.1f s and %.1f s%s"
          % (noop["wall"], ping["wall"], noop["wall"] / ping["wall"], noop["cpu"], ping["cpu"],
             "" if noop["rc"] == ping["rc"] == 0 else "  [a run FAILED: see above]"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", type=int, default=200)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--companies", type=int, default=20, help="fixture scale of each tenant database")
    parser.add_argument("--only", choices=["fleet", "forks"], help="run one measurement (forks includes noop)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="teei-fleet-bench-")
    os.chmod(workdir, 0o700)
    print("fleet bench: work folder %s (logs, backups, records)" % workdir)
    with pgcluster.Cluster.start() as cluster:
        # The harness allows 50 connections; forks 10 use at most a few each.
        cluster.load_fixtures(TEMPLATE, companies=args.companies)
        if args.only in (None, "forks"):
            bench_forks_and_noop(cluster, workdir)
        if args.only in (None, "fleet"):
            bench_fleet(cluster, workdir, args.databases, args.forks)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("largest single child process: %.0f MiB resident at its peak" % (usage.ru_maxrss / 1024.0))


if __name__ == "__main__":
    main()
