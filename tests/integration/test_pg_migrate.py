"""teei.db_rollout.pg_migrate against a real PostgreSQL 15, driven through Ansible.

Each test names the guarantee it checks, runs the module ad hoc (or through
ansible-playbook), and then looks at the database directly.
"""

import os
import signal
import subprocess
import threading
import time

import pytest

from _engine import make_set, schema_without_engine_tables, wait_for
from conftest import ROOT, ansible_env, run_playbook, write_inventory

HISTORY_COLUMNS = "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute " \
                  "WHERE attrelid = 'public.schema_migrations'::regclass AND attnum > 0 AND NOT attisdropped"
EARLIER_ROWS = "SELECT string_agg(version || '@' || applied_at, ';' ORDER BY version) FROM schema_migrations " \
               "WHERE version LIKE 'phase_%'"


BASIC = {
    "001_create_widgets.sql": "CREATE TABLE widgets (id int PRIMARY KEY, label text DEFAULT 'a;b');\n"
                              "INSERT INTO widgets VALUES (1, $$x;y$$);\n",
    "rollback/001_create_widgets.sql": "DROP TABLE widgets;\n",
    "verify/001_create_widgets.sql": "DO $$ BEGIN IF (SELECT count(*) FROM widgets) <> 1 THEN "
                                     "RAISE EXCEPTION 'widgets should hold 1 row'; END IF; END $$;\n",
    "002_add_colour.sql": "ALTER TABLE widgets ADD COLUMN colour text;\n",
    "rollback/002_add_colour.sql": "ALTER TABLE widgets DROP COLUMN colour;\n",
    "003_add_gadgets.sql": "CREATE TABLE gadgets (id int PRIMARY KEY);\n",
    "rollback/003_add_gadgets.sql": "DROP TABLE gadgets;\n",
}


def table_exists(db, name):
    return db.psql("SELECT to_regclass('public.%s') IS NOT NULL" % name) == "t"


def set_versions(db):
    return [v for v in db.versions() if not v.startswith("phase_")]


def assert_unchanged(db, schema_before):
    assert db.schema() == schema_before


# ---------------------------------------------------------------- applying

def test_applies_pending_migrations_in_order_each_with_its_history_row(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    result, proc = db.pg_migrate(path=path, change_ticket="CHG-42", run_id="run-1", applied_by="ops@ctl")
    assert proc.returncode == 0, result
    assert result["changed"] is True
    assert result["applied"] == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]
    assert result["current_version"] == "003_add_gadgets" and result["previous_version"] is None
    assert result["pending"] == []
    assert [m["version"] for m in result["migrations"]] == result["applied"]
    assert all(len(m["checksum"]) == 64 and m["duration_ms"] >= 0 for m in result["migrations"])
    rows = db.psql("SELECT version, length(checksum), run_id, change_ticket, applied_by, migration_set "
                   "FROM schema_migrations WHERE migration_set IS NOT NULL ORDER BY version")
    assert rows.splitlines() == ["%s|64|run-1|CHG-42|ops@ctl|phase_t" % v for v in result["applied"]]


def test_second_run_applies_nothing_and_reports_unchanged(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path)
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0
    assert result["changed"] is False and result["applied"] == []
    assert db.psql("SELECT count(*) FROM widgets") == "1"


def test_runbook_history_table_keeps_its_columns_and_earlier_rows(db, tmp_path):
    earlier = db.psql(EARLIER_ROWS)
    db.pg_migrate(path=make_set(tmp_path, BASIC))
    columns = db.psql(HISTORY_COLUMNS).split(",")
    assert columns[:2] == ["version", "applied_at"]
    assert {"checksum", "execution_ms", "applied_by", "run_id", "change_ticket", "migration_set"} <= set(columns)
    assert db.psql(EARLIER_ROWS) == earlier
    assert db.psql("SELECT count(*) FROM schema_migrations WHERE version LIKE 'phase_%' "
                   "AND migration_set IS NOT NULL") == "0"
    # Rolling the whole set back leaves the earlier phases' rows alone too.
    db.pg_migrate(path=str(tmp_path / "phase_t"), state="rolled_back", target="none")
    assert db.psql(EARLIER_ROWS) == earlier


