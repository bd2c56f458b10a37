"""The verify role, run by ansible-playbook against harness clusters: it passes after a full Phase C
apply, fails naming the check when the schema is not what Phase C makes, takes an inventory's own checks,
and changes nothing."""

import pytest

from _preflight import PHASE_C, failed_task_msgs, run_role

CHECKS = ["phase_c_tables", "phase_c_columns", "phase_c_indexes", "phase_c_foreign_keys",
          "phase_c_check_constraints", "phase_c_triggers", "phase_c_functions", "phase_c_role_enum",
          "phase_c_role_hierarchy", "companies_without_slug", "users_without_role"]
ROWS = "SELECT (SELECT count(*) FROM companies) || '/' || (SELECT count(*) FROM users) || '/' || " \
       "(SELECT count(*) FROM audit_log) || '/' || (SELECT count(*) FROM weight_override_history)"


@pytest.fixture
def phase_c_db(db):
    result, proc = db.pg_migrate(path=PHASE_C)
    assert proc.returncode == 0, result.get("msg")
    return db


def verify(db, tmp_path, **extra):
    return run_role("verify.yml", db, tmp_path, extra_vars=extra)


def failed(result):
    return [c["name"] for c in result["checks"] if not c["ok"]]


def test_verify_passes_after_a_full_phase_c_apply_and_changes_nothing(phase_c_db, tmp_path):
    schema, rows = phase_c_db.schema(), phase_c_db.psql(ROWS)
    result, proc, tasks = verify(phase_c_db, tmp_path)
    assert proc.returncode == 0, failed_task_msgs(tasks)
    names = [c["name"] for c in result["checks"]]
    assert names[-len(CHECKS):] == CHECKS
    assert "verify/set.sql" in names and "verify/004_add_audit_log_table.sql" in names
    assert result["ok"] is True and result["failed"] is False and result["changed"] is False
    assert all(not r.get("changed") for _, r in tasks)
    assert phase_c_db.schema() == schema and phase_c_db.psql(ROWS) == rows


def test_a_dropped_index_fails_naming_the_check_and_the_index(phase_c_db, tmp_path):
    phase_c_db.psql("DROP INDEX idx_audit_log_action")
    result, proc, tasks = verify(phase_c_db, tmp_path)
    assert proc.returncode != 0 and result["ok"] is False
    assert "phase_c_indexes" in failed(result)
    msg = failed_task_msgs(tasks)[-1]
    assert "[phase_c_indexes] Phase C indexes missing: audit_log.idx_audit_log_action (expected none)" in msg
    assert "verify/004_add_audit_log_table.sql" in failed(result)  # the set's own verification sees it too
    assert phase_c_db.psql("SELECT to_regclass('idx_audit_log_action') IS NULL") == "t"


def test_a_dropped_trigger_fails_naming_it(phase_c_db, tmp_path):
    phase_c_db.psql("DROP TRIGGER weight_override_update_trigger ON weight_overrides")
    result, proc, tasks = verify(phase_c_db, tmp_path, verify_set_verifications=False)
    assert proc.returncode != 0 and failed(result) == ["phase_c_triggers"]
    assert "weight_overrides.weight_override_update_trigger" in failed_task_msgs(tasks)[-1]


def test_before_phase_c_every_schema_check_fails_naming_what_is_missing(db, tmp_path):
    result, proc, tasks = verify(db, tmp_path, verify_set_verifications=False)
    assert proc.returncode != 0
    assert set(failed(result)) == set(CHECKS), result["report"]
    assert "Phase C tables missing: api_key_usage, api_keys, audit_log" in failed_task_msgs(tasks)[-1]


def test_an_inventorys_extra_checks_run_and_fail_by_name(phase_c_db, tmp_path):
    extra = [dict(name="four_permissions_for_viewers", expect=2,
                  sql="SELECT count(*) FROM role_permissions WHERE role = 'VIEWER'"),
             dict(name="companies_are_tenants", description="companies with tenant_enabled unset", expect=0,
                  sql="SELECT count(*) FROM companies WHERE tenant_enabled IS NULL")]
    result, proc, tasks = verify(phase_c_db, tmp_path, verify_extra_checks=extra, verify_set_verifications=False)
    assert result["checks"][-2]["name"] == "four_permissions_for_viewers" and result["checks"][-1]["ok"]
    extra[0]["expect"] = 4
    result, proc, tasks = verify(phase_c_db, tmp_path, verify_extra_checks=extra, verify_set_verifications=False)
    assert proc.returncode != 0 and failed(result) == ["four_permissions_for_viewers"]
    assert "returned: 2 (expected 4)" in failed_task_msgs(tasks)[-1]


def test_a_check_that_writes_is_refused_and_changes_nothing(phase_c_db, tmp_path):
    extra = [dict(name="sneaky_delete", expect=0,
                  sql="WITH gone AS (DELETE FROM audit_log RETURNING 1) SELECT count(*) FROM gone")]
    phase_c_db.psql("INSERT INTO audit_log (company_id, action, resource) SELECT id, 'A', 'R' FROM companies LIMIT 1")
    before = phase_c_db.psql(ROWS)
    result, proc, tasks = verify(phase_c_db, tmp_path, verify_checks=[], verify_extra_checks=extra,
                                 verify_set_verifications=False)
    assert proc.returncode != 0 and failed(result) == ["sneaky_delete"]
    assert "read-only transaction" in failed_task_msgs(tasks)[-1], result["report"]
    assert phase_c_db.psql(ROWS) == before
