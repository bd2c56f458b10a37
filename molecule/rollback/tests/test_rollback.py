"""rollback: after the rollout of Phase C and rollback.yml down to 003, the database holds
exactly the runbook's objects of 001-003, the history keeps the rollout's rows of 001-003,
each run took its own private backup and left a valid record saying what it did, and the
application works again."""

import rollout_checks as checks

testinfra_hosts = ["databases"]
TARGET = "003_add_api_keys_table"
KEPT = checks.PHASE_C_VERSIONS[:3]
ROLLED_BACK = list(reversed(checks.PHASE_C_VERSIONS[3:]))


def test_history_keeps_the_rollouts_rows_up_to_the_target(instance, run_records):
    checks.assert_history_is_one_run(instance, KEPT, run_records[0]["run_id"])


def test_schema_holds_the_runbook_objects_up_to_the_target_and_none_later(instance):
    checks.assert_runbook_validation(instance, up_to=TARGET)


def test_earlier_phase_rows_are_untouched(instance):
    checks.assert_earlier_phases_untouched(instance)


def test_both_runs_wrote_a_valid_record(run_records):
    assert len(run_records) == 2 and run_records[0]["run_id"] != run_records[1]["run_id"]
    assert run_records[0]["ended_at"] <= run_records[1]["started_at"]
    for record in run_records:
        assert record["outcome"]["status"] == "succeeded", record["outcome"]
        checks.assert_valid_record(record)


def test_rollout_record_says_the_whole_set_was_applied(instance, run_records):
    entry = checks.record_entry(run_records[0], instance.name)
    checks.assert_record_moved(entry, None, checks.PHASE_C_VERSIONS[-1], "applied", checks.PHASE_C_VERSIONS)


def test_rollback_record_says_004_to_006_were_rolled_back_newest_first(instance, run_records):
    entry = checks.record_entry(run_records[1], instance.name)
    checks.assert_record_moved(entry, checks.PHASE_C_VERSIONS[-1], TARGET, "rolled_back", ROLLED_BACK)


def test_each_run_took_its_own_private_backup(instance, run_records):
    backups = [checks.record_entry(record, instance.name)["results"]["backup_result"] for record in run_records]
    for backup, record in zip(backups, run_records):
        assert checks.assert_private_backup(backup)["run_id"] == record["run_id"]
    assert checks.backup_dirs() == sorted(backup["directory"] for backup in backups)


def test_maintenance_is_off_and_the_application_works_at_the_target(instance, run_records):
    checks.assert_maintenance_off(instance, checks.record_entry(run_records[1], instance.name))
    checks.assert_app_can_work(instance, up_to=TARGET)