def test_creates_a_missing_history_table(db, tmp_path):
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), history_table="rollout.history")
    assert proc.returncode == 0, result
    assert result["history_changes"] == ["created rollout.history", "created rollout.history_log"]
    assert db.versions("rollout.history") == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]


def test_target_stops_the_apply_there(db, tmp_path):
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), target="002_add_colour")
    assert proc.returncode == 0
    assert result["applied"] == ["001_create_widgets", "002_add_colour"]
    assert result["pending"] == ["003_add_gadgets"]
    assert not table_exists(db, "gadgets")


# ---------------------------------------------------------------- failures

FAILING = dict(BASIC, **{"002_add_colour.sql": "ALTER TABLE widgets ADD COLUMN colour text;\n\n"
                                              "-- the typo below fails\nUPDATE widgets SET colour = nope;\n"})


def test_failed_migration_leaves_database_at_previous_version(db, tmp_path):
    result, proc = db.pg_migrate(path=make_set(tmp_path, FAILING))
    assert proc.returncode != 0
    msg = result["msg"]
    assert "002_add_colour.sql failed at statement 2 (line 4)" in msg
    assert 'column "nope" does not exist' in msg
    assert "left at 001_create_widgets" in msg
    assert result["applied"] == ["001_create_widgets"]
    assert set_versions(db) == ["001_create_widgets"]
    assert db.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'widgets' "
                   "AND column_name = 'colour'") == "0"
    assert not table_exists(db, "gadgets")


def test_transaction_all_failure_leaves_database_as_before(db, tmp_path):
    before = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, FAILING), transaction="all")
    assert proc.returncode != 0
    assert "002_add_colour.sql failed at statement 2" in result["msg"]
    assert "nothing was applied" in result["msg"]
    assert_unchanged(db, before)


def test_transaction_all_applies_everything_together(db, tmp_path):
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), transaction="all")
    assert proc.returncode == 0, result
    assert set_versions(db) == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]


def test_failed_verification_never_commits_the_migration(db, tmp_path):
    files = dict(BASIC, **{"verify/002_add_colour.sql":
                           "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM widgets WHERE colour IS NOT NULL) THEN "
                           "RAISE EXCEPTION 'no widget has a colour'; END IF; END $$;\n"})
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert "verify/002_add_colour.sql failed at statement 1" in result["msg"]
    assert "no widget has a colour" in result["msg"]
    assert set_versions(db) == ["001_create_widgets"]
    assert db.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'colour'") == "0"


def test_verify_false_skips_verification(db, tmp_path):
    files = dict(BASIC, **{"verify/002_add_colour.sql": "SELECT 1/0;"})
    result, proc = db.pg_migrate(path=make_set(tmp_path, files), verify=False)
    assert proc.returncode == 0, result
    assert len(set_versions(db)) == 3


def test_failing_precondition_stops_the_run_with_nothing_changed(db, tmp_path):
    schema = db.schema()
    files = dict(BASIC, **{"check/003_add_gadgets.sql":
                           "DO $$ BEGIN IF EXISTS (SELECT 1 FROM companies) THEN "
                           "RAISE EXCEPTION 'companies must be empty first'; END IF; END $$;\n"})
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert "precondition check/003_add_gadgets.sql failed at statement 1" in result["msg"]
    assert "companies must be empty first" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert result["changed"] is False
    assert_unchanged(db, schema)


def test_precondition_runs_read_only(db, tmp_path):
    files = dict(BASIC, **{"check/001_create_widgets.sql": "DELETE FROM sessions;"})
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert "read-only transaction" in result["msg"]
    assert db.psql("SELECT count(*) FROM sessions") != "0"


def test_statement_timeout_fails_the_migration_clearly(db, tmp_path):
    files = {"001_slow.sql": "CREATE TABLE slow (id int);\nSELECT pg_sleep(5);\n"}
    result, proc = db.pg_migrate(path=make_set(tmp_path, files), statement_timeout="300ms")
    assert proc.returncode != 0
    assert "001_slow.sql failed at statement 2 (line 2)" in result["msg"]
    assert "statement timeout" in result["msg"]
    assert not table_exists(db, "slow")


