"""The preflight role, run by ansible-playbook against harness clusters: each box of the checklist
holding, and failing on its own with its message, with the database unchanged."""

import os
import shutil

import psycopg2
import pytest

from conftest import strip_history_table
from _preflight import PHASE_C, boxes, failed_task_msgs, run_role

VERSIONS = ["001_add_tenant_routing", "002_add_rbac_roles", "003_add_api_keys_table",
            "004_add_audit_log_table", "005_add_weight_overrides_table", "006_add_integration_configs_table"]


def preflight(db, tmp_path, check=False, **extra):
    extra.setdefault("backup_dir", str(tmp_path / "backups"))
    return run_role("preflight.yml", db, tmp_path, extra_vars=extra, check=check)


def only_failed(result):
    return [b["name"] for b in result["boxes"] if not b["ok"]]


@pytest.fixture
def idle_session(db):
    """Open sessions left idle in a transaction: holder(sql, application) -> (pid, connection)."""
    conns = []

    def hold(sql, application="billing-worker"):
        conn = psycopg2.connect(db.cluster.dsn(db.name), application_name=application)
        conn.cursor().execute(sql)  # psycopg2 opened a transaction; it stays open, idle
        conns.append(conn)
        return conn.get_backend_pid()

    yield hold
    for conn in conns:
        conn.close()


def test_every_box_holds_on_the_fixture_in_production_with_a_ticket_and_nothing_changes(db, tmp_path):
    schema = db.schema()
    result, proc, tasks = preflight(db, tmp_path, rollout_environment="production", change_ticket="CHG4711")
    assert proc.returncode == 0, failed_task_msgs(tasks)
    assert [b["name"] for b in result["boxes"]] == [
        "credentials", "server_version", "migration_set", "rollback_scripts", "preconditions",
        "blocking_sessions", "backup_space", "change_ticket", "nothing_pending"]
    assert only_failed(result) == []
    assert result["nothing_pending"] is False and result["pending"] == VERSIONS
    assert result["server_version"].startswith("15.") and result["changed"] is False
    assert boxes(result)["backup_space"]["details"]["checked_path"] == str(tmp_path)
    assert boxes(result)["change_ticket"]["msg"] == "change ticket CHG4711"
    assert all(not r.get("changed") for _, r in tasks)
    assert db.schema() == schema


def test_idle_in_transaction_session_holding_a_lock_fails_naming_it(db, tmp_path, idle_session):
    pid = idle_session("UPDATE companies SET name = name WHERE false")
    schema = db.schema()
    result, proc, tasks = preflight(db, tmp_path, preflight_idle_in_transaction_threshold="0s")
    assert proc.returncode != 0
    assert only_failed(result) == ["blocking_sessions"]
    msg = failed_task_msgs(tasks)[-1]
    assert "[blocking_sessions]" in msg
    for part in ("pid %d" % pid, "user postgres", "application billing-worker", "idle in transaction",
                 "companies RowExclusiveLock", "UPDATE companies SET name = name WHERE false"):
        assert part in msg, (part, msg)
    session = boxes(result)["blocking_sessions"]["details"]["sessions"][0]
    assert session["pid"] == pid and session["application"] == "billing-worker"
    assert db.schema() == schema


def test_old_transaction_fails_even_below_the_idle_threshold(db, tmp_path, idle_session):
    pid = idle_session("SELECT count(*) FROM users")
    result, proc, _ = preflight(db, tmp_path, preflight_idle_in_transaction_threshold="1h",
                                preflight_old_transaction_threshold="0s")
    assert proc.returncode != 0 and only_failed(result) == ["blocking_sessions"]
    assert "pid %d" % pid in boxes(result)["blocking_sessions"]["msg"]
    assert "users AccessShareLock" in boxes(result)["blocking_sessions"]["msg"]


