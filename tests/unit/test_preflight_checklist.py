"""The preflight checklist in plain Python: every box, and the one result fact built from them."""

import json

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils import preflight
from ansible_collections.teei.db_rollout.plugins.module_utils.preflight import (
    BOX_ORDER,
    PreflightError,
    backup_space_box,
    blocking_sessions_box,
    change_ticket_box,
    check_margin,
    checklist,
    nearest_existing,
    threshold_seconds,
)

PING = dict(changed=False, is_available=True, conn_err_msg="",
            server_version=dict(major=15, minor=18, full="15.18", raw="PostgreSQL 15.18 on x86_64"))
STATUS = dict(changed=False, migration_set="phase_c", applied_versions=["001_a"], pending=["002_b", "003_c"],
              problems=[], current_version="001_a", missing_rollbacks=[],
              pending_tables={"002_b": ["public.users"], "003_c": ["public.companies"]},
              preconditions=[dict(version="002_b", ok=True, msg="holds")], last_run=None)
SESSIONS = dict(changed=False, boxes=[dict(name="blocking_sessions", ok=True, msg="none", details={}),
                                      dict(name="backup_space", ok=True, msg="room", details={})])
SKIPPED = dict(changed=False, skipped=True, skip_reason="Conditional result was False")


def run(**kw):
    args = dict(ping=PING, status=STATUS, sessions=SESSIONS, where="postgres@db:5432/cockpit",
                migration_path="/set")
    args.update(kw)
    return checklist(**args)


def boxes(result):
    return dict((b["name"], b) for b in result["boxes"])


def test_every_box_is_reported_in_the_checklists_order():
    result = run()
    assert [b["name"] for b in result["boxes"]] == list(BOX_ORDER)
    assert all(set(b) == {"name", "ok", "msg", "details"} for b in result["boxes"])
    assert result["failed"] is False and result["changed"] is False
    assert result["pending"] == ["002_b", "003_c"] and result["current_version"] == "001_a"
    assert result["server_version"] == "15.18" and result["nothing_pending"] is False


def test_wrong_major_version_fails_naming_the_accepted_ones():
    result = run(accepted_major_versions=[16, 17])
    box = boxes(result)["server_version"]
    assert not box["ok"] and "PostgreSQL 15.18" in box["msg"] and "16, 17" in box["msg"]
    assert result["failed"] and result["failed_boxes"] == ["server_version"]


def test_no_connection_fails_credentials_and_says_the_rest_was_not_checked():
    ping = dict(changed=False, is_available=False, server_version={},
                conn_err_msg="connection refused\n\tIs the server running?")
    result = run(ping=ping, status=SKIPPED, sessions=SKIPPED)
    box = boxes(result)["credentials"]
    assert not box["ok"] and box["msg"] == ("cannot connect to postgres@db:5432/cockpit: connection refused "
                                            "Is the server running?")
    assert all(b["msg"].startswith("not checked") for b in result["boxes"]
               if b["name"] not in ("credentials", "change_ticket"))
    assert result["nothing_pending"] is False and result["current_version"] is None


def test_the_message_names_every_box_that_does_not_hold():
    status = dict(STATUS, missing_rollbacks=["003_c"],
                  preconditions=[dict(version="002_b", ok=False, msg="users.role holds 'owner'")])
    result = run(status=status, require_change_ticket=True, change_ticket="", environment="production")
    assert result["failed_boxes"] == ["rollback_scripts", "preconditions", "change_ticket"]
    assert "3 of 9 checklist boxes do not hold" in result["msg"]
    assert "rollback/003_c.sql" in result["msg"] and "002_b: users.role holds 'owner'" in result["msg"]
    assert "a production run needs a change ticket" in result["msg"]


def test_changed_migration_fails_the_migration_set_box():
    status = dict(STATUS, problems=["001_a.sql has changed since it was applied"])
    box = boxes(run(status=status))["migration_set"]
    assert not box["ok"] and "001_a.sql has changed" in box["msg"]


def test_unreadable_set_fails_the_migration_set_box_with_the_engines_message():
    status = dict(failed=True, msg="migration set /nope does not exist or is not a directory")
    result = run(status=status, sessions=SKIPPED)
    assert "/nope does not exist" in boxes(result)["migration_set"]["msg"]
    assert not result["nothing_pending"]


def test_an_engine_without_the_status_keys_is_reported_not_passed():
    status = dict((k, v) for k, v in STATUS.items() if k not in ("missing_rollbacks", "preconditions"))
    result = run(status=status)
    assert result["failed_boxes"] == ["rollback_scripts", "preconditions"]


def test_nothing_pending_succeeds_and_skips_the_session_and_space_boxes():
    status = dict(STATUS, applied_versions=["001_a", "002_b", "003_c"], pending=[], current_version="003_c",
                  pending_tables={}, preconditions=[])
    result = run(status=status, sessions=SKIPPED)
    assert result["failed"] is False and result["nothing_pending"] is True
    assert "nothing is pending at 003_c" in boxes(result)["nothing_pending"]["msg"]
    assert boxes(result)["backup_space"]["ok"] and boxes(result)["blocking_sessions"]["ok"]