# ---------------------------------------------------------------- drift

def test_changed_checksum_fails_before_anything_is_applied(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path, target="001_create_widgets")
    schema = db.schema()
    with open(os.path.join(path, "001_create_widgets.sql"), "a") as handle:
        handle.write("-- edited after it was applied\n")
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode != 0
    assert "001_create_widgets.sql has changed since it was applied" in result["msg"]
    assert_unchanged(db, schema)


def test_applied_migration_missing_from_the_set_fails(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path, target="002_add_colour")
    os.remove(os.path.join(path, "002_add_colour.sql"))
    os.remove(os.path.join(path, "rollback", "002_add_colour.sql"))
    schema = db.schema()
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode != 0
    assert "002_add_colour.sql was applied from set phase_t but is missing from the set" in result["msg"]
    assert_unchanged(db, schema)


def test_out_of_order_pending_migration_fails_unless_allowed(db, tmp_path):
    files = dict(BASIC)
    late = dict((name, files.pop(name)) for name in ("002_add_colour.sql", "rollback/002_add_colour.sql"))
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path)
    assert result["applied"] == ["001_create_widgets", "003_add_gadgets"]
    make_set(tmp_path, late)
    schema = db.schema()
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode != 0
    assert "002_add_colour.sql is older than the newest applied migration 003_add_gadgets" in result["msg"]
    assert_unchanged(db, schema)
    result, proc = db.pg_migrate(path=path, allow_out_of_order=True)
    assert proc.returncode == 0 and result["applied"] == ["002_add_colour"]


def test_status_reports_without_changing(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path, target="001_create_widgets")
    schema = db.schema()
    result, proc = db.pg_migrate(path=path, state="status")
    assert proc.returncode == 0 and result["changed"] is False
    assert result["applied_versions"] == ["001_create_widgets"]
    assert result["pending"] == ["002_add_colour", "003_add_gadgets"]
    assert_unchanged(db, schema)


# ---------------------------------------------------------------- check, rehearse, diff

def test_check_mode_reports_and_touches_nothing(db, tmp_path):
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), check=True, diff=True)
    assert proc.returncode == 0
    assert result["changed"] is True
    assert result["applied"] == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]
    assert result["rehearsed"] is False
    assert_unchanged(db, schema)


def test_rehearsal_applies_and_verifies_then_rolls_back(db, tmp_path):
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), check=True, rehearse=True)
    assert proc.returncode == 0, result
    assert result["rehearsed"] is True
    assert [m["action"] for m in result["migrations"]] == ["rehearsed"] * 3
    assert_unchanged(db, schema)


def test_rehearsal_catches_a_failing_migration_and_changes_nothing(db, tmp_path):
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, FAILING), check=True, rehearse=True)
    assert proc.returncode != 0
    assert "rehearsal failed, nothing was changed" in result["msg"]
    assert "002_add_colour.sql failed at statement 2" in result["msg"]
    assert_unchanged(db, schema)


def test_diff_mode_shows_versions_before_and_after(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path, target="001_create_widgets")
    result, proc = db.pg_migrate(path=path, diff=True)
    assert result["diff"]["before"] == "001_create_widgets\n"
    assert result["diff"]["after"] == "001_create_widgets\n002_add_colour\n003_add_gadgets\n"


# ---------------------------------------------------------------- rolling back

def test_rollback_to_a_target_runs_rollbacks_newest_first(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path)
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="001_create_widgets")
    assert proc.returncode == 0, result
    assert result["rolled_back"] == ["003_add_gadgets", "002_add_colour"]
    assert result["current_version"] == "001_create_widgets"
    assert set_versions(db) == ["001_create_widgets"]
    assert not table_exists(db, "gadgets") and table_exists(db, "widgets")
    again, proc = db.pg_migrate(path=path, state="rolled_back", target="001_create_widgets")
    assert again["changed"] is False


def test_rollback_to_none_restores_the_schema(db, tmp_path):
    before = schema_without_engine_tables(db)
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path)
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="none")
    assert proc.returncode == 0, result
    assert result["current_version"] is None
    assert set_versions(db) == []
    assert schema_without_engine_tables(db) == before


