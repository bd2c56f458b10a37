# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The history table, defined once.

The runbook's table has two columns, ``version`` (the migration file name
without .sql, primary key) and ``applied_at``. The engine keeps both and their
meaning, and adds nullable columns of its own. It writes and deletes only rows
whose ``migration_set`` it set itself; rows of earlier phases stay untouched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.teei.db_rollout.plugins.module_utils.planning import HistoryRow

DEFAULT_TABLE = "public.schema_migrations"
_IDENT = r"[A-Za-z_][A-Za-z0-9_$]*"
_TABLE_NAME = re.compile(r"^(?:(?P<schema>%s)\.)?(?P<table>%s)$" % (_IDENT, _IDENT))

# The runbook's own columns, then the engine's, in the order they are created.
RUNBOOK_COLUMNS = (
    ("version", "varchar(255) PRIMARY KEY"),
    ("applied_at", "timestamp with time zone NOT NULL DEFAULT now()"),
)
ENGINE_COLUMNS = (
    ("checksum", "char(64)"),            # sha256 of the migration file's bytes
    ("execution_ms", "integer"),         # time the migration and its verification took
    ("applied_by", "text"),              # who ran it (user@controller by default)
    ("run_id", "text"),                  # the rollout run that applied it
    ("change_ticket", "text"),           # the change ticket the run cites
    ("migration_set", "text"),           # the set it came from; marks rows the engine wrote
    ("engine", "text"),                  # 'teei.db_rollout <version>'
)
# Advisory lock class for the run lock: 'te' in ASCII; the object is the table's hash.
LOCK_CLASS = 0x7465


class HistoryTableError(ValueError):
    pass


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


class HistoryTable(object):
    def __init__(self, name=DEFAULT_TABLE):
        match = _TABLE_NAME.match(name or "")
        if not match:
            raise HistoryTableError("history_table %r is not a plain [schema.]table name" % name)
        self.schema = match.group("schema") or "public"
        self.table = match.group("table")
        self.name = "%s.%s" % (self.schema, self.table)
        self.sql_name = "%s.%s" % (quote_ident(self.schema), quote_ident(self.table))

    # -- the run lock --------------------------------------------------------
    def lock_key_sql(self):
        """SQL for the advisory lock's two keys: the class, and a hash of database and table."""
        return "%s, hashtext(current_database() || '/' || %%s)" % LOCK_CLASS

    def try_lock(self, cur):
        cur.execute("SELECT pg_try_advisory_lock(%s)" % self.lock_key_sql(), (self.name,))
        return bool(cur.fetchone()[0])

    def unlock(self, cur):
        cur.execute("SELECT pg_advisory_unlock(%s)" % self.lock_key_sql(), (self.name,))

    def lock_holders(self, cur):
        """Describe the sessions holding the run lock: pid, application, client, since, query."""
        cur.execute(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local'),"
            "       a.backend_start::text, coalesce(a.state, ''), left(coalesce(a.query, ''), 200)"
            "  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s"
            "   AND l.objid = (hashtext(current_database() || '/' || %s))::oid"
            "   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (LOCK_CLASS, self.name))
        return ["pid %s (application '%s', client %s, connected since %s, %s: %s)" % row
                for row in cur.fetchall()]

    # -- the table -----------------------------------------------------------
    def columns(self, cur):
        """The table's column names, or None when the table does not exist."""
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self.sql_name,))
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (self.sql_name,))
        return [row[0] for row in cur.fetchall()]

    def ensure(self, cur):
        """Create the table, or add the engine's missing columns. Returns what was done."""
        existing = self.columns(cur)
        if existing is None:
            cur.execute("CREATE SCHEMA IF NOT EXISTS %s" % quote_ident(self.schema))
            cur.execute("CREATE TABLE %s (%s)" % (self.sql_name, ", ".join(
                "%s %s" % (name, ddl) for name, ddl in RUNBOOK_COLUMNS + ENGINE_COLUMNS)))
            return ["created %s" % self.name]
        missing_runbook = [name for name, ddl in RUNBOOK_COLUMNS if name not in existing]
        if missing_runbook:
            raise HistoryTableError("%s exists but has no %s column: it is not a history table"
                                    % (self.name, " or ".join(missing_runbook)))
        missing = [(name, ddl) for name, ddl in ENGINE_COLUMNS if name not in existing]
        if not missing:
            return []
        cur.execute("ALTER TABLE %s %s" % (self.sql_name, ", ".join(
            "ADD COLUMN IF NOT EXISTS %s %s" % (name, ddl) for name, ddl in missing)))
        return ["added columns %s to %s" % (", ".join(name for name, ddl in missing), self.name)]

    def read(self, cur):
        """All rows as HistoryRow, oldest first; [] when the table does not exist yet."""
        existing = self.columns(cur)
        if existing is None:
            return []
        checksum = "checksum" if "checksum" in existing else "NULL"
        mset = "migration_set" if "migration_set" in existing else "NULL"
        cur.execute("SELECT version, applied_at, %s, %s FROM %s ORDER BY applied_at, version"
                    % (checksum, mset, self.sql_name))
        return [HistoryRow(version, applied_at, (chk or "").strip() or None, set_name)
                for version, applied_at, chk, set_name in cur.fetchall()]

    def record(self, cur, migration, set_name, execution_ms, run):
        cur.execute(
            "INSERT INTO %s (version, applied_at, checksum, execution_ms, applied_by, run_id, "
            "change_ticket, migration_set, engine) VALUES (%%s, clock_timestamp(), %%s, %%s, %%s, %%s, "
            "%%s, %%s, %%s)" % self.sql_name,
            (migration.version, migration.checksum, int(execution_ms), run.get("applied_by"),
             run.get("run_id"), run.get("change_ticket"), set_name, run.get("engine")))

    def forget(self, cur, version, set_name):
        """Delete the row the engine wrote for version; refuse anything else."""
        cur.execute("DELETE FROM %s WHERE version = %%s AND migration_set = %%s" % self.sql_name,
                    (version, set_name))
        if cur.rowcount != 1:
            raise HistoryTableError("no history row of set %s for %s to delete" % (set_name, version))
