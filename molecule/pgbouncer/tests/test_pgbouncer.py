"""pgbouncer: the rollout paused the PgBouncer for its window instead of revoking CONNECT; the
application's client, querying through it all along, saw no error and had a query held
across the migrations (sent before the first, answered after the last); the database is at the end of Phase C and the PgBouncer is
serving again."""

import rollout_checks as checks

testinfra_hosts = ["databases"]


def test_the_window_paused_the_pgbouncer_and_resumed_it(instance, run_records):
    maintenance = checks.record_entry(run_records[0], instance.name)["results"]["maintenance_result"]
    assert (maintenance["method"], maintenance["state"], maintenance["failed"]) == ("pgbouncer", "off", False)
    bouncer = instance.config["pgbouncer"]
    assert [(p["host"], p["port"]) for p in maintenance["pgbouncers"]] == [(bouncer["host"], bouncer["port"])]
    # PgBouncer keeps no time of a PAUSE: the record's window is the times this run paused and resumed.
    assert maintenance["enabled_at"] and maintenance["enabled_at"] <= maintenance["disabled_at"], maintenance


def test_the_client_saw_no_error_and_waited_through_the_window(instance):
    applied = [row["applied_at"] for row in checks.set_history(instance)]
    checks.assert_client_waited_through(checks.state_dir("instances", instance.name, "client.log"),
                                        min(applied), max(applied))


def test_history_holds_the_six_migrations_of_the_run(instance, run_records):
    checks.assert_history_is_one_run(instance, checks.PHASE_C_VERSIONS, run_records[0]["run_id"])


def test_runbook_validation_finds_every_phase_c_object(instance):
    checks.assert_runbook_validation(instance)


def test_the_application_works_through_the_pgbouncer_again(instance):
    checks.assert_app_can_work(instance, port=instance.config["pgbouncer"]["port"])
    checks.assert_app_can_work(instance)


def test_the_record_is_valid_and_the_backup_private(instance, run_records):
    checks.assert_valid_record(run_records[0])
    checks.assert_private_backup(checks.record_entry(run_records[0], instance.name)["results"]["backup_result"])
