"""Planning: what a run applies or rolls back, and every reason it refuses to start."""

import pytest

from ansible_collections.teei.db_rollout.plugins.plugin_utils.sqlparse import parse_tree as parse_set
from ansible_collections.teei.db_rollout.plugins.module_utils.planning import HistoryRow, PlanError, plan

FILES = dict(("%03d_m%d.sql" % (i, i), ("SELECT %d;" % i).encode()) for i in range(1, 5))
FILES.update(dict(("rollback/%03d_m%d.sql" % (i, i), b"SELECT 0;") for i in range(1, 5)))
MSET = parse_set("phase", FILES)


def row(version, mset=MSET, set_name="phase", checksum=True):
    migration = mset.get(version)
    return HistoryRow(version, None, migration.checksum if (migration and checksum) else None, set_name)


def test_pending_migrations_are_applied_in_order():
    result = plan(MSET, [row("001_m1")])
    assert [m.version for m in result.to_apply] == ["002_m2", "003_m3", "004_m4"]
    assert result.current_version == "001_m1"


def test_target_stops_the_apply():
    result = plan(MSET, [], target="002_m2")
    assert [m.version for m in result.to_apply] == ["001_m1", "002_m2"]


def test_target_not_in_set_is_an_error():
    with pytest.raises(ValueError, match="target 009_nope is not a migration of set phase"):
        plan(MSET, [], target="009_nope")


def test_rows_of_other_phases_are_neither_pending_nor_errors():
    result = plan(MSET, [HistoryRow("phase_a_001_initial_schema"), HistoryRow("phase_b_001_sessions", None, None, "b")])
    assert result.pending == MSET.versions and not result.problems


def test_changed_file_fails_naming_it():
    changed = HistoryRow("001_m1", None, "0" * 64, "phase")
    with pytest.raises(PlanError, match="001_m1.sql has changed since it was applied"):
        plan(MSET, [changed])


def test_applied_migration_missing_from_set_fails_naming_it():
    with pytest.raises(PlanError, match="000_gone.sql was applied from set phase but is missing"):
        plan(MSET, [HistoryRow("000_gone", None, "a" * 64, "phase")])


def test_pending_older_than_applied_fails_unless_allowed():
    rows = [row("001_m1"), row("003_m3")]
    with pytest.raises(PlanError, match="002_m2.sql is older than the newest applied migration 003_m3"):
        plan(MSET, rows)
    result = plan(MSET, rows, allow_out_of_order=True)
    assert [m.version for m in result.to_apply] == ["002_m2", "004_m4"]


def test_status_reports_problems_instead_of_failing():
    result = plan(MSET, [HistoryRow("001_m1", None, "0" * 64, "phase")], state="status")
    assert result.problems and "001_m1.sql has changed" in result.problems[0]


def test_rollback_runs_newest_first_down_to_target_exclusive():
    rows = [row(v) for v in MSET.versions]
    result = plan(MSET, rows, state="rolled_back", target="002_m2")
    assert [m.version for m in result.to_rollback] == ["004_m4", "003_m3"]


def test_rollback_to_none_rolls_back_everything():
    rows = [row(v) for v in MSET.versions[:2]]
    result = plan(MSET, rows, state="rolled_back", target="none")
    assert [m.version for m in result.to_rollback] == ["002_m2", "001_m1"]
    assert result.versions_after() == []


def test_rollback_refuses_rows_another_tool_wrote():
    with pytest.raises(PlanError, match="001_m1 was not recorded by teei.db_rollout"):
        plan(MSET, [row("001_m1", set_name=None, checksum=False)], state="rolled_back", target="none")


def test_rollback_needs_a_rollback_script():
    mset = parse_set("phase", {"001_a.sql": b"SELECT 1;"})
    with pytest.raises(PlanError, match="001_a has no rollback script rollback/001_a.sql"):
        plan(mset, [row("001_a", mset=mset)], state="rolled_back", target="none")


def test_no_transaction_migration_cannot_join_a_batch_transaction():
    mset = parse_set("phase", {"001_a.sql": b"-- rollout: no-transaction\nSELECT 1;"})
    with pytest.raises(PlanError, match="no-transaction and cannot run with transaction: all"):
        plan(mset, [], transaction="all")


def test_nothing_pending_plans_nothing():
    result = plan(MSET, [row(v) for v in MSET.versions])
    assert result.to_apply == [] and result.pending == []


def test_rollback_without_a_target_refuses_instead_of_rolling_back_everything():
    rows = [row(v) for v in MSET.versions]
    with pytest.raises(PlanError, match="state rolled_back needs a target"):
        plan(MSET, rows, state="rolled_back")


def test_no_transaction_rollback_cannot_join_a_batch_transaction():
    mset = parse_set("phase", {"001_a.sql": b"SELECT 1;",
                               "rollback/001_a.sql": b"-- rollout: no-transaction\nDROP INDEX CONCURRENTLY i;"})
    with pytest.raises(PlanError, match="rollback/001_a.sql is marked no-transaction"):
        plan(mset, [row("001_a", mset=mset)], state="rolled_back", target="none", transaction="all")
