"""Measure what teei.db_rollout.pg_migrate costs, as ratios in one run (measures; asserts nothing).

    .venv/bin/python benchmarks/engine.py [--small 20] [--large 200] [--applied 10000] [--repeat 3]

1. Marginal cost per migration: a set of --small and one of --large small migrations (a table,
   rows, an index, a verification each) applied through pg_migrate, and the same files run by one
   psql session, each file in BEGIN..COMMIT with a history row. The marginal cost is
   (time(large) - time(small)) / (large - small); printed is engine / psql. Runs alternate between
   the two, and each figure is the median of --repeat runs.
2. ``state: status`` and a no-op apply of a set of --applied migrations that are all applied
   (history rows written directly), wall time of the ad hoc ansible run, median of --repeat.
3. The same at 10 and 1,000 migrations, to show the cost is linear in the set's size.
"""

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import pgcluster  # noqa: E402
from conftest import Database  # noqa: E402


def migration(i):
    return ("CREATE TABLE bench_%d (id int PRIMARY KEY, label text NOT NULL);\n"
            "INSERT INTO bench_%d SELECT g, 'row ' || g FROM generate_series(1, 100) g;\n"
            "CREATE INDEX bench_%d_label ON bench_%d (label);\n" % (i, i, i, i))


def verification(i):
    return "DO $$ BEGIN IF (SELECT count(*) FROM bench_%d) <> 100 THEN RAISE EXCEPTION 'bench_%d'; END IF; END $$;\n" \
        % (i, i)


def write_set(base, count, with_bodies=True):
    root = os.path.join(base, "%s_%d" % ("set" if with_bodies else "tiny", count))
    os.makedirs(os.path.join(root, "verify"))
    for i in range(1, count + 1):
        name = "%05d_bench_%d" % (i, i)
        with open(os.path.join(root, name + ".sql"), "w") as handle:
            handle.write(migration(i) if with_bodies else "SELECT %d;\n" % i)
        if with_bodies:
            with open(os.path.join(root, "verify", name + ".sql"), "w") as handle:
                handle.write(verification(i))
    return root


def fresh(cluster, name):
    cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    cluster.psql('CREATE DATABASE "%s"' % name)
    return Database(cluster, name)


def engine_apply(cluster, path):
    db = fresh(cluster, "bench_engine")
    started = time.monotonic()
    result, proc = db.pg_migrate(path=path, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit("pg_migrate failed: %s" % result.get("msg"))
    return time.monotonic() - started


def psql_apply(cluster, path):
    """One psql session: each file and its verification in BEGIN..COMMIT with a history row."""
    db = fresh(cluster, "bench_psql")
    names = sorted(f[:-4] for f in os.listdir(path) if f.endswith(".sql"))
    script = ["\\set ON_ERROR_STOP on",
              "CREATE TABLE schema_migrations (version varchar(255) PRIMARY KEY, "
              "applied_at timestamptz NOT NULL DEFAULT now(), checksum char(64));"]
    for name in names:
        with open(os.path.join(path, name + ".sql"), "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        script += ["BEGIN;", "\\i %s" % os.path.join(path, name + ".sql"),
                   "\\i %s" % os.path.join(path, "verify", name + ".sql"),
                   "INSERT INTO schema_migrations (version, checksum) VALUES ('%s', '%s');" % (name, digest), "COMMIT;"]
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write("\n".join(script) + "\n")
    started = time.monotonic()
    subprocess.run([os.path.join(cluster.bindir, "psql"), "-q", "-X", "-h", cluster.host, "-p", str(cluster.port),
                    "-U", cluster.user, "-d", db.name, "-f", handle.name], env=cluster.env(), check=True,
                   stdout=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    os.unlink(handle.name)
    return elapsed


def all_applied(cluster, base, count):
    """A database whose history table holds every migration of a set of count tiny migrations."""
    path = write_set(base, count, with_bodies=False)
    db = fresh(cluster, "bench_status_%d" % count)
    result, proc = db.pg_migrate(path=path, target="%05d_bench_1" % 1, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit("pg_migrate failed: %s" % result.get("msg"))
    db.psql("INSERT INTO schema_migrations (version, checksum, migration_set, run_id) "
            "SELECT format('%%s_bench_%%s', lpad(g::text, 5, '0'), g), encode(sha256(convert_to(format('SELECT %%s;' "
            "|| chr(10), g), 'UTF8')), 'hex'), 'tiny_%d', 'bench' FROM generate_series(2, %d) g" % (count, count))
    return db, path


def timed_module(db, path, **args):
    started = time.monotonic()
    result, proc = db.pg_migrate(path=path, timeout=3600, **args)
    if proc.returncode != 0 or result.get("changed"):
        raise SystemExit("pg_migrate %s failed or changed: %s" % (args, result.get("msg")))
    return time.monotonic() - started


def median(values):
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=200)
    parser.add_argument("--applied", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="engine-bench-")
    with pgcluster.Cluster.start() as cluster:
        sets = dict((n, write_set(base, n)) for n in (args.small, args.large))
        runs = dict(((tool, n), []) for tool in ("engine", "psql") for n in sets)
        for dummy in range(args.repeat):
            for n, path in sorted(sets.items()):
                runs[("engine", n)].append(engine_apply(cluster, path))
                runs[("psql", n)].append(psql_apply(cluster, path))
        marginal = {}
        for tool in ("engine", "psql"):
            small, large = median(runs[(tool, args.small)]), median(runs[(tool, args.large)])
            marginal[tool] = (large - small) / (args.large - args.small)
            print("%-6s apply: %d migrations %.2f s, %d migrations %.2f s; marginal %.1f ms per migration"
                  % (tool, args.small, small, args.large, large, marginal[tool] * 1000))
        print("marginal cost per migration, engine / psql: %.2f (target <= 1.15)" % (marginal["engine"] / marginal["psql"]))

        sizes = sorted(set([10, 1000, args.applied]))
        for size in sizes:
            db, path = all_applied(cluster, base, size)
            status = [timed_module(db, path, state="status") for dummy in range(args.repeat)]
            noop = [timed_module(db, path) for dummy in range(args.repeat)]
            print("%6d applied migrations: state status %.2f s, no-op apply %.2f s (medians of %d)"
                  % (size, median(status), median(noop), args.repeat))


if __name__ == "__main__":
    main()