def test_on_the_database_host_over_its_socket_sessions_below_the_thresholds_or_on_other_tables_do_not_block(
        db, tmp_path, idle_session):
    db.psql("CREATE TABLE unrelated (id int)")
    idle_session("LOCK TABLE unrelated IN ACCESS EXCLUSIVE MODE", application="other-table")
    idle_session("SELECT count(*) FROM sessions", application="young")
    result, proc, tasks = preflight(db, tmp_path, preflight_idle_in_transaction_threshold="1h",
                                    preflight_old_transaction_threshold="1h", db_unix_socket=db.cluster.socketdir,
                                    db_delegate_to_controller=False)
    assert proc.returncode == 0, failed_task_msgs(tasks)
    assert boxes(result)["credentials"]["msg"].startswith("connected to postgres@%s" % db.cluster.socketdir)
    checked = boxes(result)["blocking_sessions"]["details"]["tables"]
    assert "public.companies" in checked and "public.unrelated" not in checked


def test_wrong_major_version_fails_naming_what_is_accepted_and_check_mode_reports_every_box(db, tmp_path):
    result, proc, tasks = preflight(db, tmp_path, check=True, preflight_accepted_major_versions=[16, 17])
    assert proc.returncode != 0 and only_failed(result) == ["server_version"]
    assert "accepts major versions 16, 17" in failed_task_msgs(tasks)[-1]
    report = [r for name, r in tasks if name.endswith(": Report every box of the checklist")][0]["msg"]
    assert len(report) == 9 and report[0].startswith("[ok] credentials")
    assert report[1].startswith("[FAILED] server_version: server is PostgreSQL 15.")


@pytest.mark.parametrize("ticket", [None, "CHG-12"])
def test_production_without_a_valid_change_ticket_fails_before_anything_changed(db, tmp_path, ticket):
    schema = db.schema()
    extra = dict(rollout_environment="production")
    if ticket is not None:
        extra["change_ticket"] = ticket
    result, proc, tasks = preflight(db, tmp_path, **extra)
    assert proc.returncode != 0 and only_failed(result) == ["change_ticket"]
    assert "change ticket" in failed_task_msgs(tasks)[-1] and "^CHG[0-9]+$" in failed_task_msgs(tasks)[-1]
    assert db.schema() == schema


def test_no_room_for_the_backup_fails_naming_the_folder(db, tmp_path):
    result, proc, tasks = preflight(db, tmp_path, preflight_backup_space_margin=1e12)
    assert proc.returncode != 0 and only_failed(result) == ["backup_space"]
    msg = failed_task_msgs(tasks)[-1]
    assert "not enough room for the backup in %s" % (tmp_path / "backups") in msg
    assert not (tmp_path / "backups").exists()


def test_failing_precondition_fails_naming_the_migration(db, tmp_path):
    db.psql("INSERT INTO users (company_id, email, role) SELECT id, 'owner@example.com', 'owner' "
            "FROM companies LIMIT 1")
    schema = db.schema()
    result, proc, tasks = preflight(db, tmp_path)
    assert proc.returncode != 0 and only_failed(result) == ["preconditions"]
    assert "002_add_rbac_roles" in failed_task_msgs(tasks)[-1] and "'owner'" in failed_task_msgs(tasks)[-1]
    assert db.schema() == schema


def test_pending_migration_without_rollback_script_fails_naming_it(db, tmp_path):
    mset = tmp_path / "phase_c"
    shutil.copytree(PHASE_C, str(mset))
    os.unlink(str(mset / "rollback" / "006_add_integration_configs_table.sql"))
    result, proc, tasks = preflight(db, tmp_path, migrate_path=str(mset))
    assert proc.returncode != 0 and only_failed(result) == ["rollback_scripts"]
    assert "rollback/006_add_integration_configs_table.sql" in failed_task_msgs(tasks)[-1]


