"""What an operator checks after a rollout, as plain Python: the databases (psycopg2),
the backups and the run records the rollout wrote. The molecule scenarios' testinfra
verifiers are thin calls into this module, so they can move to plain pytest or to
molecule's ansible verifier without being rewritten; nothing here needs testinfra.

Where things are comes from molecule's environment: MOLECULE_INSTANCE_CONFIG (written
by shared/create.yml: each instance's database, cluster and PgBouncer) and
MOLECULE_SCENARIO_DIRECTORY (its .state/ holds the backups, records and the schema each
database started with).
"""

import datetime
import glob
import hashlib
import json
import os
import stat
import sys

import psycopg2
import yaml

PROJECT_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))
sys.path.insert(0, os.path.join(PROJECT_DIR, "tests", "harness"))

sys.path.insert(0, os.path.join(PROJECT_DIR, ".collections"))

import app_client  # noqa: E402  (the pgbouncer scenario's application)
import pgcluster  # noqa: E402  (the harness: one place that knows the clusters)
from ansible_collections.teei.db_rollout.plugins.plugin_utils import run_record  # noqa: E402  (its schema)

PHASE_C_DIR = os.path.join(PROJECT_DIR, "migrations", "phase_c")
HISTORY_TABLE = "public.schema_migrations"
# The history table and the engine's tables named after it (its log, with its sequence): their
# columns and rows change with every run, so schema comparisons leave them out (pg_dump pattern).
ENGINE_TABLES = HISTORY_TABLE + "*"
APP_ROLE = ("cockpit_app", "cockpit_app")  # the fixtures' application role and its password
# The db_password every scenario's inventory gives the rollout (shared/base.yml). The harness
# clusters trust loopback connections, so it opens nothing; the checks look for it where no
# password may appear (records, manifests, backup file names).
DB_PASSWORD = "molecule-sentinel-password-7f3e9c"

# The runbook's six Phase C migrations, and the history rows of the phases before it that
# the fixtures hold (applied_at in UTC).
PHASE_C_VERSIONS = [
    "001_add_tenant_routing",
    "002_add_rbac_roles",
    "003_add_api_keys_table",
    "004_add_audit_log_table",
    "005_add_weight_overrides_table",
    "006_add_integration_configs_table",
]
EARLIER_PHASES = [
    ("phase_a_001_initial_schema", "2025-06-02 09:14:00"),
    ("phase_a_002_users_email_unique", "2025-06-02 09:14:05"),
    ("phase_b_001_sessions", "2025-09-10 21:03:00"),
]

# What the runbook's "Post-Migration Validation" and the migrations' verification queries
# list, by the migration that brings it: tables, (table, column), (table, index), foreign
# keys as (table, column, referenced table), (table, CHECK constraint), (table, trigger),
# functions and enum types. The indexes are those this project's migrations create: they
# leave out the runbook's idx_companies_slug and idx_api_keys_key_hash, which a UNIQUE covers.
RUNBOOK_OBJECTS = {
    "001_add_tenant_routing": dict(
        columns=[("companies", "slug"), ("companies", "tenant_enabled"), ("companies", "tenant_config"),
                 ("users", "allowed_tenants"), ("sessions", "tenant_id"),
                 ("sessions", "last_tenant_switch_at")],
        indexes=[("companies", "companies_slug_key"), ("sessions", "idx_sessions_tenant_id")]),
    "002_add_rbac_roles": dict(
        tables=["role_hierarchy", "permissions", "role_permissions"],
        types=["user_role_enum"]),
    "003_add_api_keys_table": dict(
        tables=["api_keys", "api_key_usage"],
        indexes=[("api_keys", "api_keys_pkey"), ("api_keys", "api_keys_key_hash_key"),
                 ("api_keys", "idx_api_keys_company_id"), ("api_keys", "idx_api_keys_expires_at"),
                 ("api_key_usage", "api_key_usage_pkey"), ("api_key_usage", "idx_api_key_usage_api_key_id"),
                 ("api_key_usage", "idx_api_key_usage_used_at")],
        foreign_keys=[("api_keys", "company_id", "companies"), ("api_keys", "created_by", "users"),
                      ("api_keys", "revoked_by", "users"), ("api_key_usage", "api_key_id", "api_keys")],
        checks=[("api_keys", "valid_expiry"), ("api_keys", "valid_revocation")]),
    "004_add_audit_log_table": dict(
        tables=["audit_log"],
        indexes=[("audit_log", "audit_log_pkey"), ("audit_log", "idx_audit_log_company_id"),
                 ("audit_log", "idx_audit_log_user_id"), ("audit_log", "idx_audit_log_timestamp"),
                 ("audit_log", "idx_audit_log_action"), ("audit_log", "idx_audit_log_severity")],
        foreign_keys=[("audit_log", "company_id", "companies"), ("audit_log", "user_id", "users")],
        checks=[("audit_log", "valid_severity")],
        functions=["cleanup_old_audit_logs"]),
    "005_add_weight_overrides_table": dict(
        tables=["weight_overrides", "weight_override_history"],
        foreign_keys=[("weight_overrides", "company_id", "companies"),
                      ("weight_override_history", "weight_override_id", "weight_overrides")],
        triggers=[("weight_overrides", "weight_override_update_trigger")],
        functions=["track_weight_override_changes"]),
    "006_add_integration_configs_table": dict(
        tables=["integration_configs", "integration_delivery_log"],
        foreign_keys=[("integration_configs", "company_id", "companies"),
                      ("integration_delivery_log", "integration_config_id", "integration_configs")]),
}
OBJECT_KINDS = ["tables", "columns", "indexes", "foreign_keys", "checks", "triggers", "functions", "types"]


