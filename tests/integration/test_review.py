"""teei.db_rollout.pg_review and the review role on real PostgreSQL 15: what each pending statement
locks on this database, graded by the table's size here; policy, acceptance and the timed rehearsal.
The reviewed database never changes."""

import glob
import json
import os
import subprocess
import uuid

import psycopg2
import pytest

from conftest import ROOT, TEMPLATE_DB, Database, run_module, run_playbook, write_inventory

DATA = os.path.join(ROOT, "tests", "integration", "data", "review")
PHASE_C = os.path.join(ROOT, "migrations", "phase_c")
BIG_TEMPLATE = "review_big_template"
BIG_COMPANIES = 100000
# Thresholds set for the tests: the fixture's 50 companies grade low, its 100,000 high.
TEST_THRESHOLDS = dict(low_rows=10, high_rows=50000)
REVIEW_TASK = "Review every pending migration against the database it will run on"


def fresh(cluster, template):
    name = "r_" + uuid.uuid4().hex[:12]
    cluster.psql('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, template))
    return Database(cluster, name)


@pytest.fixture(scope="module")
def big_template(pg_cluster):
    """A template at 100,000 companies (one user and one session each), loaded once."""
    pg_cluster.load_fixtures(BIG_TEMPLATE, companies=BIG_COMPANIES, users_per_company=1, sessions_per_user=1)
    pg_cluster.psql("ANALYZE", dbname=BIG_TEMPLATE)
    yield BIG_TEMPLATE
    pg_cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % BIG_TEMPLATE)


@pytest.fixture
def small(pg_cluster):
    database = fresh(pg_cluster, TEMPLATE_DB)
    yield database
    pg_cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % database.name)


@pytest.fixture
def big(pg_cluster, big_template):
    database = fresh(pg_cluster, big_template)
    yield database
    pg_cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % database.name)


def review(db, path, **args):
    module_args = db.login_args()
    module_args.update(path=path, thresholds=dict(TEST_THRESHOLDS, **args.pop("thresholds", {})))
    module_args.update(args)
    return run_module("teei.db_rollout.pg_review", module_args)[0]


def own(result, table=None):
    """(rule, table, version, grade) of the review's own findings."""
    return sorted((f["rule"], f["table"], f["version"], f["grade"]) for f in result["findings"]
                  if f["source"] == "review" and (table is None or f["table"] == table))


def playbook_review_result(data):
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith(REVIEW_TASK):
                return list(task["hosts"].values())[0]
    raise AssertionError("the review task did not run")


def test_phase_c_001_is_low_on_50_companies_and_high_at_100000(small, big):
    before = small.schema(), big.schema()
    low = review(small, PHASE_C)
    high = review(big, PHASE_C)
    assert not low.get("failed") and not high.get("failed"), (low.get("msg"), high.get("msg"))
    slug = [f for f in low["findings"] if f["version"] == "001_add_tenant_routing" and f["line"] == 52
            and f["rule"] == "table-scan-under-lock"]
    assert [(f["table"], f["lock"], f["grade"], f["rows"]) for f in slug] == [
        ("public.companies", "ACCESS EXCLUSIVE", "low", 50)]
    slug = [f for f in high["findings"] if f["version"] == "001_add_tenant_routing" and f["line"] == 52
            and f["rule"] == "table-scan-under-lock"]
    assert [(f["table"], f["lock"], f["grade"], f["rows"]) for f in slug] == [
        ("public.companies", "ACCESS EXCLUSIVE", "high", BIG_COMPANIES)]
    assert "UNIQUE builds an index over every row" in slug[0]["message"]
    assert low["max_grade"] == "low" and high["max_grade"] == "high"
    assert (small.schema(), big.schema()) == before