def test_rollback_in_check_mode_changes_nothing(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path)
    schema = db.schema()
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="none", check=True)
    assert result["rolled_back"] == ["003_add_gadgets", "002_add_colour", "001_create_widgets"]
    assert_unchanged(db, schema)


def test_failed_rollback_keeps_the_migration_and_its_row(db, tmp_path):
    files = dict(BASIC, **{"rollback/003_add_gadgets.sql": "DROP TABLE gadgets;\nDROP TABLE no_such_table;\n"})
    path = make_set(tmp_path, files)
    db.pg_migrate(path=path)
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="none")
    assert proc.returncode != 0
    assert "rollback/003_add_gadgets.sql failed at statement 2 (line 2)" in result["msg"]
    assert result["msg"].endswith("; the database is left at 003_add_gadgets")
    assert table_exists(db, "gadgets")
    assert set_versions(db) == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]


# ---------------------------------------------------------------- bad input

BAD_SETS = [
    ({"001_ok.sql": "SELECT 1;", "2_bad_name.sql": "SELECT 1;"}, "2_bad_name.sql is not a migration file name"),
    ({"001_a.sql": "SELECT 1;", "001_b.sql": "SELECT 1;"}, "duplicate version number 001"),
    ({"001_a.sql": "SELECT 1;", "rollback/002_b.sql": "SELECT 1;"}, "rollback/002_b.sql has no migration"),
    ({"001_a.sql": ""}, "001_a.sql is empty"),
    ({"001_a.sql": b"SELECT '\xe9t\xe9';"}, "001_a.sql is not valid UTF-8"),
    ({"001_a.sql": "SELECT 1;", "README.md": "notes"}, "README.md is not a migration file name"),
]


@pytest.mark.parametrize("files, message", BAD_SETS, ids=[m for f, m in BAD_SETS])
def test_malformed_set_fails_with_one_clear_error_and_no_change(db, tmp_path, files, message):
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert message in result["msg"]
    assert_unchanged(db, schema)


def test_missing_set_directory_fails(db, tmp_path):
    result, proc = db.pg_migrate(path=str(tmp_path / "nowhere"))
    assert proc.returncode != 0
    assert "nowhere does not exist" in result["msg"]


def test_target_not_in_set_fails_with_no_change(db, tmp_path):
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), target="009_nope")
    assert proc.returncode != 0
    assert "target 009_nope is not a migration of set phase_t" in result["msg"]
    assert_unchanged(db, schema)


def test_wrong_password_fails_clearly_and_never_shows_the_password(password_db, tmp_path):
    result, proc = password_db.pg_migrate(path=make_set(tmp_path, BASIC), login_password="not-the-Secret-123")
    assert proc.returncode != 0
    assert "password authentication failed" in result["msg"]
    assert "not-the-Secret-123" not in proc.stdout + proc.stderr
    assert set_versions(password_db) == []


def test_right_password_applies(password_db, tmp_path):
    result, proc = password_db.pg_migrate(path=make_set(tmp_path, BASIC))
    assert proc.returncode == 0, result
    assert password_db.cluster.password not in proc.stdout + proc.stderr


def test_unreachable_server_fails_clearly(db, tmp_path):
    import pgcluster
    port = pgcluster.free_port()
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), login_port=port)
    assert proc.returncode != 0
    assert "unable to connect to database" in result["msg"] and str(port) in result["msg"]


# ---------------------------------------------------------------- locks

def hold_lock(db, sql, marker):
    """Open a session that takes a lock and keeps it; returns the connection."""
    conn = db.connect()
    cur = conn.cursor()
    cur.execute("SET application_name = %s", (marker,))
    cur.execute("BEGIN")
    cur.execute(sql)
    return conn


LOCKING = {"001_alter_companies.sql": "ALTER TABLE companies ADD COLUMN tier int;\n",
           "rollback/001_alter_companies.sql": "ALTER TABLE companies DROP COLUMN tier;\n"}


