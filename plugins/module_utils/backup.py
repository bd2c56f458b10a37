# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups with pg_dump and restores with pg_restore, defined once.

Plain Python under the modules teei.db_rollout.pg_backup and pg_restore: it
imports neither Ansible nor psycopg2. The database side is a function
``connect(dbname)`` returning an autocommit DB-API connection (psycopg2's);
the client tools run through ``subprocess`` with the connection in their
environment and the password in a temporary 0600 PGPASSFILE, never in argv.

A backup is one folder per run, mode 0700, named ``<database>-<run id>``
(``<database>-<UTC time>`` without a run id), holding, each mode 0600:

- ``<database>.dump`` (custom format) or ``<database>.dir/`` (directory format);
- ``globals.sql`` (``pg_dumpall --globals-only``) when the user may read roles;
- ``manifest.json``: what the backup is (see ``Backup.run``).

Guarantees kept:
- pg_dump older than the server is refused, naming both versions, before
  anything is written;
- the dump, the catalog facts of the manifest and the row counts of the
  restore proof come from one exported snapshot, so they agree on a busy
  database;
- a backup is done only when ``pg_restore --list`` read it whole, it lists
  every table of the database, its sha256 is computed and the manifest is
  written; anything less removes the run's folder and fails;
- a restore checks the dump's sha256 against its manifest first, restores
  into a new database, and replaces the target only when told to and only
  after the restore succeeded; a failure leaves the target as it was.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid

from ansible_collections.teei.db_rollout.plugins.module_utils.executor import duration_ms
from ansible_collections.teei.db_rollout.plugins.module_utils.history import HistoryTable, quote_ident

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
GLOBALS_NAME = "globals.sql"
# format option -> (pg_dump --format letter, suffix of the dump beside the manifest)
FORMATS = {"custom": ("c", ".dump"), "directory": ("d", ".dir")}
ENGINE = "teei.db_rollout.pg_backup"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_TOC_TABLE = re.compile(r"^\d+;\s+\d+\s+\d+\s+TABLE\s+(?!DATA\s)(\S+)\s+(\S+)\s")
NO_SPACE = "No space left on device"
LOCK_NOT_AVAILABLE = "55P03"

# Tables whose rows a backup carries: ordinary and partitioned tables outside the
# system schemas that no extension owns.
TABLES_SQL = """
SELECT n.nspname, c.relname
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
 ORDER BY 1, 2
"""
DATABASE_SQL = """
SELECT current_setting('server_version'), current_setting('server_version_num')::int,
       pg_catalog.pg_database_size(d.oid), pg_catalog.pg_get_userbyid(d.datdba),
       pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
       pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT'),
       pg_catalog.has_table_privilege('pg_catalog.pg_roles', 'SELECT')
  FROM pg_catalog.pg_database d WHERE d.datname = current_database()
"""


# The keys of a backup result, also when it failed (then null).
BACKUP_RESULT_KEYS = ("path", "directory", "manifest", "sha256", "size_bytes", "restore_command", "verify_restore",
                      "migration_version", "server_version", "run_id")


def failed_backup_result(result):
    """A failed backup's result: every key of a backup result (null when unknown) and what is known."""
    out = dict((key, None) for key in BACKUP_RESULT_KEYS)
    out["deleted"] = []
    out.update(result or {})
    return out


class BackupError(Exception):
    """A backup or restore that failed; ``result`` holds what is known about it."""

    def __init__(self, msg, result=None):
        super(BackupError, self).__init__(msg)
        self.msg = msg
        self.result = result or {}


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- connection settings for the client tools ------------------------------------
class ClientConnection(object):
    """libpq settings for pg_dump, pg_dumpall and pg_restore, passed in their environment."""

    def __init__(self, host=None, port=None, user=None, password=None, sslmode=None, sslrootcert=None,
                 sslcert=None, sslkey=None):
        self.host = host or None
        self.port = int(port) if port else None
        self.user = user or None
        self.password = password or None
        self.sslmode = sslmode or None
        self.sslrootcert = sslrootcert or None
        self.sslcert = sslcert or None
        self.sslkey = sslkey or None

    def label(self, dbname):
        """``user@host:port/dbname``, for messages (never the password)."""
        return "%s@%s:%s/%s" % (self.user or "(default user)", self.host or "(local socket)",
                                self.port or 5432, dbname)

    def env(self, dbname, passfile=None, base=None):
        env = dict(os.environ if base is None else base)
        for key, value in (("PGHOST", self.host), ("PGPORT", self.port), ("PGUSER", self.user),
                           ("PGSSLMODE", self.sslmode), ("PGSSLROOTCERT", self.sslrootcert),
                           ("PGSSLCERT", self.sslcert), ("PGSSLKEY", self.sslkey)):
            if value:
                env[key] = str(value)
        env["PGDATABASE"] = dbname
        if passfile:
            env["PGPASSFILE"] = passfile
            env.pop("PGPASSWORD", None)
        return env

    def flags(self):
        """Connection options for a command an operator pastes (no password)."""
        flags = []
        for option, value in (("--host", self.host), ("--port", self.port), ("--username", self.user)):
            if value:
                flags.append("%s=%s" % (option, value))
        return flags


def make_connector(driver, conn_params):
    """(connect(dbname), ClientConnection) from psycopg2-style connection parameters.

    ``driver`` is the DB-API module (psycopg2); ``connect`` opens autocommit connections and fails
    naming a database that does not exist."""
    params = dict(conn_params)
    params.pop("dbname", None)
    params.pop("database", None)
    client = ClientConnection(**dict((k, params.get(k)) for k in (
        "host", "port", "user", "password", "sslmode", "sslrootcert", "sslcert", "sslkey")))

    def connect(dbname):
        try:
            conn = driver.connect(dbname=dbname, **params)
        except driver.OperationalError as exc:
            text = str(exc).strip()
            if 'database "%s" does not exist' % dbname in text:
                raise BackupError("database %s does not exist on %s" % (dbname, client.label(dbname)))
            raise BackupError("unable to connect to %s: %s" % (client.label(dbname), text))
        conn.autocommit = True
        return conn

    return connect, client


def pgpass_line(password):
    """A PGPASSFILE line matching every server, for ``password``."""
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return "*:*:*:*:%s\n" % escaped


@contextlib.contextmanager
def passfile(password):
    """Yield the path of a private 0600 PGPASSFILE holding ``password`` (None without one)."""
    if not password:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="teei-pgpass-")
    try:
        path = os.path.join(folder, "pgpass")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(pgpass_line(password))
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def conninfo_dbname(dbname):
    """A conninfo string selecting ``dbname`` (a bare name with '=' would be read as conninfo)."""
    return "dbname='%s'" % dbname.replace("\\", "\\\\").replace("'", "\\'")