def test_phase_c_is_reviewed_with_the_findings_it_really_has(small, tmp_path):
    before = small.schema()
    history = small.versions()
    data, proc = run_playbook(os.path.join(ROOT, "playbooks", "review.yml"), write_inventory(tmp_path / "hosts.yml", small),
                              extra_vars=dict(review_low_rows=10, review_high_rows=50000))
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = playbook_review_result(data)
    # (the JSON callback leaves out failed: false; the registered fact has it)
    assert set(["findings", "max_grade", "stop", "accepted", "predicted_window_seconds", "changed",
                "msg"]) <= set(result) and result["changed"] is False and result["predicted_window_seconds"] is None
    assert own(result) == sorted([
        ("table-scan-under-lock", "public.companies", "001_add_tenant_routing", "low"),
        ("table-scan-under-lock", "public.sessions", "001_add_tenant_routing", "low"),
        ("table-rewrite", "public.users", "001_add_tenant_routing", "low"),
        ("table-rewrite", "public.users", "002_add_rbac_roles", "low"),
        ("exclusive-lock", "public.users", "001_add_tenant_routing", "info"),
        ("exclusive-lock", "public.sessions", "001_add_tenant_routing", "info"),
        ("exclusive-lock", "public.users", "002_add_rbac_roles", "info"),
        ("exclusive-lock", "public.users", "002_add_rbac_roles", "info"),
        ("exclusive-lock", "public.companies", "003_add_api_keys_table", "info"),
        ("exclusive-lock", "public.users", "003_add_api_keys_table", "info"),
        ("exclusive-lock", "public.companies", "004_add_audit_log_table", "info"),
        ("exclusive-lock", "public.users", "004_add_audit_log_table", "info"),
        ("exclusive-lock", "public.companies", "005_add_weight_overrides_table", "info"),
        ("exclusive-lock", "public.users", "005_add_weight_overrides_table", "info"),
        ("exclusive-lock", "public.users", "005_add_weight_overrides_table", "info"),
        ("exclusive-lock", "public.companies", "006_add_integration_configs_table", "info"),
    ])
    # The rewrite the issue's lint cannot see: users rewritten inside 001's DO block, line 75.
    rewrite = [f for f in result["findings"] if f["rule"] == "table-rewrite" and f["version"].startswith("001")]
    assert rewrite[0]["line"] == 75 and "ALTER COLUMN allowed_tenants TYPE" in rewrite[0]["message"]
    squawk = sorted((f["rule"], f["table"]) for f in result["findings"] if f["source"] == "squawk")
    assert ("require-concurrent-index-creation", "public.sessions") in squawk
    assert ("disallowed-unique-constraint", "public.companies") in squawk
    assert "require-lock-timeout" not in [rule for rule, _table in squawk]  # the role's default exclude
    created = {"api_keys", "api_key_usage", "audit_log", "weight_overrides", "weight_override_history",
               "integration_configs", "integration_delivery_log", "role_hierarchy", "permissions",
               "role_permissions", "phase_c_001_slugs"}
    assert not [f for f in result["findings"] if (f["table"] or "").split(".")[-1] in created]
    # squawk's findings on the new tables (prefer-bigint-over-int on role_hierarchy...) are dropped too.
    dropped_squawk = [(d["rule"], d["table"]) for d in result["dropped"] if d["rule"] != "lock"]
    assert ("prefer-bigint-over-int", "role_hierarchy") in dropped_squawk
    assert set(table for _rule, table in dropped_squawk) <= created
    assert result["stop"] is False and result["stop_at"] == "never"
    assert result["pending"] == ["001_add_tenant_routing", "002_add_rbac_roles", "003_add_api_keys_table",
                                 "004_add_audit_log_table", "005_add_weight_overrides_table",
                                 "006_add_integration_configs_table"]
    assert small.schema() == before and small.versions() == history


def test_a_migration_that_creates_and_indexes_a_table_yields_no_lock_finding(big):
    result = review(big, os.path.join(DATA, "new_table"))
    assert not result.get("failed"), result.get("msg")
    assert [f for f in result["findings"] if f["table"] == "public.feature_flags"] == []
    assert own(result) == [("exclusive-lock", "public.companies", "001_create_and_index_feature_flags", "info")]
    assert ("lock", "feature_flags") in [(d["rule"], d["table"]) for d in result["dropped"]]


def test_alter_column_type_that_rewrites_a_large_table_is_high_and_names_the_rewrite(big):
    result = review(big, os.path.join(DATA, "rewrite"))
    [finding] = [f for f in result["findings"] if f["source"] == "review"]
    assert (finding["rule"], finding["table"], finding["grade"], finding["lock"]) == (
        "table-rewrite", "public.users", "high", "ACCESS EXCLUSIVE")
    assert "USING rewrites every row" in finding["message"] and "rewrites about 100000 rows" in finding["message"]


def test_not_null_column_with_a_volatile_default_rewrites_the_table(big):
    result = review(big, os.path.join(DATA, "volatile_default"))
    [finding] = [f for f in result["findings"] if f["source"] == "review"]
    assert (finding["rule"], finding["table"], finding["grade"]) == ("table-rewrite", "public.companies", "high")
    assert "volatile DEFAULT gen_random_uuid() rewrites every row" in finding["message"]


