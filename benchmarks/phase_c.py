"""Measure the Phase C rollout through teei.db_rollout.pg_migrate at a chosen scale.

    .venv/bin/python benchmarks/phase_c.py --companies 20000 --users-per-company 4 --repeat 3

Starts a throwaway cluster with the harness, loads the fixtures at that scale,
then for each repeat: applies the set, rolls it back (target none), and prints
the wall time of each ansible run and the engine's own per-migration
duration_ms. Measures only; asserts nothing.
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import pgcluster  # noqa: E402
from conftest import Database  # noqa: E402

PHASE_C = os.path.join(ROOT, "migrations", "phase_c")


def timed(db, **args):
    started = time.monotonic()
    result, proc = db.pg_migrate(path=PHASE_C, timeout=3600, **args)
    if proc.returncode != 0:
        raise SystemExit("pg_migrate failed: %s" % result.get("msg"))
    return time.monotonic() - started, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=20000)
    parser.add_argument("--users-per-company", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with pgcluster.Cluster.start() as cluster:
        started = time.monotonic()
        cluster.load_fixtures("bench", companies=args.companies, users_per_company=args.users_per_company)
        print("fixtures: %d companies, %d users loaded in %.1f s"
              % (args.companies, args.companies * args.users_per_company, time.monotonic() - started))
        db = Database(cluster, "bench")
        walls = {"apply": [], "rollback": []}
        per_migration = {}
        for run in range(args.repeat):
            wall, result = timed(db)
            walls["apply"].append(wall)
            for entry in result["migrations"]:
                per_migration.setdefault(entry["version"], []).append(entry["duration_ms"])
            wall, result = timed(db, state="rolled_back", target="none")
            walls["rollback"].append(wall)
        for name, values in walls.items():
            print("%-8s wall (ansible run, median of %d): %.2f s  [%s]"
                  % (name, len(values), statistics.median(values), ", ".join("%.2f" % v for v in values)))
        for version, values in per_migration.items():
            print("  %-36s apply+verify median %6d ms" % (version, statistics.median(values)))


if __name__ == "__main__":
    main()