def test_lock_timeout_retries_then_fails_naming_the_blocker(db, tmp_path):
    blocker = hold_lock(db, "LOCK TABLE companies IN ACCESS SHARE MODE /* report-generator */", "blocker")
    try:
        blocker_pid = blocker.get_backend_pid()
        result, proc = db.pg_migrate(path=make_set(tmp_path, LOCKING), lock_timeout="200ms",
                                     lock_retries=2, lock_retry_delay="100ms")
    finally:
        blocker.close()
    assert proc.returncode != 0
    msg = result["msg"]
    assert "001_alter_companies" in msg and "lock_timeout 200ms after 3 attempts" in msg
    assert "blocked by pid %d" % blocker_pid in msg and "report-generator" in msg
    assert db.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'tier'") == "0"
    assert set_versions(db) == []


def test_lock_timeout_retry_succeeds_once_the_blocker_goes(db, tmp_path):
    blocker = hold_lock(db, "LOCK TABLE companies IN ACCESS SHARE MODE", "blocker")

    def release_after_first_timeout():
        # Once the migration is seen waiting, outlast its 300ms lock_timeout, then let go.
        wait_for(lambda: db.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND application_name LIKE 'teei.db_rollout%'") != "0", 60)
        time.sleep(0.6)
        blocker.close()

    releaser = threading.Thread(target=release_after_first_timeout)
    releaser.start()
    try:
        result, proc = db.pg_migrate(path=make_set(tmp_path, LOCKING), lock_timeout="300ms",
                                     lock_retries=5, lock_retry_delay="200ms")
    finally:
        releaser.join()
    assert proc.returncode == 0, result
    assert result["migrations"][0]["attempts"] > 1
    assert set_versions(db) == ["001_alter_companies"]


def test_second_run_waits_for_the_run_lock_then_fails_naming_the_holder(db, tmp_path):
    holder = db.connect()
    holder_pid = holder.get_backend_pid()
    cur = holder.cursor()
    cur.execute("SET application_name = 'teei.db_rollout other-run'")
    cur.execute("SELECT pg_advisory_lock(%s, hashtext(current_database() || '/public.schema_migrations'))"
                % 0x7465)
    try:
        result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), run_lock_timeout="1s")
    finally:
        holder.close()
    assert proc.returncode != 0
    assert "another run holds the migration lock for public.schema_migrations" in result["msg"]
    assert "pid %d" % holder_pid in result["msg"]
    assert "other-run" in result["msg"]
    assert set_versions(db) == []


def test_concurrent_runs_never_apply_a_migration_twice(db, tmp_path):
    files = {"001_slow.sql": "CREATE TABLE once (id int);\nINSERT INTO once VALUES (1);\nSELECT pg_sleep(2);\n"}
    path = make_set(tmp_path, files)
    outcomes = []

    def run():
        outcomes.append(db.pg_migrate(path=path, run_lock_timeout="60s"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(proc.returncode == 0 for result, proc in outcomes), outcomes
    assert sorted(result["changed"] for result, proc in outcomes) == [False, True]
    assert db.psql("SELECT count(*) FROM once") == "1"
    assert set_versions(db) == ["001_slow"]


def test_killed_controller_releases_the_lock_and_abandons_the_migration(db, tmp_path):
    files = {"001_long.sql": "CREATE TABLE half_done (id int);\nSELECT pg_sleep(300);\n"}
    path = make_set(tmp_path, files)
    playbook = tmp_path / "migrate.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - teei.db_rollout.pg_migrate:\n"
        "        path: %s\n        login_host: %s\n        login_port: %d\n        login_db: %s\n"
        "        run_id: doomed-run\n" % (path, db.cluster.host, db.cluster.port, db.name))
    proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-c", "local",
                             "-e", "ansible_python_interpreter=%s" % os.path.join(ROOT, ".venv", "bin", "python"),
                             str(playbook)], env=ansible_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: db.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                 "'teei.db_rollout doomed-run' AND query LIKE '%pg_sleep%'") == "1", 60)
        # Kill the controller and everything it started, the module's process included
        # (ansible's workers run in sessions of their own, so a process group is not enough).
        kill_tree(proc.pid)
        proc.wait()
        # The server notices the dead client within seconds, not after pg_sleep's 300 s.
        gone = wait_for(lambda: db.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                        "'teei.db_rollout doomed-run'") == "0", 30)
        assert gone, "the dead run's session was still there after 30 s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert db.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0"
    assert not table_exists(db, "half_done")
    assert set_versions(db) == []