def test_a_long_transaction_on_a_touched_table_is_reported_with_its_pid_and_age(small):
    conn = psycopg2.connect(small.cluster.dsn(small.name), application_name="reporting-job")
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM users")
        pid = conn.get_backend_pid()
        result = review(small, os.path.join(DATA, "rewrite"), thresholds=dict(in_use_high_seconds=0))
    finally:
        conn.rollback()
        conn.close()
    [in_use] = [f for f in result["findings"] if f["rule"] == "table-in-use"]
    assert in_use["table"] == "public.users" and in_use["grade"] == "high"
    assert in_use["lock"] == "ACCESS EXCLUSIVE" and in_use["sessions"][0]["modes"] == ["ACCESS SHARE"]
    assert [s["pid"] for s in in_use["sessions"]] == [pid]
    assert in_use["sessions"][0]["application"] == "reporting-job"
    assert in_use["sessions"][0]["xact_age_seconds"] >= 0 and "pid %d" % pid in in_use["message"]
    [stats] = [t for t in result["tables"] if t["name"] == "public.users"]
    assert stats["sessions"][0]["pid"] == pid and stats["oldest_xact_age_seconds"] is not None


def recorded_review(record_dir):
    """review_result as the run record (callback teei.db_rollout.rollout_record) wrote it."""
    [path] = glob.glob(os.path.join(str(record_dir), "*.json"))
    with open(path) as handle:
        record = json.load(handle)
    os.unlink(path)
    [database] = record["databases"]
    return database["results"]["review_result"]