# -- client tools ---------------------------------------------------------------
def parse_tool_version(text):
    """(major, minor) from ``pg_dump --version`` output such as 'pg_dump (PostgreSQL) 15.18 (Debian ...)'."""
    match = _TOOL_VERSION.search(text or "")
    if not match:
        raise BackupError("cannot read a PostgreSQL version from %r" % (text or "").strip())
    return int(match.group(1)), int(match.group(2) or 0)


def server_major(version_num):
    return int(version_num) // 10000


def check_client_version(tool, tool_version_text, needed_major, needed_by):
    """Refuse a client tool older than ``needed_by`` (the server, or the pg_dump that wrote a backup)."""
    major, minor = parse_tool_version(tool_version_text)
    if major < needed_major:
        raise BackupError(
            "%s %d.%d is older than %s and cannot read it: install the PostgreSQL %d client tools or point "
            "pg_bindir at them" % (tool, major, minor, needed_by, needed_major))
    return "%d.%d" % (major, minor)


def find_bindir(requested, version_num, which=shutil.which):
    """The folder of pg_dump/pg_restore: ``requested``, else Debian's folder for the server's major
    version, else the one on PATH."""
    if requested:
        if not os.path.isfile(os.path.join(requested, "pg_dump")):
            raise BackupError("pg_bindir %s holds no pg_dump" % requested)
        return requested
    debian = "/usr/lib/postgresql/%d/bin" % server_major(version_num)
    if os.path.isfile(os.path.join(debian, "pg_dump")):
        return debian
    found = which("pg_dump")
    if not found:
        raise BackupError("pg_dump not found on PATH nor in %s: install the PostgreSQL client tools" % debian)
    return os.path.dirname(found)


def pg_dump_argv(bindir, fmt, target, lock_wait_timeout, jobs=1, snapshot=None):
    """pg_dump's command line: connection in the environment, never a password."""
    letter = FORMATS[fmt][0]
    argv = [os.path.join(bindir, "pg_dump"), "--format=%s" % letter, "--file=%s" % target,
            "--lock-wait-timeout=%s" % lock_wait_timeout, "--no-password"]
    if fmt == "directory" and jobs > 1:
        argv.append("--jobs=%d" % jobs)
    if snapshot:
        argv.append("--snapshot=%s" % snapshot)
    return argv


def pg_dumpall_globals_argv(bindir, target, dbname, role_passwords):
    argv = [os.path.join(bindir, "pg_dumpall"), "--globals-only", "--file=%s" % target, "--no-password",
            "--database=%s" % conninfo_dbname(dbname)]
    if not role_passwords:
        argv.append("--no-role-passwords")
    return argv


def pg_restore_list_argv(bindir, path):
    return [os.path.join(bindir, "pg_restore"), "--list", path]


