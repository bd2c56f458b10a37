# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The history table, defined once.

The runbook's table has two columns, ``version`` (the migration file name
without .sql, primary key) and ``applied_at``. The engine keeps both and their
meaning, and adds nullable columns of its own. It writes and deletes only rows
whose ``migration_set`` it set itself; rows of earlier phases stay untouched.

Beside it, ``<table>_log`` keeps what each run did: one row per migration
applied or rolled back, written in the same transaction as the history row it
adds or deletes, never updated or deleted. A rollback deletes the history row
(the runbook looks versions up there), so the log is where a run's rollbacks
stay visible (``last_run``, ``run_changes``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.community.postgresql.plugins.module_utils.database import pg_quote_identifier
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
LOG_COLUMNS = (
    ("id", "bigserial PRIMARY KEY"),
    ("at", "timestamp with time zone NOT NULL DEFAULT clock_timestamp()"),
    ("run_id", "text"),
    ("migration_set", "text NOT NULL"),
    ("version", "varchar(255) NOT NULL"),
    ("action", "text NOT NULL CHECK (action IN ('applied', 'rolled_back'))"),
    ("checksum", "char(64)"),            # sha256 of the script that ran (the rollback's for rolled_back)
    ("execution_ms", "integer"),
    ("applied_by", "text"),
    ("change_ticket", "text"),
    ("engine", "text"),
)
LOG_SUFFIX = "_log"
_UTC = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
# Advisory lock class for the run lock: 'te' in ASCII; the object is the table's hash.
LOCK_CLASS = 0x7465


class HistoryTableError(ValueError):
    pass


def quote_ident(name):
    """A whole name as one identifier, as PostgreSQL's quote_ident() quotes it: for database and role names,
    which may hold a dot, where community.postgresql's pg_quote_identifier would split them."""
    return '"%s"' % name.replace('"', '""')


class HistoryTable(object):
    def __init__(self, name=DEFAULT_TABLE):
        match = _TABLE_NAME.match(name or "")
        if not match:
            raise HistoryTableError("history_table %r is not a plain [schema.]table name" % name)
        self.schema = match.group("schema") or "public"
        self.table = match.group("table")
        if len(self.table) + len(LOG_SUFFIX) > 63:
            raise HistoryTableError("history_table %r: the table name may have at most %d characters (its log "
                                    "table adds %s)" % (name, 63 - len(LOG_SUFFIX), LOG_SUFFIX))
        self.name = "%s.%s" % (self.schema, self.table)
        # The name is plain (checked above), so community.postgresql's quoting splits it where we did.
        self.sql_name = pg_quote_identifier(self.name, "table")
        self.log_name = "%s.%s%s" % (self.schema, self.table, LOG_SUFFIX)
        self.log_sql_name = pg_quote_identifier(self.log_name, "table")

    # -- the run lock --------------------------------------------------------
    def lock_key_sql(self):
        """SQL for the advisory lock's two keys: the class, and a hash of database and table."""
        return "%s, hashtext(current_database() || '/' || %%s)" % LOCK_CLASS

    def lock(self, cur):
        """Take the run lock, waiting for it up to the session's lock_timeout."""
        cur.execute("SELECT pg_advisory_lock(%s)" % self.lock_key_sql(), (self.name,))

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
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (self.sql_name,))
        names = [row[0] for row in cur.fetchall()]
        return names or None

    def has_log(self, cur):
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self.log_sql_name,))
        return bool(cur.fetchone()[0])

    def ensure(self, cur):
        """Create the table, or add the engine's missing columns. Returns what was done."""
        done = []
        existing = self.columns(cur)
        if existing is None:
            cur.execute("CREATE SCHEMA IF NOT EXISTS %s" % pg_quote_identifier(self.schema, "schema"))
            cur.execute("CREATE TABLE %s (%s)" % (self.sql_name, ", ".join(
                "%s %s" % (name, ddl) for name, ddl in RUNBOOK_COLUMNS + ENGINE_COLUMNS)))
            done.append("created %s" % self.name)
        else:
            done.extend(self._add_engine_columns(cur, existing))
        if not self.has_log(cur):
            cur.execute("CREATE TABLE %s (%s)" % (self.log_sql_name, ", ".join(
                "%s %s" % (name, ddl) for name, ddl in LOG_COLUMNS)))
            cur.execute("CREATE INDEX ON %s (run_id)" % self.log_sql_name)
            done.append("created %s" % self.log_name)
        return done

    def _add_engine_columns(self, cur, existing):
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
        """Write the history row of an applied migration, and its log row, in one round trip."""
        values = (migration.version, migration.checksum, int(execution_ms), run.get("applied_by"),
                  run.get("run_id"), run.get("change_ticket"), set_name, run.get("engine"))
        cur.execute(
            "WITH row AS (INSERT INTO %s (version, applied_at, checksum, execution_ms, applied_by, run_id, "
            "change_ticket, migration_set, engine) VALUES (%%s, clock_timestamp(), %%s, %%s, %%s, %%s, "
            "%%s, %%s, %%s) RETURNING *) "
            "INSERT INTO %s (at, run_id, migration_set, version, action, checksum, execution_ms, applied_by, "
            "change_ticket, engine) SELECT applied_at, run_id, migration_set, version, 'applied', checksum, "
            "execution_ms, applied_by, change_ticket, engine FROM row" % (self.sql_name, self.log_sql_name),
            values)

    def forget(self, cur, version, set_name, script_checksum, execution_ms, run):
        """Delete the row the engine wrote for version and log it; refuse anything else."""
        cur.execute(
            "WITH gone AS (DELETE FROM %s WHERE version = %%s AND migration_set = %%s RETURNING version) "
            "INSERT INTO %s (run_id, migration_set, version, action, checksum, execution_ms, applied_by, "
            "change_ticket, engine) SELECT %%s, %%s, version, 'rolled_back', %%s, %%s, %%s, %%s, %%s FROM gone"
            % (self.sql_name, self.log_sql_name),
            (version, set_name, run.get("run_id"), set_name, script_checksum, int(execution_ms),
             run.get("applied_by"), run.get("change_ticket"), run.get("engine")))
        if cur.rowcount != 1:
            raise HistoryTableError("no history row of set %s for %s to delete" % (set_name, version))

    # -- what runs did -------------------------------------------------------
    def last_run(self, cur, set_name):
        """The newest run that applied or rolled back migrations of set_name, or None:
        {run_id, change_ticket, applied_by, finished_at, versions, actions}.

        Read from the log; from the history table's rows when there is no log yet."""
        source = self._changes_source(cur)
        if source is None:
            return None
        cur.execute(
            "WITH changes AS (%s), last AS (SELECT run_id FROM changes WHERE migration_set = %%s "
            "AND run_id IS NOT NULL ORDER BY at DESC, seq DESC LIMIT 1) "
            "SELECT c.run_id, max(c.change_ticket), max(c.applied_by), %s, "
            "array_agg(c.version ORDER BY c.at, c.seq), array_agg(c.action ORDER BY c.at, c.seq) "
            "FROM changes c JOIN last USING (run_id) WHERE c.migration_set = %%s GROUP BY c.run_id"
            % (source, _UTC % "max(c.at)"), (set_name, set_name))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(run_id=row[0], change_ticket=row[1], applied_by=row[2], finished_at=row[3],
                    versions=list(row[4]), actions=list(row[5]))

    def _changes_source(self, cur):
        """SQL for the runs' changes as (at, seq, run_id, migration_set, version, action, checksum,
        applied_by, change_ticket), from the log, or from the history rows when there is no log yet."""
        if self.has_log(cur):
            return ("SELECT at, id AS seq, run_id, migration_set, version, action, checksum, applied_by, "
                    "change_ticket FROM %s" % self.log_sql_name)
        columns = self.columns(cur) or ()
        if "run_id" not in columns or "migration_set" not in columns:
            return None
        return ("SELECT applied_at AS at, 0 AS seq, run_id, migration_set, version, 'applied'::text AS action, "
                "checksum, applied_by, change_ticket FROM %s" % self.sql_name)

    def run_changes(self, cur, run_id):
        """What run run_id did to the history table: [{version, action, at, checksum, migration_set}]."""
        source = self._changes_source(cur)
        if source is None:
            return []
        cur.execute("WITH changes AS (%s) SELECT version, action, %s, checksum, migration_set FROM changes "
                    "WHERE run_id = %%s ORDER BY at, seq, version" % (source, _UTC % "at"), (run_id,))
        return [dict(version=version, action=action, at=at, checksum=(chk or "").strip() or None,
                     migration_set=mset) for version, action, at, chk, mset in cur.fetchall()]
