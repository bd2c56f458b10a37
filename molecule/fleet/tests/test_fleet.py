"""fleet: one run of the rollout moved every database of the fleet (three on one cluster,
one on another) wave by wave, each to the end of Phase C with the runbook's objects, its
own private backup and a working application role, and the record's fleet summary says so."""

import rollout_checks as checks

testinfra_hosts = ["databases"]
# The rollout's default waves, [1, "25%", "100%"], over the four hosts in inventory order.
WAVES = [["cockpit"], ["tenant_a"], ["tenant_b", "tenant_c"]]


def test_history_holds_phase_c_from_the_one_run(instance, run_records):
    assert len(run_records) == 1
    checks.assert_history_is_one_run(instance, checks.PHASE_C_VERSIONS, run_records[0]["run_id"])


def test_runbook_validation_finds_every_phase_c_object(instance):
    checks.assert_runbook_validation(instance)


def test_maintenance_is_off_and_the_application_works(instance, run_records):
    checks.assert_maintenance_off(instance, checks.record_entry(run_records[0], instance.name))
    checks.assert_app_can_work(instance)


def test_own_private_backup_of_this_database(instance, run_records):
    backup = checks.record_entry(run_records[0], instance.name)["results"]["backup_result"]
    manifest = checks.assert_private_backup(backup)
    assert (manifest["database"], manifest["run_id"]) == (instance.db_name, run_records[0]["run_id"])


def test_record_entry_says_this_database_moved_through_the_set(instance, run_records):
    entry = checks.record_entry(run_records[0], instance.name)
    checks.assert_record_moved(entry, None, checks.PHASE_C_VERSIONS[-1], "applied", checks.PHASE_C_VERSIONS)


def test_fleet_summary_says_every_database_moved_and_none_stayed_or_failed(run_records):
    record = run_records[0]
    checks.assert_valid_record(record)
    assert record["outcome"]["status"] == "succeeded"
    summary = record["summary"]
    assert sorted(entry["host"] for entry in summary["moved"]) == sorted(sum(WAVES, []))
    assert (summary["stayed"], summary["failed"]) == ([], [])


def test_each_wave_finished_before_the_next_began():
    """Read from the databases: every history row of a wave is older than those of the next."""
    spans = []
    for wave in WAVES:
        applied = [row["applied_at"] for name in wave for row in checks.set_history(checks.Instance.named(name))]
        spans.append((min(applied), max(applied)))
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end < start, spans