# ---------------------------------------------------------------- instances

def scenario_dir():
    return os.environ["MOLECULE_SCENARIO_DIRECTORY"]


def state_dir(*parts):
    """A path under the scenario's .state/ (shared/create.yml)."""
    return os.path.join(scenario_dir(), ".state", *parts)


class Instance(object):
    """One molecule instance: a database on a harness cluster (and maybe a PgBouncer)."""

    def __init__(self, config):
        self.config = config
        self.name = config["instance"]
        self.db_name = config["db_name"]

    @classmethod
    def all(cls):
        with open(os.environ["MOLECULE_INSTANCE_CONFIG"]) as handle:
            return [cls(config) for config in yaml.safe_load(handle) or []]

    @classmethod
    def named(cls, name):
        for instance in cls.all():
            if instance.name == name:
                return instance
        raise AssertionError("%s is not in molecule's instance config %s: was the scenario created?"
                             % (name, os.environ["MOLECULE_INSTANCE_CONFIG"]))

    def connect(self, user=None, password=None, port=None):
        conn = psycopg2.connect(host=self.config["db_host"], port=port or self.config["db_port"],
                                dbname=self.db_name, user=user or self.config["db_user"],
                                password=password, connect_timeout=10)
        conn.autocommit = True
        return conn

    def rows(self, sql, params=None):
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return [tuple(row) for row in cur.fetchall()]
        finally:
            conn.close()

    def value(self, sql, params=None):
        rows = self.rows(sql, params)
        assert len(rows) == 1 and len(rows[0]) == 1, "expected one value from %s, got %r" % (sql, rows)
        return rows[0][0]

    def schema(self):
        """The schema dump now, without the engine's tables (as shared/create.yml keeps it)."""
        cluster = pgcluster.Cluster.attach(self.config["cluster_dir"])
        return cluster.pg_dump_schema(self.db_name, exclude_tables=[ENGINE_TABLES]).strip()

    def schema_before(self):
        """The schema dump shared/create.yml took before anything ran."""
        with open(state_dir("instances", self.name, "schema_before.sql")) as handle:
            return handle.read().strip()


# ---------------------------------------------------------------- the history table