def pg_restore_argv(bindir, path, dbname, jobs=1, no_owner=False):
    argv = [os.path.join(bindir, "pg_restore"), "--dbname=%s" % conninfo_dbname(dbname), "--exit-on-error",
            "--no-password"]
    if jobs > 1:
        argv.append("--jobs=%d" % jobs)
    if no_owner:
        argv += ["--no-owner", "--no-privileges"]
    argv.append(path)
    return argv


def restore_command(client, path, database, jobs=1):
    """A command an operator can paste to restore ``path`` into a new database ``database``.

    The password comes from ~/.pgpass or the prompt, never from the command."""
    flags = client.flags()
    create = ["createdb"] + flags + ["--template=template0", database]
    restore = ["pg_restore"] + flags + ["--dbname=%s" % database, "--exit-on-error"]
    if jobs > 1:
        restore.append("--jobs=%d" % jobs)
    restore.append(path)
    return "%s && %s" % (" ".join(shlex.quote(a) for a in create), " ".join(shlex.quote(a) for a in restore))


def run_tool(argv, env):
    """Run a client tool; return (rc, stdout, stderr). Files it creates are private (umask 077)."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False,
                          preexec_fn=lambda: os.umask(0o077))
    return proc.returncode, proc.stdout, proc.stderr


def tool_message(tool, stderr):
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return "%s failed: %s" % (tool, " / ".join(lines[-5:]) or "no message")


def toc_tables(listing):
    """``schema.table`` of every TABLE entry of a ``pg_restore --list`` listing."""
    tables = []
    for line in listing.splitlines():
        match = _TOC_TABLE.match(line)
        if match:
            tables.append("%s.%s" % match.groups())
    return sorted(tables)


# -- files --------------------------------------------------------------------
def sha256_of(path):
    """sha256 of a dump file; of a directory-format dump, the sha256 of its ``sha256sum`` listing
    (one '<sha256>  <relative path>' line per file, sorted by path)."""
    if os.path.isdir(path):
        lines = []
        for rel in sorted(_files_under(path)):
            lines.append("%s  %s\n" % (_sha256_file(os.path.join(path, rel)), rel))
        return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
    return _sha256_file(path)


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_under(path):
    for folder, _dirs, files in os.walk(path):
        for name in files:
            yield os.path.relpath(os.path.join(folder, name), path)


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, rel)) for rel in _files_under(path))
    return os.path.getsize(path)


def safe_name(text):
    return _SAFE_NAME.sub("_", text).strip("._") or "backup"


def run_dir_name(database, run_id, started):
    """``<database>-<run id>``, or ``<database>-<UTC time>`` without a run id; only [A-Za-z0-9._-]."""
    return "%s-%s" % (safe_name(database), safe_name(run_id) if run_id else started.strftime("%Y%m%dT%H%M%SZ"))


def ensure_base_dir(path):
    """Create the backup folder (0700) when missing; fail naming it when it is not writable."""
    try:
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o700)
        probe = tempfile.mkstemp(prefix=".teei-probe-", dir=path)
        os.close(probe[0])
        os.unlink(probe[1])
    except OSError as exc:
        raise BackupError("backup directory %s is not writable: %s" % (path, exc.strerror or exc))


def make_private_dir(path):
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)


def chmod_private(path):
    """0600 on a dump file, or on every file of a dump folder (folders 0700)."""
    if os.path.isdir(path):
        os.chmod(path, 0o700)
        for folder, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o700)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o600)
    else:
        os.chmod(path, 0o600)


def write_manifest(path, data):
    """Write the manifest atomically, mode 0600."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.rename(tmp, path)