def test_migration_changed_since_it_was_applied_fails_the_migration_set(db, tmp_path):
    result, proc = db.pg_migrate(path=PHASE_C, target="001_add_tenant_routing")
    assert proc.returncode == 0, result.get("msg")
    mset = tmp_path / "phase_c"
    shutil.copytree(PHASE_C, str(mset))
    with open(str(mset / "001_add_tenant_routing.sql"), "a") as handle:
        handle.write("\n-- edited after it was applied\n")
    result, proc, tasks = preflight(db, tmp_path, migrate_path=str(mset))
    assert proc.returncode != 0 and "migration_set" in only_failed(result)
    assert "001_add_tenant_routing.sql has changed since it was applied" in failed_task_msgs(tasks)[-1]


def test_nothing_pending_succeeds_with_nothing_pending_true(db, tmp_path):
    result, proc = db.pg_migrate(path=PHASE_C)
    assert proc.returncode == 0, result.get("msg")
    schema = strip_history_table(db.schema())
    rows = db.psql("SELECT count(*) FROM schema_migrations")
    result, proc, tasks = preflight(db, tmp_path, preflight_backup_space_margin=1e12)
    assert proc.returncode == 0, failed_task_msgs(tasks)
    assert result["nothing_pending"] is True and result["pending"] == []
    assert result["current_version"] == VERSIONS[-1]
    assert strip_history_table(db.schema()) == schema and db.psql("SELECT count(*) FROM schema_migrations") == rows


def test_bad_credentials_fail_the_credentials_box_without_leaking_the_password(password_db, tmp_path):
    result, proc, tasks = run_role(
        "preflight.yml", password_db, tmp_path,
        extra_vars=dict(db_password="wrong-secret-7f3a", backup_dir=str(tmp_path / "backups")))
    assert proc.returncode != 0 and result["failed_boxes"][0] == "credentials"
    assert "password authentication failed" in boxes(result)["credentials"]["msg"]
    assert "wrong-secret-7f3a" not in proc.stdout + proc.stderr



def test_a_migration_set_that_cannot_be_read_fails_and_is_never_nothing_pending(db, tmp_path):
    result, proc, tasks = preflight(db, tmp_path, migrate_path=str(tmp_path / "no_such_set"))
    assert proc.returncode != 0 and result["nothing_pending"] is False
    assert only_failed(result)[0] == "migration_set"
    assert "no_such_set does not exist" in boxes(result)["migration_set"]["msg"]


def test_before_a_rollback_the_engines_plan_is_checked_and_sessions_on_any_table_block(db, tmp_path, idle_session):
    result, proc = db.pg_migrate(path=PHASE_C)
    assert proc.returncode == 0, result.get("msg")
    result, proc, tasks = preflight(db, tmp_path, preflight_purpose="rollback",
                                    migrate_target="003_add_api_keys_table")
    assert proc.returncode == 0, failed_task_msgs(tasks)
    assert result["to_roll_back"] == VERSIONS[:2:-1] and result["nothing_pending"] is False
    assert all(not r.get("changed") for _, r in tasks)

    mset = tmp_path / "phase_c"
    shutil.copytree(PHASE_C, str(mset))
    os.unlink(str(mset / "rollback" / "005_add_weight_overrides_table.sql"))
    db.psql("CREATE TABLE unrelated (id int)")
    pid = idle_session("LOCK TABLE unrelated IN SHARE MODE", application="reporting")
    applied = db.versions()
    result, proc, tasks = preflight(db, tmp_path, migrate_path=str(mset), preflight_purpose="rollback",
                                    migrate_target="003_add_api_keys_table",
                                    preflight_idle_in_transaction_threshold="0s")
    assert proc.returncode != 0
    assert only_failed(result) == ["rollback_scripts", "blocking_sessions", "nothing_pending"]
    msg = failed_task_msgs(tasks)[-1]
    assert "005_add_weight_overrides_table has no rollback script" in msg
    assert "pid %d" % pid in msg and "application reporting" in msg and "unrelated ShareLock" in msg
    assert db.versions() == applied