def kill_tree(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    doomed, todo = [], [root]
    while todo:
        pid = todo.pop()
        doomed.append(pid)
        todo.extend(children.get(pid, []))
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- no-transaction

def test_no_transaction_migration_runs_outside_a_transaction(db, tmp_path):
    files = {"001_index.sql": "-- rollout: no-transaction\n"
                              "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_created ON companies (created_at);\n",
             "rollback/001_index.sql": "-- rollout: no-transaction\n"
                                       "DROP INDEX CONCURRENTLY IF EXISTS idx_companies_created;\n"}
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0, result
    assert result["migrations"][0]["no_transaction"] is True
    assert db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_companies_created'::regclass") == "t"
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="none")
    assert proc.returncode == 0, result
    assert not table_exists(db, "idx_companies_created")


def test_failed_concurrent_index_build_leaves_no_invalid_index_and_no_record(db, tmp_path):
    files = {"001_unique_initial.sql": "-- rollout: no-transaction\n"
                                       "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_initial "
                                       "ON companies (left(name, 1));\n"}
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode != 0
    assert "001_unique_initial.sql failed at statement 1" in result["msg"]
    assert "could not create unique index" in result["msg"]
    assert db.psql("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == "0"
    assert set_versions(db) == []
    # A second run fails the same way instead of skipping an invalid index as done.
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode != 0 and set_versions(db) == []


def test_invalid_index_left_by_an_interrupted_build_is_rebuilt(db, tmp_path):
    # Leave an INVALID index behind the way a killed build does.
    db.psql("INSERT INTO companies (name) VALUES ('dup'), ('dup')")
    with pytest.raises(Exception):
        db.psql("CREATE UNIQUE INDEX CONCURRENTLY idx_companies_name ON companies (name)")
    assert db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_companies_name'::regclass") == "f"
    db.psql("DELETE FROM companies WHERE name = 'dup'")
    files = {"001_name_index.sql": "-- rollout: no-transaction\n"
                                   "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_name "
                                   "ON companies (name);\n"}
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode == 0, result
    assert db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_companies_name'::regclass") == "t"
    assert set_versions(db) == ["001_name_index"]


# ---------------------------------------------------------------- through a playbook and role

def test_migrate_role_applies_the_set_and_registers_migrate_result(db, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", db)
    playbook = tmp_path / "migrate.yml"
    playbook.write_text("- hosts: databases\n  gather_facts: false\n  roles:\n    - teei.db_rollout.migrate\n"
                        "  post_tasks:\n    - name: Show the result\n      ansible.builtin.debug:\n"
                        "        var: migrate_result.applied\n")
    data, proc = run_playbook(str(playbook), inventory=inventory,
                              extra_vars={"migrate_path": make_set(tmp_path, BASIC), "change_ticket": "CHG-7",
                                          "rollout_run_id": "run-role"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert data["stats"]["testdb"]["changed"] >= 1
    shown = data["plays"][0]["tasks"][-1]["hosts"]["testdb"]["migrate_result.applied"]
    assert shown == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]
    assert set_versions(db) == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]
    assert db.psql("SELECT DISTINCT change_ticket || '/' || run_id FROM schema_migrations "
                   "WHERE migration_set = 'phase_t'") == "CHG-7/run-role"


def test_failed_rollback_batch_with_transaction_all_rolls_nothing_back(db, tmp_path):
    files = dict(BASIC, **{"rollback/002_add_colour.sql": "ALTER TABLE widgets DROP COLUMN no_such_column;\n"})
    path = make_set(tmp_path, files)
    db.pg_migrate(path=path)
    schema = db.schema()
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="none", transaction="all")
    assert proc.returncode != 0
    assert "rollback/002_add_colour.sql failed at statement 1" in result["msg"]
    assert result["msg"].endswith("; transaction: all kept the whole batch, nothing was rolled back")
    assert result["rolled_back"] == []
    assert_unchanged(db, schema)
    assert len(set_versions(db)) == 3


def test_migration_set_is_read_on_the_controller_relative_to_the_playbook(db, tmp_path):
    (tmp_path / "files").mkdir()
    make_set(tmp_path / "files", BASIC, name="relative_set")
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Apply a set named relative to this playbook\n"
        "      teei.db_rollout.pg_migrate:\n"
        "        path: relative_set\n        login_host: %s\n        login_port: %d\n        login_db: %s\n"
        % (db.cluster.host, db.cluster.port, db.name))
    # ansible-playbook runs from the checkout, the module from Ansible's own temporary
    # directory: only the controller-side action can find files/relative_set.
    data, proc = run_playbook(str(playbook), extra_vars={"ansible_python_interpreter": os.path.join(
        ROOT, ".venv", "bin", "python")}, env={"ANSIBLE_INVENTORY": "localhost,"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert set_versions(db) == ["001_create_widgets", "002_add_colour", "003_add_gadgets"]
    assert db.psql("SELECT DISTINCT migration_set FROM schema_migrations WHERE migration_set IS NOT NULL") \
        == "relative_set"


def test_rollback_rehearsal_runs_the_rollbacks_and_changes_nothing(db, tmp_path):
    files = dict(BASIC, **{"rollback/003_add_gadgets.sql": "DROP TABLE gadgets;\nDROP TABLE no_such_table;\n"})
    path = make_set(tmp_path, files)
    db.pg_migrate(path=path)
    schema = db.schema()
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="none", check=True, rehearse=True)
    assert proc.returncode != 0
    assert "rehearsal failed, nothing was changed" in result["msg"]
    assert "rollback/003_add_gadgets.sql failed at statement 2" in result["msg"]
    make_set(tmp_path, {"rollback/003_add_gadgets.sql": "DROP TABLE gadgets;\n"})
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="001_create_widgets", check=True,
                                 rehearse=True)
    assert proc.returncode == 0, result
    assert result["rehearsed"] and result["rolled_back"] == ["003_add_gadgets", "002_add_colour"]
    assert_unchanged(db, schema)