def history(instance):
    """Every row of the history table, oldest version first: dicts of its columns."""
    conn = instance.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM %s ORDER BY version" % HISTORY_TABLE)
            names = [column.name for column in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        conn.close()


def set_history(instance):
    """The history rows of the migration set: all but the earlier phases' (the fixtures')."""
    earlier = {version for version, _ in EARLIER_PHASES}
    return [row for row in history(instance) if row["version"] not in earlier]


def versions(instance):
    """The set's versions the history table holds."""
    return [row["version"] for row in set_history(instance)]


def assert_history_is_one_run(instance, expected_versions, run_id):
    """The set's rows are exactly ``expected_versions``, each carrying ``run_id``."""
    rows = set_history(instance)
    assert [row["version"] for row in rows] == expected_versions, [row["version"] for row in rows]
    assert {row["run_id"] for row in rows} == {run_id}, [(row["version"], row["run_id"]) for row in rows]


def assert_checksums_are_those_of_the_files(instance, set_dir=PHASE_C_DIR):
    for row in set_history(instance):
        with open(os.path.join(set_dir, row["version"] + ".sql"), "rb") as handle:
            assert row["checksum"] == hashlib.sha256(handle.read()).hexdigest(), row["version"]


def assert_earlier_phases_untouched(instance):
    """The fixtures' rows of the phases before C: there, as they were, none of the columns the
    engine adds to the table filled in."""
    rows = [row for row in history(instance) if row["version"] in dict(EARLIER_PHASES)]
    assert [(row["version"], row["applied_at"].astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
            for row in rows] == EARLIER_PHASES, rows
    for row in rows:
        assert [name for name, value in row.items() if name not in ("version", "applied_at") and value is not None] \
            == [], row


# ---------------------------------------------------------------- the runbook's validation

def phase_c_objects(instance):
    """Which objects of the kinds the runbook lists exist in schema public now."""
    queries = dict(
        tables="SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        columns="SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'",
        indexes="SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public'",
        foreign_keys="SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text"
                     " FROM pg_constraint c JOIN pg_attribute a"
                     " ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
                     " WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
        checks="SELECT conrelid::regclass::text, conname FROM pg_constraint"
               " WHERE contype = 'c' AND connamespace = 'public'::regnamespace",
        triggers="SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal",
        functions="SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
        types="SELECT typname FROM pg_type WHERE typtype = 'e' AND typnamespace = 'public'::regnamespace",
    )
    found = {}
    for kind, sql in queries.items():
        rows = instance.rows(sql)
        found[kind] = {row if len(row) > 1 else row[0] for row in rows}
    return found


def expected_phase_c_objects(versions):
    """The runbook's objects of the given migrations, by kind."""
    return {kind: {item for version in versions for item in RUNBOOK_OBJECTS[version].get(kind, [])}
            for kind in OBJECT_KINDS}


def assert_runbook_validation(instance, up_to=PHASE_C_VERSIONS[-1]):
    """Every object the runbook lists for the migrations up to and including ``up_to`` (None:
    before 001) is there and none of a later one's: one message naming all that is wrong."""
    applied = PHASE_C_VERSIONS[:PHASE_C_VERSIONS.index(up_to) + 1] if up_to else []
    wanted = expected_phase_c_objects(applied)
    unwanted = expected_phase_c_objects([v for v in PHASE_C_VERSIONS if v not in applied])
    found = phase_c_objects(instance)
    problems = []
    for kind in OBJECT_KINDS:
        missing = sorted(wanted[kind] - found[kind])
        left = sorted(unwanted[kind] & found[kind])
        if missing:
            problems.append("%s missing: %s" % (kind, missing))
        if left:
            problems.append("%s that should be gone: %s" % (kind, left))
    assert not problems, "%s, expected at %s: %s" % (instance.name, up_to or "the start", "; ".join(problems))


# ---------------------------------------------------------------- the application's access

def assert_maintenance_off(instance, entry=None):
    """Nothing of a maintenance window is left: the database takes connections, the application
    role may log in and connect, and (given the record's ``entry`` of a run that turned
    maintenance on) the database's CONNECT grants are what they were before the window."""
    assert instance.value("SELECT datallowconn FROM pg_database WHERE datname = current_database()") is True
    assert instance.rows(
        "SELECT rolcanlogin, rolconnlimit, has_database_privilege(rolname, current_database(), 'CONNECT')"
        " FROM pg_roles WHERE rolname = %s", (APP_ROLE[0],)) == [(True, -1, True)]
    if entry is not None:
        maintenance = entry["results"]["maintenance_result"]
        assert (maintenance["state"], maintenance["failed"]) == ("off", False), maintenance["msg"]
        assert maintenance["enabled_at"] <= maintenance["disabled_at"], maintenance
        acl = instance.value("SELECT datacl::text[] FROM pg_database WHERE datname = current_database()")
        assert sorted(acl) == sorted(maintenance["acl_before"]), (acl, maintenance["acl_before"])


def assert_app_can_work(instance, port=None, up_to=PHASE_C_VERSIONS[-1]):
    """The application role connects (directly, or through a PgBouncer's ``port``) and reads
    and writes what its features need at version ``up_to``."""
    conn = instance.connect(user=APP_ROLE[0], password=APP_ROLE[1], port=port)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM companies")
            assert cur.fetchone()[0] > 0
            cur.execute("SELECT count(*) FROM users JOIN sessions ON sessions.user_id = users.id")
            if up_to and up_to >= "004_add_audit_log_table":
                conn.autocommit = False
                cur.execute("INSERT INTO audit_log (company_id, action, resource)"
                            " SELECT id, 'MOLECULE_CHECK', 'molecule' FROM companies LIMIT 1")
                assert cur.rowcount == 1
                conn.rollback()
    finally:
        conn.close()


def assert_client_waited_through(log_path, first_change, last_change):
    """The application's client (shared/app_client.py) wrote its final counts with no error, was
    answered before the change and after it, and one of its queries, sent before the first
    change (``first_change``, a datetime) was answered only after the last one: it waited
    through the window instead of failing."""
    queries, final = app_client.read_log(log_path)
    errors = [line for line in queries if not line["ok"]]
    assert final is not None, "the client did not finish its log (was it stopped?): %s" % log_path
    assert (final["errors"], errors) == (0, []), errors[:5]
    assert final["queries"] == len(queries) > 0
    first, last = [moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                   for moment in (first_change, last_change)]
    assert min(line["answered"] for line in queries) < first, (queries[0], first)
    assert max(line["answered"] for line in queries) > last, (queries[-1], last)
    assert [line for line in queries if line["started"] < first and line["answered"] > last], \
        "no query sent before %s was held until after %s" % (first, last)


# ---------------------------------------------------------------- backups

def assert_private_backup(backup):
    """A backup the record names: its 0700 folder holds only 0600 files, its manifest agrees
    with the dump on disk, and no password shows in its restore command or manifest."""
    directory = backup["directory"]
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o700, os.path.join(root, name)
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600, os.path.join(root, name)
    with open(backup["manifest"]) as handle:
        manifest = json.load(handle)
    assert manifest["sha256"] == backup["sha256"] == sha256_of(backup["path"]), (manifest, backup)
    for root, dirs, files in os.walk(directory):
        assert not [name for name in dirs + files if DB_PASSWORD in name], root
    assert DB_PASSWORD not in json.dumps(manifest) and DB_PASSWORD not in backup["restore_command"]
    return manifest


def sha256_of(path):
    """The sha256 of a dump file, or of a directory-format dump's files in name order."""
    digest = hashlib.sha256()
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, name) for root, _, files in os.walk(path) for name in files)
    for one in paths:
        with open(one, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def backup_dirs():
    """The run folders under the scenario's backup_dir (shared/base.yml)."""
    return sorted(path for path in glob.glob(state_dir("backups", "*")) if os.path.isdir(path))


# ---------------------------------------------------------------- run records

def records():
    """The JSON run records in the scenario's rollout_record_dir, oldest first."""
    found = []
    for path in glob.glob(state_dir("records", "*.json")):
        with open(path) as handle:
            found.append(json.load(handle))
    return sorted(found, key=lambda record: record["started_at"])


def assert_valid_record(record):
    """A record valid against the collection's schema (plugins/plugin_utils/run_record.schema.json),
    written privately beside its Markdown summary, with the inventory's db_password nowhere in it."""
    assert run_record.validate(record) == [], run_record.validate(record)
    json_path, md_path = run_record.record_paths(state_dir("records"), record["run_id"])
    assert stat.S_IMODE(os.stat(os.path.dirname(json_path)).st_mode) == 0o700
    for path in (json_path, md_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for path in (json_path, md_path):
        with open(path) as handle:
            assert DB_PASSWORD not in handle.read(), path


def record_entry(record, host):
    """The record's entry for one inventory host."""
    entries = [entry for entry in record["databases"] if entry["host"] == host]
    assert len(entries) == 1, (host, [entry.get("host") for entry in record["databases"]])
    return entries[0]


def assert_record_moved(entry, before, after, action, versions_in_order, set_dir=PHASE_C_DIR):
    """A database's entry says it moved from ``before`` to ``after`` through ``versions_in_order``,
    each with ``action`` and the checksum of the script that ran (the migration's file when
    applied, its rollback/ script when rolled back)."""
    assert (entry["outcome"], entry["error"]) == ("moved", None), entry["reason"]
    assert entry["versions"] == dict(before=before, after=after), entry["versions"]
    done = [m for m in entry["migrations"] if m["action"] == action]
    assert [m["version"] for m in done] == versions_in_order, entry["migrations"]
    for migration in done:
        script = os.path.join(set_dir, "rollback" if action == "rolled_back" else "", migration["version"] + ".sql")
        with open(script, "rb") as handle:
            assert migration["checksum"] == hashlib.sha256(handle.read()).hexdigest(), (script, migration)
