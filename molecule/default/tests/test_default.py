"""default: after the rollout and a second converge that found nothing pending, the
database is at Phase C's last version with the runbook's objects, every history row
carries the first run's id, the one backup is private and matches its manifest, the
application role works, and both runs left a record."""

import rollout_checks as checks

testinfra_hosts = ["databases"]


def test_history_holds_the_six_migrations_of_the_first_run(instance, run_records):
    checks.assert_history_is_one_run(instance, checks.PHASE_C_VERSIONS, run_records[0]["run_id"])


def test_history_checksums_are_those_of_the_migration_files(instance):
    checks.assert_checksums_are_those_of_the_files(instance)


def test_earlier_phase_rows_are_untouched(instance):
    checks.assert_earlier_phases_untouched(instance)


def test_runbook_validation_finds_every_phase_c_object(instance):
    checks.assert_runbook_validation(instance)


def test_maintenance_is_off_and_the_application_works(instance, run_records):
    checks.assert_maintenance_off(instance, checks.record_entry(run_records[0], instance.name))
    checks.assert_app_can_work(instance)


def test_the_one_backup_is_private_and_matches_its_manifest(instance, run_records):
    backup = checks.record_entry(run_records[0], instance.name)["results"]["backup_result"]
    checks.assert_private_backup(backup)
    assert checks.backup_dirs() == [backup["directory"]]


def test_each_converge_wrote_a_valid_record(run_records):
    assert [record["outcome"]["status"] for record in run_records] == ["succeeded", "succeeded"]
    for record in run_records:
        checks.assert_valid_record(record)


def test_first_record_says_the_database_moved_through_the_whole_set(instance, run_records):
    entry = checks.record_entry(run_records[0], instance.name)
    checks.assert_record_moved(entry, None, checks.PHASE_C_VERSIONS[-1], "applied", checks.PHASE_C_VERSIONS)


def test_second_record_says_nothing_was_pending_and_took_no_backup(instance, run_records):
    entry = checks.record_entry(run_records[1], instance.name)
    assert (entry["outcome"], entry["reason"]) == ("stayed", "nothing pending"), entry
    assert "backup_result" not in entry["results"] and "maintenance_result" not in entry["results"]
