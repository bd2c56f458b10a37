# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database side of teei.db_rollout.pg_review.

- ``read_catalog``: on a read-only session of the live database, the server version, which of the
  set's versions the history table records, and for each table a migration touches its row
  estimate, sizes, indexes, and the sessions holding locks on it with the age of their open
  transaction.
- ``rehearse``: restore a dump into a scratch database, apply the pending statements there one
  by one, time each and read the table locks it held; the scratch database is dropped in every
  case.

Plain Python over a DB-API connection (psycopg2); no Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

SCRATCH_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

TABLE_STATS = """
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), c.relkind, c.reltuples::bigint, s.n_live_tup,
       pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.oid = %s
"""

INDEXES = """
SELECT format('%%I.%%I', n.nspname, c.relname), pg_relation_size(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = %s ORDER BY 1
"""

SESSIONS = """
SELECT a.pid, a.usename, a.application_name, a.state,
       extract(epoch FROM now() - a.xact_start)::float8,
       array_agg(DISTINCT l.mode ORDER BY l.mode), bool_or(NOT l.granted)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = %s AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY 1, 2, 3, 4, 5
ORDER BY 5 DESC NULLS LAST, 1
"""

HELD_LOCKS = """
SELECT format('%I.%I', n.nspname, c.relname), l.mode
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2
"""


class ReviewCatalogError(RuntimeError):
    pass


def _one(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchone()


def table_stats(cur, name):
    """What the live database says of the relation a migration names (as written there)."""
    oid = _one(cur, "SELECT to_regclass(%s)::oid", (name,))[0]
    if oid is None:
        return {"name": name, "exists": False}
    row = _one(cur, TABLE_STATS, (oid,))
    stats = {"name": name, "exists": True, "relation": row[1], "relkind": row[2]}
    if row[2] == "i":
        parent = _one(cur, "SELECT indrelid FROM pg_index WHERE indexrelid = %s", (oid,))[0]
        row = _one(cur, TABLE_STATS, (parent,))
        oid = parent
    reltuples, live = row[3], row[4]
    stats.update(table=row[1], rows=int(reltuples) if reltuples >= 0 else int(live or 0),
                 rows_source="pg_class.reltuples" if reltuples >= 0 else "pg_stat_all_tables.n_live_tup",
                 total_bytes=int(row[5]), table_bytes=int(row[6]), index_bytes=int(row[7]))
    cur.execute(INDEXES, (oid,))
    stats["indexes"] = [{"name": r[0], "bytes": int(r[1])} for r in cur.fetchall()]
    cur.execute(SESSIONS, (oid,))
    stats["sessions"] = [{"pid": r[0], "user": r[1], "application": r[2], "state": r[3],
                          "xact_age_seconds": None if r[4] is None else round(r[4], 1),
                          "modes": list(r[5]), "waiting": bool(r[6])} for r in cur.fetchall()]
    ages = [s["xact_age_seconds"] for s in stats["sessions"] if s["xact_age_seconds"] is not None]
    stats["oldest_xact_age_seconds"] = max(ages) if ages else None
    return stats


def applied_versions(cur, history_table, versions):
    """The versions among ``versions`` that the history table records (none when it is missing)."""
    regclass = _one(cur, "SELECT to_regclass(%s)::text", (history_table,))[0]
    if regclass is None:
        return []
    # regclass::text is the server's own quoting of the table's name.
    cur.execute("SELECT version FROM %s WHERE version = ANY(%%s) ORDER BY version" % regclass, (list(versions),))
    return [r[0] for r in cur.fetchall()]


def read_catalog(conn, names, history_table, versions, lock_timeout="2s"):
    """{server_version_num, applied, tables: {name: stats}} from a live database, reading only."""
    cur = conn.cursor()
    cur.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
    server = int(_one(cur, "SHOW server_version_num")[0])
    applied = applied_versions(cur, history_table, versions)
    tables = {}
    for name in names:
        try:
            tables[name] = table_stats(cur, name)
        except conn.OperationalError as exc:
            raise ReviewCatalogError("could not read the size of %s within lock_timeout %s (another session holds "
                                     "a lock on it that blocks reads): %s" % (name, lock_timeout, str(exc).strip()))
    return {"server_version_num": server, "applied": applied, "tables": tables}


def dump_format(path):
    """custom, directory or plain, from what is at path."""
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "toc.dat")):
            raise ReviewCatalogError("rehearsal dump %s is a directory without toc.dat (not a pg_dump -Fd dump)" % path)
        return "directory"
    if not os.path.isfile(path):
        raise ReviewCatalogError("rehearsal dump %s does not exist" % path)
    with open(path, "rb") as handle:
        head = handle.read(5)
    if head == b"PGDMP":
        return "custom"
    return "plain"


