"""A database-per-tenant fleet on one harness cluster, and the pg_databases inventory that finds it.

    names = create_tenant_databases(cluster, "tenant_%03d", 200, template="fixture_template")
    write_fleet_inventory(path, [dict(name="pg1", host=cluster.host, port=cluster.port)],
                          databases=["tenant_*"])
    drop_databases(cluster, names)

Used by the fleet tests and benchmarks/fleet.py, so that both build fleets one way.
"""

import psycopg2
import yaml


def _session(cluster):
    conn = psycopg2.connect(cluster.dsn("postgres"))
    conn.autocommit = True
    return conn


def create_databases(cluster, names, template=None):
    """CREATE DATABASE each name (from ``template`` when given) in one session; return the names."""
    conn = _session(cluster)
    try:
        with conn.cursor() as cur:
            for name in names:
                if template:
                    cur.execute('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, template))
                else:
                    cur.execute('CREATE DATABASE "%s"' % name)
    finally:
        conn.close()
    return list(names)


def create_tenant_databases(cluster, pattern, count, template=None, start=1):
    """``count`` databases named ``pattern % n`` (n from ``start``), copies of ``template``."""
    return create_databases(cluster, [pattern % n for n in range(start, start + count)], template)


def drop_databases(cluster, names):
    conn = _session(cluster)
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    finally:
        conn.close()


def write_fleet_inventory(path, servers, **options):
    """Write a teei.db_rollout.pg_databases configuration; ``path`` must end in pg_databases.yml."""
    path = str(path)
    if not path.endswith("pg_databases.yml"):
        raise ValueError("the plugin reads only files named *pg_databases.yml, not %s" % path)
    config = dict(plugin="teei.db_rollout.pg_databases", servers=servers)
    config.update(options)
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle, default_flow_style=False, sort_keys=False)
    return path