def test_production_stops_before_any_change_on_high_and_goes_through_when_accepted(big, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", big)
    playbook = os.path.join(DATA, "review_then_migrate.yml")
    records = tmp_path / "records"
    env = dict(ANSIBLE_CALLBACKS_ENABLED="teei.db_rollout.rollout_record", TEEI_ROLLOUT_RECORD_DIR=str(records))
    common = dict(rollout_environment="production", migrate_path=os.path.join(DATA, "index_large"),
                  review_low_rows=10, review_high_rows=50000)
    before = big.schema()
    data, proc = run_playbook(playbook, inventory, extra_vars=common, env=env)
    assert proc.returncode != 0
    result = playbook_review_result(data)
    assert (result["stop"], result["max_open_grade"], result["stop_at"]) == (True, "high", "high")
    assert big.schema() == before
    assert "001_index_sessions_expires_at" not in big.versions()
    assert recorded_review(records)["stop"] is True
    reason = "CHG-4711: sessions index built in the booked window; the application is in maintenance"
    accept = [{"rule": "table-scan-under-lock", "table": "public.sessions", "reason": reason}]
    data, proc = run_playbook(playbook, inventory, extra_vars=dict(common, review_accept=accept), env=env)
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = playbook_review_result(data)
    assert result["stop"] is False and result["max_grade"] == "high"
    accepted = [{"rule": "table-scan-under-lock", "table": "public.sessions", "version": "001_index_sessions_expires_at",
                 "line": 3, "grade": "high", "reason": reason}]
    assert result["accepted"] == accepted
    assert reason in result["summary_markdown"]
    recorded = recorded_review(records)
    assert recorded["accepted"] == accepted and recorded["stop"] is False
    assert big.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'sessions_expires_at'") == "1"
    assert "001_index_sessions_expires_at" in big.versions()


def pg_dump(db, path):
    subprocess.run([os.path.join(db.cluster.bindir, "pg_dump"), "-Fc", "-f", str(path), "-d", db.name],
                   env=db.cluster.env(), check=True, capture_output=True)
    return str(path)


def test_rehearsal_times_every_statement_on_a_copy_and_drops_it(small, tmp_path, capsys):
    dump = pg_dump(small, tmp_path / "small.dump")
    before = small.schema()
    history = small.versions()
    scratch = "review_scratch_" + uuid.uuid4().hex[:8]
    result = review(small, PHASE_C, rehearse=True, rehearse_from=dump, scratch_db=scratch)
    assert not result.get("failed"), result.get("msg")
    rehearsal = result["rehearsal"]
    assert rehearsal["ok"] and rehearsal["dropped"] and rehearsal["scratch_database"] == scratch
    assert small.scalar("SELECT count(*) FROM pg_database WHERE datname = '%s'" % scratch) == "0"
    first = rehearsal["statements"][0]
    assert (first["version"], first["line"], first["strongest_lock"]) == ("001_add_tenant_routing", 52,
                                                                          "ACCESS EXCLUSIVE")
    assert {"table": "public.companies", "lock": "ACCESS EXCLUSIVE"} in first["locks"]
    assert [(s["version"], s["line"]) for s in rehearsal["statements"]] == [
        (s["version"], s["line"]) for s in result["statements"]]
    total = round(sum(s["duration_ms"] for s in rehearsal["statements"]) / 1000.0, 3)
    assert result["predicted_window_seconds"] == total
    assert "Predicted maintenance window" in result["summary_markdown"]
    assert small.schema() == before and small.versions() == history
    applied = small.pg_migrate(path=PHASE_C)[0]
    assert not applied.get("failed"), applied.get("msg")
    measured = sum(m["duration_ms"] for m in applied["migrations"]) / 1000.0
    with capsys.disabled():
        print("\nrehearsal on a copy: %.3f s predicted; real apply on the same data: %.3f s"
              % (result["predicted_window_seconds"], measured))
    after = review(small, PHASE_C)
    assert (after["pending"], after["findings"], after["max_grade"], after["stop"]) == ([], [], "none", False)


def test_a_failed_rehearsal_is_high_names_the_statement_and_drops_the_scratch_database(small, tmp_path):
    dump = pg_dump(small, tmp_path / "small.dump")
    scratch = "review_scratch_" + uuid.uuid4().hex[:8]
    result = review(small, os.path.join(DATA, "fails"), rehearse=True, rehearse_from=dump, scratch_db=scratch)
    assert not result.get("failed"), result.get("msg")
    [failed] = [f for f in result["findings"] if f["rule"] == "rehearsal-failed"]
    assert failed["grade"] == "high" and failed["line"] == 3
    assert "001_add_then_fail.sql statement 2 (line 3): division by zero" in failed["message"]
    assert result["predicted_window_seconds"] is None and result["rehearsal"]["dropped"]
    assert small.scalar("SELECT count(*) FROM pg_database WHERE datname = '%s'" % scratch) == "0"
    assert small.scalar("SELECT count(*) FROM information_schema.columns WHERE column_name = 'rating'") == "0"


BAD_INPUTS = [
    (dict(squawk_path="/nonexistent/squawk"), "squawk binary /nonexistent/squawk does not exist or is not executable"),
    (dict(accept=[{"rule": "table-rewrite", "table": "users"}]), "review_accept[0] needs a non-empty reason"),
    (dict(thresholds=dict(lots=1)), "thresholds: unknown lots"),
    (dict(path="/nonexistent/set"), "migration set /nonexistent/set does not exist"),
    (dict(rehearse=True, rehearse_from="/nonexistent/dump"), "rehearsal dump /nonexistent/dump does not exist"),
]


def test_every_bad_input_is_one_clear_error_and_changes_nothing(small, tmp_path):
    before = small.schema()
    databases = small.scalar("SELECT count(*) FROM pg_database")
    data, proc = run_playbook(os.path.join(DATA, "bad_inputs.yml"), write_inventory(tmp_path / "hosts.yml", small),
                              extra_vars=dict(phase_c=PHASE_C, cases=[args for args, _message in BAD_INPUTS]))
    [task] = [t for t in data["plays"][0]["tasks"] if t["task"]["name"] == "Review with one bad input"]
    results = list(task["hosts"].values())[0]["results"]
    assert len(results) == len(BAD_INPUTS)
    for result, (args, message) in zip(results, BAD_INPUTS):
        assert result.get("failed") and message in result["msg"], (args, result.get("msg"))
    assert small.schema() == before and small.scalar("SELECT count(*) FROM pg_database") == databases


def test_review_connects_through_a_unix_socket(small):
    module_args = dict(small.login_args(), login_host=small.cluster.socketdir, path=os.path.join(DATA, "rewrite"))
    result = run_module("teei.db_rollout.pg_review", module_args)[0]
    assert not result.get("failed"), result.get("msg")
    assert own(result) == [("table-rewrite", "public.users", "001_users_name_to_text", "info")]


def test_the_password_never_shows(password_db):
    module_args = password_db.login_args()
    module_args.update(path=os.path.join(DATA, "rewrite"))
    result, proc = run_module("teei.db_rollout.pg_review", module_args)
    assert not result.get("failed"), result.get("msg")
    assert password_db.cluster.password not in proc.stdout + proc.stderr