def _tool(bindir, name):
    return os.path.join(bindir, name) if bindir else name


def restore_command(path, scratch, bindir=None):
    """The command that loads the dump at path into database scratch (connection from the environment)."""
    kind = dump_format(path)
    if kind == "plain":
        return [_tool(bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", scratch, "-f", path]
    return [_tool(bindir, "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "-d", scratch, path]


def rehearse(admin, connect_scratch, run_restore, dump, migrations, scratch):
    """Restore dump into a new database scratch, apply the pending migrations statement by statement.

    admin: an autocommit connection to the server (not read-only); connect_scratch(name): a
    connection to the scratch database; run_restore(cmd): (rc, stdout, stderr) of the restore.
    migrations: [{version, no_transaction, statements: [{index, line, sql}]}] in order.
    Returns {ok, scratch_database, restore_seconds, statements: [{version, index, line, duration_ms,
    held: [[relation, pg_locks mode]]}], error}; the scratch database is dropped in every case.
    """
    if not SCRATCH_NAME.match(scratch or ""):
        raise ReviewCatalogError("rehearsal scratch database name %r must be lower case letters, digits and "
                                 "underscores (at most 63)" % scratch)
    command = restore_command(dump, scratch)
    cur = admin.cursor()
    if _one(cur, "SELECT count(*) FROM pg_database WHERE datname = %s", (scratch,))[0]:
        raise ReviewCatalogError("rehearsal scratch database %s already exists: drop it or name another" % scratch)
    report = {"ok": False, "scratch_database": scratch, "dump": dump, "restore_seconds": None, "statements": [],
              "error": None, "dropped": False}
    cur.execute('CREATE DATABASE "%s" TEMPLATE template0' % scratch)
    try:
        started = time.monotonic()
        rc, out, err = run_restore(command)
        report["restore_seconds"] = round(time.monotonic() - started, 3)
        if rc != 0:
            report["error"] = {"msg": "restoring %s into %s failed (exit %d): %s" % (
                dump, scratch, rc, (err or out).strip()[-1500:])}
            return report
        conn = connect_scratch(scratch)
        try:
            _apply(conn, migrations, report)
        finally:
            conn.close()
        report["ok"] = report["error"] is None
        return report
    finally:
        cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % scratch)
        report["dropped"] = not _one(cur, "SELECT count(*) FROM pg_database WHERE datname = %s", (scratch,))[0]


def _apply(conn, migrations, report):
    cur = conn.cursor()
    for migration in migrations:
        transactional = not migration.get("no_transaction")
        conn.autocommit = not transactional
        for statement in migration["statements"]:
            started = time.monotonic()
            try:
                cur.execute(statement["sql"])
            except conn.Error as exc:
                if transactional:
                    conn.rollback()
                report["error"] = {"version": migration["version"], "statement": statement["index"],
                                   "line": statement["line"],
                                   "msg": "%s.sql statement %d (line %d): %s" % (
                                       migration["version"], statement["index"], statement["line"],
                                       str(exc).strip())}
                return
            duration_ms = round((time.monotonic() - started) * 1000.0, 3)
            held = []
            if transactional:
                cur.execute(HELD_LOCKS)
                held = [list(r) for r in cur.fetchall()]
            report["statements"].append({"version": migration["version"], "index": statement["index"],
                                         "line": statement["line"], "duration_ms": duration_ms, "held": held,
                                         "in_transaction": transactional})
        if transactional:
            conn.commit()