@pytest.mark.parametrize("ticket, ok", [("CHG12345", True), ("", False), ("CHG-1", False), ("chg1", False),
                                        ("  CHG7  ", True)])
def test_change_ticket_pattern_in_production(ticket, ok):
    assert change_ticket_box(ticket, True, "^CHG[0-9]+$", "production")["ok"] is ok


def test_change_ticket_not_required_outside_production():
    box = change_ticket_box("", False, "^CHG[0-9]+$", "staging")
    assert box["ok"] and "not required in environment staging" in box["msg"]


def test_bad_change_ticket_pattern_is_named():
    box = change_ticket_box("CHG1", True, "^CHG[0-9+$", "production")
    assert not box["ok"] and "is not a regular expression" in box["msg"]


def test_blocking_session_message_names_pid_user_application_age_and_query():
    session = dict(pid=4242, user="cockpit_app", application="billing", client="10.0.0.7",
                   state="idle in transaction", transaction_age_s=64, state_age_s=63,
                   query="UPDATE   companies\n SET name = 'x'", locks="companies RowExclusiveLock")
    box = blocking_sessions_box(["public.companies"], ["public.api_keys"], [session], "5min", "10s")
    assert not box["ok"]
    for part in ("pid 4242", "user cockpit_app", "application billing", "idle in transaction for 63s",
                 "transaction open for 64s", "companies RowExclusiveLock", "UPDATE companies SET name = 'x'"):
        assert part in box["msg"]
    assert box["details"]["tables_not_yet_created"] == ["public.api_keys"]


def test_backup_space_needs_size_times_margin(tmp_path):
    ok = backup_space_box(str(tmp_path), str(tmp_path), 1000, 600, 1.5)
    short = backup_space_box(str(tmp_path / "run"), str(tmp_path), 899, 600, 1.5)
    assert ok["ok"] and ok["details"]["required_bytes"] == 900
    assert not short["ok"] and "not enough room" in short["msg"] and "checked at %s" % tmp_path in short["msg"]


def test_a_backup_dir_that_does_not_exist_yet_is_measured_at_its_parent(tmp_path):
    assert nearest_existing(str(tmp_path / "a" / "b")) == str(tmp_path)
    assert preflight.free_bytes(str(tmp_path)) > 0
    box = preflight.measure_backup_space(str(tmp_path / "a"), 1, 1.0)
    assert box["ok"] and box["details"]["checked_path"] == str(tmp_path)


@pytest.mark.parametrize("value", ["soon", "-1s", "5 parsecs"])
def test_bad_threshold_is_named(value):
    with pytest.raises(PreflightError, match="idle_in_transaction_threshold"):
        threshold_seconds(value, "idle_in_transaction_threshold")


def test_thresholds_parse_postgresql_durations():
    assert threshold_seconds("5min", "x") == 300 and threshold_seconds("500ms", "x") == 0.5


def test_margin_must_be_positive():
    with pytest.raises(PreflightError, match="backup_space_margin must be more than 0"):
        check_margin(0)


def test_result_is_json_serialisable():
    assert json.loads(json.dumps(run())) == run()


APPLIED = dict(STATUS, applied_versions=["001_a", "002_b", "003_c"], pending=[], current_version="003_c",
               pending_tables={}, preconditions=[], missing_rollbacks=[])


def test_rollback_purpose_checks_the_engines_rollback_plan():
    plan = dict(changed=False, rolled_back=["003_c", "002_b"])
    result = run(purpose="rollback", status=APPLIED, rollback=plan, rollback_target="001_a")
    assert result["failed"] is False and result["nothing_pending"] is False
    assert result["to_roll_back"] == ["003_c", "002_b"] and result["purpose"] == "rollback"
    assert "003_c, 002_b" in boxes(result)["rollback_scripts"]["msg"]
    assert boxes(result)["nothing_pending"]["msg"] == "2 to roll back to 001_a: 003_c, 002_b"


def test_rollback_purpose_fails_with_the_engines_refusal():
    plan = dict(failed=True, msg="002_b has no rollback script rollback/002_b.sql")
    result = run(purpose="rollback", status=APPLIED, rollback=plan, rollback_target="001_a", sessions=SKIPPED)
    assert "rollback_scripts" in result["failed_boxes"]
    assert "the rollback to 001_a cannot run: 002_b has no rollback script" in result["msg"]
    assert result["to_roll_back"] is None and result["nothing_pending"] is False


def test_rollback_purpose_needs_a_target():
    result = run(purpose="rollback", status=APPLIED, rollback=SKIPPED, rollback_target="", sessions=SKIPPED)
    assert "a rollback needs a target version" in boxes(result)["rollback_scripts"]["msg"]


def test_nothing_to_roll_back_is_nothing_pending():
    result = run(purpose="rollback", status=APPLIED, rollback=dict(changed=False, rolled_back=[]),
                 rollback_target="003_c", sessions=SKIPPED)
    assert result["failed"] is False and result["nothing_pending"] is True and result["to_roll_back"] == []


def test_unknown_purpose_is_named():
    with pytest.raises(PreflightError, match="preflight_purpose must be rollout or rollback, not sideways"):
        run(purpose="sideways")