def read_manifest(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        raise BackupError("cannot read manifest %s: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise BackupError("manifest %s is not valid JSON: %s" % (path, exc))
    missing = [key for key in ("database", "file", "sha256", "format") if not data.get(key)]
    if missing or data.get("format") not in FORMATS:
        raise BackupError("manifest %s is not a teei.db_rollout backup manifest (missing or bad: %s)"
                          % (path, ", ".join(missing) or "format"))
    return data


def find_manifests(base, database):
    """(run folder, manifest) of every backup of ``database`` under ``base``, oldest first."""
    found = []
    if not os.path.isdir(base):
        return found
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name, MANIFEST_NAME)
        if os.path.isfile(path):
            try:
                manifest = read_manifest(path)
            except BackupError:
                continue
            if manifest["database"] == database:
                found.append((os.path.join(base, name), manifest))
    found.sort(key=lambda item: (item[1].get("finished") or "", item[0]))
    return found


def retention_plan(backups, keep, current):
    """Run folders to delete so that the newest ``keep`` backups stay (0 keeps all).

    Never the one just taken (``current``) nor one whose manifest says ``run_failed``:
    the backup of a run that later failed is what a restore needs."""
    if keep <= 0:
        return []
    newest_first = sorted(backups, key=lambda item: (item[1].get("finished") or "", item[0]), reverse=True)
    return [folder for folder, manifest in newest_first[keep:]
            if folder != current and not manifest.get("run_failed")]


def mark_run_failed(manifest_path, reason=None):
    """Mark a backup as the one of a run that failed: retention never deletes it."""
    manifest = read_manifest(manifest_path)
    if manifest.get("run_failed"):
        return False, manifest
    manifest["run_failed"] = True
    manifest["run_failed_reason"] = reason or ""
    write_manifest(manifest_path, manifest)
    return True, manifest


# -- database side ------------------------------------------------------------
def _rows(conn, sql, args=None):
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
        return cur.fetchall()
    finally:
        cur.close()


def _execute(conn, sql, args=None):
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
    finally:
        cur.close()


def qualified(table):
    schema, name = table.split(".", 1)
    return "%s.%s" % (quote_ident(schema), quote_ident(name))


def row_counts(conn, tables):
    return dict((table, _rows(conn, "SELECT count(*) FROM %s" % qualified(table))[0][0]) for table in tables)


def list_tables(conn):
    return ["%s.%s" % row for row in _rows(conn, TABLES_SQL)]


def history_version(conn, history_table):
    """Newest version in the history table, or None when the table does not exist."""
    history = HistoryTable(history_table)
    if _rows(conn, "SELECT pg_catalog.to_regclass(%s)", (history.sql_name,))[0][0] is None:
        return None
    return _rows(conn, "SELECT max(version) FROM %s" % history.sql_name)[0][0]


def scratch_name(database, purpose):
    return "%s_%s_%s" % (database[:40], purpose, uuid.uuid4().hex[:8])


def compare_counts(expected, actual):
    """What differs between two {table: rows} maps: missing tables, extra tables, row counts."""
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    mismatched = [dict(table=t, expected=expected[t], actual=actual[t])
                  for t in sorted(set(expected) & set(actual)) if expected[t] != actual[t]]
    return missing, extra, mismatched


def describe_differences(missing, extra, mismatched):
    parts = []
    if missing:
        parts.append("missing tables: %s" % ", ".join(missing))
    if extra:
        parts.append("unexpected tables: %s" % ", ".join(extra))
    for item in mismatched:
        parts.append("%s has %d rows instead of %d" % (item["table"], item["actual"], item["expected"]))
    return "; ".join(parts)


class Tools(object):
    """The client tools of one bindir with one connection's settings."""

    def __init__(self, bindir, client, password_file):
        self.bindir = bindir
        self.client = client
        self.password_file = password_file

    def run(self, argv, dbname, what):
        rc, out, err = run_tool(argv, self.client.env(dbname, self.password_file))
        if rc != 0:
            raise BackupError(tool_message(what, err), dict(stderr_tail=err[-2000:]))
        return out

    def version(self, tool):
        rc, out, err = run_tool([os.path.join(self.bindir, tool), "--version"], dict(os.environ))
        if rc != 0:
            raise BackupError("%s --version failed: %s" % (tool, (err or out).strip()))
        return out.strip()

    def restore(self, path, dbname, jobs=1, no_owner=False):
        self.run(pg_restore_argv(self.bindir, path, dbname, jobs=jobs, no_owner=no_owner), dbname,
                 "pg_restore into %s" % dbname)

    def listing(self, path, dbname):
        return self.run(pg_restore_list_argv(self.bindir, path), dbname, "pg_restore --list of %s" % path)


def _drop_database(conn, name):
    _execute(conn, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % quote_ident(name))


DATABASE_ACL_SQL = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
  FROM pg_catalog.pg_database d,
       LATERAL pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a
 WHERE d.datname = %s AND a.grantee <> d.datdba
 ORDER BY 1, 2
"""


def _grantee_sql(name):
    return "PUBLIC" if name == "PUBLIC" else quote_ident(name)


def carry_database_privileges(conn, source, target):
    """Give ``target`` the database-level privileges and connection limit ``source`` has now (a dump
    restored without --create carries neither): who may connect, for instance while maintenance mode
    has revoked CONNECT."""
    rows = _rows(conn, DATABASE_ACL_SQL, (source,))
    target_sql = quote_ident(target)
    _execute(conn, "REVOKE ALL ON DATABASE %s FROM PUBLIC" % target_sql)
    for grantee, privilege, grantable in sorted(set(row[:3] for row in rows)):
        option = " WITH GRANT OPTION" if grantable else ""
        _execute(conn, "GRANT %s ON DATABASE %s TO %s%s" % (privilege, target_sql, _grantee_sql(grantee), option))
    limit = _rows(conn, "SELECT datconnlimit FROM pg_catalog.pg_database WHERE datname = %s", (source,))[0][0]
    _execute(conn, "ALTER DATABASE %s CONNECTION LIMIT %d" % (target_sql, int(limit)))


def _rename_database(conn, name, new_name):
    _execute(conn, "ALTER DATABASE %s RENAME TO %s" % (quote_ident(name), quote_ident(new_name)))


def _create_database(conn, name, manifest=None, owner_exists=False):
    sql = "CREATE DATABASE %s TEMPLATE template0" % quote_ident(name)
    if manifest and manifest.get("encoding"):
        sql += " ENCODING %s LC_COLLATE %s LC_CTYPE %s" % tuple(
            "'%s'" % str(manifest[k]).replace("'", "''") for k in ("encoding", "collate", "ctype"))
    if manifest and owner_exists:
        sql += " OWNER %s" % quote_ident(manifest["owner"])
    _execute(conn, sql)


def restore_proof(tools, connect, source_conn, path, expected, database, jobs=1):
    """Restore ``path`` into a scratch database on the same server, compare the exact row count of every
    table with ``expected`` ({table: rows}), drop the scratch database (also on failure); return
    ``{database, ok, tables, missing, extra, mismatched, msg}``."""
    name = scratch_name(database, "verify")
    _create_database(source_conn, name)
    try:
        tools.restore(path, name, jobs=jobs, no_owner=True)
        conn = connect(name)
        try:
            actual = row_counts(conn, list_tables(conn))
        finally:
            conn.close()
    finally:
        _drop_database(source_conn, name)
    missing, extra, mismatched = compare_counts(expected, actual)
    ok = not (missing or extra or mismatched)
    msg = ("restored into %s: every one of %d tables has the rows of the source" % (name, len(expected)) if ok
           else "restore proof in %s failed: %s" % (name, describe_differences(missing, extra, mismatched)))
    return dict(database=name, ok=ok, tables=len(actual), rows=sum(actual.values()), missing=missing, extra=extra,
                mismatched=mismatched, msg=msg)


# -- backup -------------------------------------------------------------------
class BackupOptions(object):
    def __init__(self, database, directory, fmt="custom", jobs=1, lock_wait_timeout="30s", globals_dump=True,
                 globals_role_passwords=False, verify_restore=False, keep=0, history_table="public.schema_migrations",
                 run_id=None, change_ticket=None, bindir=None, check_mode=False):
        if fmt not in FORMATS:
            raise BackupError("format %r is not one of %s" % (fmt, ", ".join(sorted(FORMATS))))
        if jobs < 1:
            raise BackupError("jobs must be 1 or more, not %d" % jobs)
        if jobs > 1 and fmt != "directory":
            raise BackupError("jobs %d needs format directory (pg_dump dumps in parallel only into a folder)"
                              % jobs)
        if keep < 0:
            raise BackupError("keep must be 0 (keep every backup) or more, not %d" % keep)
        try:
            duration_ms(lock_wait_timeout, "lock_wait_timeout")
        except ValueError as exc:
            raise BackupError(str(exc))
        HistoryTable(history_table)
        if not directory:
            raise BackupError("directory is required")
        self.database = database
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.fmt = fmt
        self.jobs = jobs
        self.lock_wait_timeout = lock_wait_timeout
        self.globals_dump = globals_dump
        self.globals_role_passwords = globals_role_passwords
        self.verify_restore = verify_restore
        self.keep = keep
        self.history_table = history_table
        self.run_id = run_id or None
        self.change_ticket = change_ticket or None
        self.bindir = bindir or None
        self.check_mode = check_mode


class Backup(object):
    """Take, verify and record one backup. ``connect(dbname)`` opens an autocommit DB-API connection."""

    def __init__(self, connect, client, options, clock=utcnow):
        self.connect = connect
        self.client = client
        self.opts = options
        self.clock = clock

    def run(self):
        opts = self.opts
        started = self.clock()
        conn = self.connect(opts.database)
        try:
            facts = self._database_facts(conn)
            bindir = find_bindir(opts.bindir, facts["server_version_num"])
            with passfile(self.client.password) as pgpass:
                tools = Tools(bindir, self.client, pgpass)
                dump_version = check_client_version(
                    "pg_dump", tools.version("pg_dump"), server_major(facts["server_version_num"]),
                    "the server (PostgreSQL %s)" % facts["server_version"])
                run_dir = os.path.join(opts.directory, run_dir_name(opts.database, opts.run_id, started))
                dump_path = os.path.join(run_dir, safe_name(opts.database) + FORMATS[opts.fmt][1])
                existing = self._existing(run_dir, dump_path)
                if existing is not None:
                    return existing
                if opts.check_mode:
                    return self._result(run_dir, dump_path, None, changed=True,
                                        msg="would back %s up into %s" % (opts.database, dump_path))
                ensure_base_dir(opts.directory)
                if os.path.exists(run_dir):
                    raise BackupError("%s exists without a valid manifest (an interrupted backup of this run?): "
                                      "look at it, remove it and run again" % run_dir)
                make_private_dir(run_dir)
                try:
                    manifest = self._take(conn, tools, facts, dump_version, run_dir, dump_path, started)
                except OSError as exc:
                    shutil.rmtree(run_dir, ignore_errors=True)
                    raise BackupError("cannot write the backup of %s into %s (%s): the partial backup was removed"
                                      % (opts.database, run_dir, exc.strerror or exc))
                except BaseException:
                    shutil.rmtree(run_dir, ignore_errors=True)
                    raise
                deleted = self._apply_retention(run_dir)
        finally:
            conn.close()
        msg = "backed %s up into %s (%d bytes, sha256 %s)" % (
            opts.database, dump_path, manifest["size_bytes"], manifest["sha256"])
        if manifest["verify_restore"]:
            msg += "; " + manifest["verify_restore"]["msg"]
        result = self._result(run_dir, dump_path, manifest, changed=True, msg=msg)
        result["deleted"] = deleted
        return result

    # -- steps ---------------------------------------------------------------
    def _database_facts(self, conn):
        row = _rows(conn, DATABASE_SQL)[0]
        keys = ("server_version", "server_version_num", "database_size", "owner", "encoding", "collate", "ctype",
                "can_read_authid", "can_read_roles")
        return dict(zip(keys, row))

    def _existing(self, run_dir, dump_path):
        """The manifest of this run's backup when it was already taken and its file still matches."""
        manifest_path = os.path.join(run_dir, MANIFEST_NAME)
        if not (self.opts.run_id and os.path.isfile(manifest_path)):
            return None
        manifest = read_manifest(manifest_path)
        if manifest.get("run_id") != self.opts.run_id or not os.path.exists(dump_path) \
                or sha256_of(dump_path) != manifest["sha256"]:
            return None
        return self._result(run_dir, dump_path, manifest, changed=False,
                            msg="run %s already backed %s up into %s (sha256 matches its manifest)"
                                % (self.opts.run_id, self.opts.database, dump_path))

    def _take(self, conn, tools, facts, dump_version, run_dir, dump_path, started):
        opts = self.opts
        snap = self.connect(opts.database)
        try:
            # One snapshot for the dump, the manifest's catalog facts and the restore proof's row counts.
            _execute(snap, "SET lock_timeout = %s", (opts.lock_wait_timeout,))
            _execute(snap, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = _rows(snap, "SELECT pg_catalog.pg_export_snapshot()")[0][0]
            tables = list_tables(snap)
            try:
                version = history_version(snap, opts.history_table)
                counts = row_counts(snap, tables) if opts.verify_restore else None
            except Exception as exc:  # the driver's error class is the module's business; its SQLSTATE is ours
                if getattr(exc, "pgcode", None) != LOCK_NOT_AVAILABLE:
                    raise
                raise BackupError("a table of %s stayed locked past lock_wait_timeout %s (%s): nothing was backed up"
                                  % (opts.database, opts.lock_wait_timeout, str(exc).strip().splitlines()[0]))
            self._dump(tools, pg_dump_argv(tools.bindir, opts.fmt, dump_path, opts.lock_wait_timeout, opts.jobs,
                                           snapshot), dump_path)
            _execute(snap, "COMMIT")
        finally:
            snap.close()
        globals_info = self._globals(tools, facts, run_dir)
        listed = toc_tables(tools.listing(dump_path, opts.database))
        if listed != tables:
            raise BackupError("the dump of %s does not list every table: %s"
                              % (opts.database, describe_differences(sorted(set(tables) - set(listed)),
                                                                     sorted(set(listed) - set(tables)), [])))
        chmod_private(dump_path)
        manifest = dict(
            format_version=MANIFEST_FORMAT, engine=ENGINE, database=opts.database,
            file=os.path.basename(dump_path), format=opts.fmt, jobs=opts.jobs,
            server_version=facts["server_version"], server_version_num=facts["server_version_num"],
            pg_dump_version=dump_version, database_size_bytes=facts["database_size"], owner=facts["owner"],
            encoding=facts["encoding"], collate=facts["collate"], ctype=facts["ctype"],
            run_id=opts.run_id, change_ticket=opts.change_ticket, started=iso(started),
            source=self.client.label(opts.database), table_count=len(tables), tables=tables,
            history_table=opts.history_table, migration_version=version, globals=globals_info,
            sha256=sha256_of(dump_path), size_bytes=size_of(dump_path), row_counts=counts,
            verify_restore=None, run_failed=False)
        if opts.verify_restore:
            proof = restore_proof(tools, self.connect, conn, dump_path, counts, opts.database, jobs=opts.jobs)
            manifest["verify_restore"] = proof
            if not proof["ok"]:
                raise BackupError(proof["msg"], dict(verify_restore=proof))
        manifest["finished"] = iso(self.clock())
        write_manifest(os.path.join(run_dir, MANIFEST_NAME), manifest)
        return manifest

    def _dump(self, tools, argv, dump_path):
        try:
            tools.run(argv, self.opts.database, "pg_dump of %s" % self.opts.database)
        except BackupError as exc:
            if NO_SPACE in exc.msg:
                raise BackupError("no space left on device while writing %s: the partial dump was removed"
                                  % dump_path, exc.result)
            raise

    def _globals(self, tools, facts, run_dir):
        """pg_dumpall --globals-only beside the dump, when asked and when the user may read roles."""
        opts = self.opts
        if not opts.globals_dump:
            return None
        if not facts["can_read_roles"]:
            return dict(file=None, skipped="%s may not read pg_roles" % self.client.user)
        with_passwords = opts.globals_role_passwords and facts["can_read_authid"]
        path = os.path.join(run_dir, GLOBALS_NAME)
        try:
            tools.run(pg_dumpall_globals_argv(tools.bindir, path, opts.database, with_passwords), opts.database,
                      "pg_dumpall --globals-only")
        except BackupError as exc:
            if NO_SPACE in exc.msg:
                raise BackupError("no space left on device while writing %s" % path, exc.result)
            raise
        os.chmod(path, 0o600)
        return dict(file=GLOBALS_NAME, sha256=sha256_of(path), role_passwords=bool(with_passwords))

    def _apply_retention(self, current):
        deleted = retention_plan(find_manifests(self.opts.directory, self.opts.database), self.opts.keep, current)
        for folder in deleted:
            shutil.rmtree(folder)
        return deleted

    def _result(self, run_dir, dump_path, manifest, changed, msg):
        manifest = manifest or {}
        return dict(
            changed=changed, msg=msg, path=dump_path, directory=run_dir,
            manifest=os.path.join(run_dir, MANIFEST_NAME),
            sha256=manifest.get("sha256"), size_bytes=manifest.get("size_bytes"),
            restore_command=restore_command(self.client, dump_path, "%s_restored" % self.opts.database,
                                            self.opts.jobs),
            verify_restore=manifest.get("verify_restore"), migration_version=manifest.get("migration_version"),
            server_version=manifest.get("server_version"), run_id=self.opts.run_id, deleted=[])


# -- restore ------------------------------------------------------------------
class RestoreOptions(object):
    def __init__(self, source=None, directory=None, source_database=None, database=None, overwrite=False,
                 keep_replaced=False, jobs=1, no_owner=False, maintenance_db="postgres", bindir=None,
                 check_mode=False):
        if not source and not (directory and (source_database or database)):
            raise BackupError("name the backup (from) or the backup directory and the database whose newest "
                              "backup to restore")
        if jobs < 1:
            raise BackupError("jobs must be 1 or more, not %d" % jobs)
        self.source = os.path.abspath(os.path.expanduser(source)) if source else None
        self.directory = os.path.abspath(os.path.expanduser(directory)) if directory else None
        self.source_database = source_database or database
        self.database = database or None
        self.overwrite = overwrite
        self.keep_replaced = keep_replaced
        self.jobs = jobs
        self.no_owner = no_owner
        self.maintenance_db = maintenance_db
        self.bindir = bindir or None
        self.check_mode = check_mode


def locate_backup(opts):
    """(manifest path, manifest, dump path) of the backup to restore; fails naming what is missing."""
    if opts.source:
        if os.path.basename(opts.source) == MANIFEST_NAME:
            manifest_path = opts.source
        elif os.path.isfile(os.path.join(opts.source, MANIFEST_NAME)):
            manifest_path = os.path.join(opts.source, MANIFEST_NAME)
        else:
            if not os.path.exists(opts.source):
                raise BackupError("backup %s does not exist" % opts.source)
            manifest_path = os.path.join(os.path.dirname(opts.source.rstrip(os.sep)), MANIFEST_NAME)
        if not os.path.isfile(manifest_path):
            raise BackupError("no manifest %s beside the backup: its sha256 cannot be checked, refusing to restore"
                              % manifest_path)
        manifest = read_manifest(manifest_path)
    else:
        backups = find_manifests(opts.directory, opts.source_database)
        if not backups:
            raise BackupError("no backup of database %s in %s" % (opts.source_database, opts.directory))
        folder, manifest = backups[-1]
        manifest_path = os.path.join(folder, MANIFEST_NAME)
    dump_path = os.path.join(os.path.dirname(manifest_path), manifest["file"])
    if not os.path.exists(dump_path):
        raise BackupError("backup %s named by %s does not exist" % (dump_path, manifest_path))
    return manifest_path, manifest, dump_path


class Restore(object):
    """Restore one backup into a new database, or over the target database when told to."""

    def __init__(self, connect, client, options):
        self.connect = connect
        self.client = client
        self.opts = options

    def run(self):
        opts = self.opts
        manifest_path, manifest, dump_path = locate_backup(opts)
        database = opts.database or manifest["database"]
        result = dict(database=database, manifest=manifest_path, sha256_ok=False, replaced=False, changed=False,
                      run_id=manifest.get("run_id"))
        result["from"] = dump_path
        try:
            self._run(manifest, dump_path, database, result)
        except BackupError as exc:
            exc.result = dict(result, **exc.result)
            raise
        return result

    def _run(self, manifest, dump_path, database, result):
        opts = self.opts
        actual = sha256_of(dump_path)
        if actual != manifest["sha256"]:
            raise BackupError("sha256 of %s is %s but its manifest %s says %s: refusing to restore"
                              % (dump_path, actual, result["manifest"], manifest["sha256"]))
        result["sha256_ok"] = True
        maint = self.connect(opts.maintenance_db)
        try:
            version_num = _rows(maint, "SELECT current_setting('server_version_num')::int")[0][0]
            exists = self._datallowconn(maint, database)
            if exists is not None and not opts.overwrite:
                raise BackupError("database %s exists: set overwrite (restore_overwrite: true) to replace it with "
                                  "%s, or restore into a new database" % (database, dump_path))
            if opts.check_mode:
                result.update(changed=True, replaced=exists is not None,
                              msg="would restore %s into %s" % (dump_path, database))
                return
            with passfile(self.client.password) as pgpass:
                tools = Tools(find_bindir(opts.bindir, version_num), self.client, pgpass)
                dumped_by = manifest.get("pg_dump_version") or "0"
                check_client_version("pg_restore", tools.version("pg_restore"), int(dumped_by.split(".")[0]),
                                     "the pg_dump %s that wrote %s" % (dumped_by, dump_path))
                tools.listing(dump_path, opts.maintenance_db)
                self._restore(maint, tools, manifest, dump_path, database, exists, result)
        finally:
            maint.close()

    @staticmethod
    def _datallowconn(conn, database):
        rows = _rows(conn, "SELECT datallowconn FROM pg_catalog.pg_database WHERE datname = %s", (database,))
        return rows[0][0] if rows else None

    def _restore(self, maint, tools, manifest, dump_path, database, allowed_before, result):
        """Restore into a staging database, then give it the target's name; on any failure drop the
        staging database and give the target back its name and connections."""
        opts = self.opts
        existed = allowed_before is not None
        staging = scratch_name(database, "restore")
        replaced = scratch_name(database, "replaced") if existed else None
        owner_exists = bool(manifest.get("owner")) and bool(
            _rows(maint, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (manifest["owner"],)))
        if existed:
            # Keep the application out while the restore runs.
            _execute(maint, "ALTER DATABASE %s ALLOW_CONNECTIONS false" % quote_ident(database))
            self._terminate(maint, database)
        renamed_away = False
        try:
            _create_database(maint, staging, manifest, owner_exists)
            tools.restore(dump_path, staging, jobs=opts.jobs, no_owner=opts.no_owner)
            self._check_restored(staging, manifest)
            if existed:
                carry_database_privileges(maint, database, staging)
                self._terminate(maint, database)
                _rename_database(maint, database, replaced)
                renamed_away = True
            _rename_database(maint, staging, database)
        except BaseException:
            _drop_database(maint, staging)
            if renamed_away:
                _rename_database(maint, replaced, database)
            if allowed_before:
                _execute(maint, "ALTER DATABASE %s ALLOW_CONNECTIONS true" % quote_ident(database))
            raise
        if existed and not opts.keep_replaced:
            _drop_database(maint, replaced)
        result.update(changed=True, replaced=existed, replaced_kept_as=replaced if opts.keep_replaced else None,
                      msg="restored %s into %s%s" % (dump_path, database,
                                                     " (replacing the database that was there)" if existed else ""))

    @staticmethod
    def _terminate(conn, database):
        _rows(conn, "SELECT pg_catalog.pg_terminate_backend(pid, 5000) FROM pg_catalog.pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid()", (database,))

    def _check_restored(self, staging, manifest):
        """The restored tables (and their rows, when the backup was proven) are those of the manifest."""
        conn = self.connect(staging)
        try:
            tables = list_tables(conn)
            if manifest.get("tables") is not None and tables != manifest["tables"]:
                raise BackupError("the restore into %s does not hold the backup's tables: %s" % (
                    staging, describe_differences(sorted(set(manifest["tables"]) - set(tables)),
                                                  sorted(set(tables) - set(manifest["tables"])), [])))
            if manifest.get("row_counts"):
                missing, extra, mismatched = compare_counts(manifest["row_counts"], row_counts(conn, tables))
                if missing or extra or mismatched:
                    raise BackupError("the restore into %s does not hold the backup's rows: %s"
                                      % (staging, describe_differences(missing, extra, mismatched)))
        finally:
            conn.close()