def test_rollback_without_a_target_is_refused(db, tmp_path):
    path = make_set(tmp_path, BASIC)
    db.pg_migrate(path=path)
    result, proc = db.pg_migrate(path=path, state="rolled_back")
    assert proc.returncode != 0
    assert "state rolled_back needs a target" in result["msg"]
    assert len(set_versions(db)) == 3


def test_no_transaction_migration_is_recorded_only_after_its_last_statement(db, tmp_path):
    files = {"001_two_indexes.sql": "-- rollout: no-transaction\n"
                                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_created ON companies (created_at);\n"
                                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_bad ON companies (no_such_column);\n"}
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode != 0
    assert "001_two_indexes.sql failed at statement 2 (line 3)" in result["msg"]
    assert "not recorded as applied" in result["msg"]
    assert set_versions(db) == []
    # The first statement stays (it is written to be re-runnable); a fixed file then completes it.
    assert db.psql("SELECT to_regclass('idx_companies_created') IS NOT NULL") == "t"
    make_set(tmp_path, {"001_two_indexes.sql": files["001_two_indexes.sql"].replace("no_such_column", "name")})
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0, result
    assert set_versions(db) == ["001_two_indexes"]


def test_connects_through_a_unix_socket_like_community_postgresql(db, tmp_path):
    result, proc = db.pg_migrate(path=make_set(tmp_path, BASIC), login_host="",
                                 login_unix_socket=db.cluster.socketdir)
    assert proc.returncode == 0, result
    assert db.psql("SELECT count(*) FROM schema_migrations WHERE migration_set = 'phase_t'") == "3"


def test_no_transaction_migration_whose_verification_fails_is_not_recorded(db, tmp_path):
    files = {"001_index.sql": "-- rollout: no-transaction\n"
                              "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_created ON companies (created_at);\n",
             "verify/001_index.sql": "DO $$ BEGIN RAISE EXCEPTION 'index is not used by the planner'; END $$;\n"}
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert "verify/001_index.sql failed at statement 1" in result["msg"]
    assert "index is not used by the planner" in result["msg"]
    assert "not recorded as applied" in result["msg"]
    assert set_versions(db) == []
