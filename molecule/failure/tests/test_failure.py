"""failure: the rollout of a Phase C whose 004 fails ended failed (converge.yml), and left
the database as it found it: same schema, no Phase C history row, maintenance off, the
application connecting; its backup is private and its record names the failure."""

import os

import rollout_checks as checks

testinfra_hosts = ["databases"]
FAILURE = "molecule: 004 fails here on purpose"
FAILING_SET = checks.state_dir("phase_c_fails_at_004")


def test_database_is_back_at_its_starting_schema(instance):
    assert instance.schema() == instance.schema_before()


def test_history_holds_no_phase_c_row(instance):
    assert checks.versions(instance) == []
    checks.assert_earlier_phases_untouched(instance)


def test_no_runbook_object_of_phase_c_is_left(instance):
    checks.assert_runbook_validation(instance, up_to=None)


def test_maintenance_is_off_and_the_application_connects(instance, run_records):
    checks.assert_maintenance_off(instance, checks.record_entry(run_records[0], instance.name))
    checks.assert_app_can_work(instance, up_to=None)


def test_the_record_is_valid_and_names_the_failure(instance, run_records):
    assert len(run_records) == 1
    record = run_records[0]
    checks.assert_valid_record(record)
    assert (record["outcome"]["status"], record["outcome"]["failed_hosts"]) == ("failed", [instance.name])
    entry = checks.record_entry(record, instance.name)
    assert entry["outcome"] == "failed"
    assert "004_add_audit_log_table" in entry["error"] and FAILURE in entry["error"], entry["error"]


def test_the_record_says_001_to_003_were_applied_then_rolled_back_newest_first(instance, run_records):
    entry = checks.record_entry(run_records[0], instance.name)
    first_three = checks.PHASE_C_VERSIONS[:3]
    assert [(m["version"], m["action"]) for m in entry["migrations"]] == \
        [(v, "applied") for v in first_three] + [(v, "rolled_back") for v in reversed(first_three)]


def test_the_backup_taken_before_the_change_is_private(instance, run_records):
    backup = checks.record_entry(run_records[0], instance.name)["results"]["backup_result"]
    assert checks.assert_private_backup(backup)["run_id"] == run_records[0]["run_id"]


def test_the_rollout_ends_saying_what_failed_and_where_the_record_is(run_records):
    with open(checks.state_dir("rollout.log")) as handle:
        output = handle.read()
    assert FAILURE in output
    path = run_records[0]["run_id"] + ".json"
    assert output.strip().splitlines()[-1] == "Run record: " + os.path.join(checks.state_dir("records"), path)
