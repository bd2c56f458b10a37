"""The run record, built from what a run left per database: valid against its schema, says who moved,
stayed or failed and why, never holds a secret, and is written privately."""

import json
import os
import stat

import jsonschema
import pytest

from ansible_collections.teei.db_rollout.plugins.plugin_utils import run_record
from ansible_collections.teei.db_rollout.plugins.plugin_utils.run_record import HostLog, build_record

PASSWORD = "pw-Zq81-never-here"


def context(**extra):
    ctx = run_record.new_context(run_id="20261202T220000Z-abcdef12", change_ticket="CHG-1", operator="ops",
                                 environment="staging", inventory=["inventories/staging"], playbook="rollout.yml",
                                 record_dir="/tmp/records")
    ctx.update(extra)
    return ctx


def migrate(applied=(), rolled_back=(), before=None, after=None, failed=False, attempts=1, msg=""):
    entries = [dict(version=v, action="applied", duration_ms=5, checksum="c" * 64, statements=2, attempts=attempts)
               for v in applied]
    entries += [dict(version=v, action="rolled_back", duration_ms=3, checksum="d" * 64, statements=1, attempts=1)
                for v in rolled_back]
    return dict(changed=bool(entries), failed=failed, msg=msg, applied=list(applied), rolled_back=list(rolled_back),
                previous_version=before, current_version=after, pending=[], migrations=entries,
                run_id="20261202T220000Z-abcdef12")


def moved_host(name="db1"):
    log = HostLog(name)
    log.add_fact("preflight_result", dict(changed=False, failed=False, msg="ok", nothing_pending=False,
                                          boxes=[dict(name="connect", ok=True, msg="connected", details={})],
                                          current_version="002_b", pending=["003_c"], server_version="15.4"))
    log.add_fact("backup_result", dict(changed=True, failed=False, msg="dumped", path="/b/db1.dump",
                                       manifest="/b/db1.json", sha256="e" * 64, size_bytes=1234, directory="/b",
                                       restore_command="pg_restore -d db1 /b/db1.dump", verify_restore=None))
    log.add_fact("maintenance_result", dict(changed=True, failed=False, msg="off", method="connections", state="off",
                                            enabled_at="2026-12-02T22:00:01Z", disabled_at="2026-12-02T22:00:09Z",
                                            sessions_waited=1, sessions_terminated=0, pgbouncers=[]))
    log.add_fact("migrate_result", migrate(applied=["003_c"], before="002_b", after="003_c", attempts=3))
    log.add_fact("verify_result", dict(changed=False, failed=False, msg="ok", ok=True,
                                       checks=[dict(name="tables", ok=True, msg="present")]))
    return log


def assert_valid(record):
    jsonschema.Draft7Validator(run_record.load_schema()).validate(record)
    assert run_record.validate(record) == []


def test_a_successful_run_is_valid_and_says_what_moved():
    record = build_record(context(), [moved_host()], "succeeded", ansible_core="2.19.14", collection="0.2.0")
    assert_valid(record)
    assert record["schema_version"] == 1
    assert record["run_id"] == "20261202T220000Z-abcdef12"
    assert (record["change_ticket"], record["operator"], record["environment"]) == ("CHG-1", "ops", "staging")
    assert record["versions"] == dict(ansible_core="2.19.14", collection="0.2.0")
    assert record["summary"]["moved"] == [dict(host="db1", reason="from 002_b to 003_c", before="002_b",
                                               after="003_c")]
    db = record["databases"][0]
    assert db["versions"] == dict(before="002_b", after="003_c")
    assert db["results"]["backup_result"]["sha256"] == "e" * 64
    assert db["results"]["maintenance_result"]["sessions_waited"] == 1


def test_lock_wait_retries_are_the_attempts_after_the_first():
    record = build_record(context(), [moved_host()], "succeeded")
    assert record["databases"][0]["migrations"] == [dict(version="003_c", action="applied", checksum="c" * 64,
                                                         duration_ms=5, attempts=3, lock_wait_retries=2,
                                                         statements=2)]


def test_every_migrate_result_of_the_run_counts_apply_then_rollback():
    log = HostLog("db1")
    log.add_fact("migrate_result", migrate(applied=["003_c", "004_d"], before="002_b", after="003_c", failed=True,
                                           msg="004_d failed: division by zero"))
    log.add_fact("migrate_result", migrate(rolled_back=["003_c"], before="003_c", after="002_b"))
    log.failed = True
    record = build_record(context(), [log], "failed")
    assert_valid(record)
    db = record["databases"][0]
    assert [(m["version"], m["action"]) for m in db["migrations"]] == [
        ("003_c", "applied"), ("004_d", "applied"), ("003_c", "rolled_back")]
    assert db["versions"] == dict(before="002_b", after="002_b")


def test_a_failed_task_is_the_reason_a_database_failed():
    log = moved_host("db2")
    log.add_error("Apply the migrations", "004_d failed: division by zero")
    log.failed = True
    record = build_record(context(), [moved_host(), log], "failed")
    assert_valid(record)
    assert record["outcome"]["failed_hosts"] == ["db2"]
    assert record["summary"]["failed"][0]["reason"] == "Apply the migrations: 004_d failed: division by zero"
    assert record["databases"][1]["error"] == "Apply the migrations: 004_d failed: division by zero"
    assert record["databases"][0]["error"] is None


def test_a_failed_result_fact_fails_its_database_even_without_a_failed_task():
    log = HostLog("db1")
    log.add_fact("verify_result", dict(changed=False, failed=True, msg="table missing", ok=False, checks=[]))
    record = build_record(context(), [log], "failed")
    assert record["databases"][0]["outcome"] == "failed"
    assert record["databases"][0]["reason"] == "verify_result: table missing"


def test_rescued_and_ignored_errors_are_kept_but_do_not_fail_the_database():
    log = moved_host()
    log.add_error("Probe", "no such table", ignored=True)
    log.add_error("Apply the migrations", "lock timeout")  # rescued: the host did not end failed
    record = build_record(context(), [log], "succeeded")
    assert record["databases"][0]["outcome"] == "moved"
    assert [e["msg"] for e in record["databases"][0]["errors"]] == ["no such table", "lock timeout"]


def test_a_database_the_stopped_run_never_reached_stayed_and_says_so():
    record = build_record(context(), [moved_host(), HostLog("db9")], "failed")
    assert_valid(record)
    assert record["summary"]["stayed"] == [dict(host="db9", reason="not reached: the run stopped before this database",
                                                before=None, after=None)]


def test_nothing_pending_stays():
    log = HostLog("db1")
    log.add_fact("preflight_result", dict(changed=False, failed=False, msg="nothing pending", nothing_pending=True,
                                          boxes=[], current_version="006_f", pending=[]))
    log.add_fact("migrate_result", migrate(before="006_f", after="006_f"))
    record = build_record(context(), [log], "succeeded")
    assert record["summary"]["stayed"][0]["reason"] == "nothing pending"
    assert record["databases"][0]["migrations"] == []


def test_check_mode_moves_nothing_and_says_what_it_would_do():
    record = build_record(context(), [moved_host()], "succeeded", check_mode=True)
    assert_valid(record)
    assert record["check_mode"] is True
    assert record["summary"]["moved"] == []
    assert record["summary"]["stayed"][0]["reason"] == "check mode: would apply 003_c"


def test_a_running_record_has_no_end_and_no_databases_yet():
    record = build_record(context(), [], "running")
    assert_valid(record)
    assert record["ended_at"] is None
    assert record["outcome"]["status"] == "running"


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status must be running, succeeded or failed, not 'done'"):
        build_record(context(), [], "done")


def test_only_the_role_result_facts_are_taken():
    with pytest.raises(ValueError, match="db_password is not a result fact of the rollout"):
        HostLog("db1").add_fact("db_password", {"x": 1})


def test_a_skipped_tasks_placeholder_is_not_a_result():
    log = HostLog("db1")
    log.add_fact("backup_result", dict(changed=False, skipped=True, skip_reason="Conditional result was False"))
    assert log.facts == {}


def test_a_fact_without_changed_or_failed_gets_false():
    log = HostLog("db1")
    log.add_fact("review_result", dict(msg="reviewed", findings=[], max_grade="none", stop=False, accepted=[]))
    result = build_record(context(), [log], "succeeded")["databases"][0]["results"]["review_result"]
    assert (result["changed"], result["failed"]) == (False, False)


# ---------------------------------------------------------------- secrets
def test_secret_keys_are_dropped_wherever_they_are_nested():
    value = dict(msg="ok", login_password=PASSWORD, nested=dict(api_token="t0k3n-x", items=[dict(secret="s3cr3t")]),
                 invocation=dict(module_args=dict(login_user="u")), ansible_become_pass="b3c0m3", keep="yes")
    assert run_record.scrub(value) == dict(msg="ok", nested=dict(items=[{}]), keep="yes")


def test_known_secret_values_are_blanked_in_every_string():
    secrets = run_record.secret_values(dict(db_password=PASSWORD, vault_db=dict(pw=PASSWORD + "2"), other="x"))
    assert secrets == {PASSWORD, PASSWORD + "2"}
    log = moved_host()
    log.add_error("Connect", "FATAL: password %s rejected" % PASSWORD)
    log.failed = True
    record = build_record(context(change_ticket="CHG " + PASSWORD), [log], "failed", secrets=secrets)
    text = json.dumps(record) + run_record.render_markdown(record)
    assert PASSWORD not in text
    assert "FATAL: password ******** rejected" in record["databases"][0]["reason"]


def test_short_values_are_not_treated_as_secrets():
    assert run_record.secret_values(dict(db_password="ab")) == set()


@pytest.mark.parametrize("key", ["db_password", "PGPASSWORD", "login_pass", "ansible_become_pass", "api_key",
                                 "vault_anything", "client_secret", "auth_token", "ssh_private_key", "passwd"])
def test_secret_looking_keys(key):
    assert run_record.is_secret_key(key)


@pytest.mark.parametrize("key", ["db_host", "sessions_waited", "sha256", "restore_command", "migrations", "passed"])
def test_ordinary_keys(key):
    assert not run_record.is_secret_key(key)


# ---------------------------------------------------------------- schema
def test_the_schema_refuses_a_record_without_a_run_id():
    record = build_record(context(), [moved_host()], "succeeded")
    del record["run_id"]
    assert run_record.validate(record) == ["(record): 'run_id' is a required property"]


def test_the_schema_refuses_an_unknown_outcome():
    record = build_record(context(), [moved_host()], "succeeded")
    record["databases"][0]["outcome"] = "vanished"
    assert run_record.validate(record) == ["databases/0/outcome: 'vanished' is not one of ['moved', 'stayed', 'failed']"]


def test_the_schema_is_version_1():
    assert run_record.load_schema()["properties"]["schema_version"] == {"const": 1}


# ---------------------------------------------------------------- run id, context, versions
@pytest.mark.parametrize("run_id", ["../etc/passwd", "a/b", "", ".hidden", "x" * 129])
def test_a_run_id_that_is_not_a_file_name_is_refused(run_id):
    with pytest.raises(ValueError, match="must be 1 to 128 letters, digits"):
        run_record.check_run_id(run_id)


def test_a_new_run_id_sorts_by_time_and_is_unique():
    first, second = run_record.new_run_id(), run_record.new_run_id()
    assert first != second
    assert run_record.check_run_id(first)[:16] <= second[:16]


def test_context_defaults():
    ctx = run_record.new_context()
    assert set(ctx) == set(run_record.CONTEXT_KEYS)
    assert ctx["record_dir"] == os.path.expanduser("~/.ansible/teei_db_rollout/records")
    assert ctx["operator"]


def test_collection_version_from_manifest_then_galaxy_yml(tmp_path):
    (tmp_path / "galaxy.yml").write_text("namespace: teei\nversion: 0.2.0\n")
    assert run_record.collection_version(str(tmp_path)) == "0.2.0"
    (tmp_path / "MANIFEST.json").write_text(json.dumps(dict(collection_info=dict(version="0.3.1"))))
    assert run_record.collection_version(str(tmp_path)) == "0.3.1"
    assert run_record.collection_version(str(tmp_path / "nowhere")) is None


def test_this_checkouts_collection_version_is_galaxy_ymls():
    with open(os.path.join(run_record.COLLECTION_ROOT, "galaxy.yml")) as handle:
        assert "version: %s\n" % run_record.collection_version() in handle.read()


# ---------------------------------------------------------------- markdown and files
def test_markdown_holds_the_ticket_the_summary_and_each_database():
    log = moved_host("db2")
    log.add_error("Apply", "bad | pipe\nand newline")
    log.failed = True
    text = run_record.render_markdown(build_record(context(), [moved_host(), log], "failed"))
    assert text.startswith("# Rollout run 20261202T220000Z-abcdef12\n")
    assert "| Change ticket | CHG-1 |" in text
    assert "1 moved, 0 stayed, 1 failed." in text
    assert "| db2 | failed | 002_b | 003_c | Apply: bad \\| pipe and newline |" in text
    assert "| 003_c | applied | %s | 5 | 2 |" % ("c" * 64) in text
    assert "Restore with: `pg_restore -d db1 /b/db1.dump`" in text
    assert "run_id `20261202T220000Z-abcdef12`" in text


def test_the_record_is_written_0600_in_a_0700_directory(tmp_path):
    directory = tmp_path / "records"
    directory.mkdir(mode=0o755)
    record = build_record(context(), [moved_host()], "succeeded")
    json_path, md_path = run_record.write_record(record, str(directory))
    assert stat.S_IMODE(os.stat(str(directory)).st_mode) == 0o700
    for path in (json_path, md_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.load(open(json_path)) == record
    assert sorted(os.listdir(str(directory))) == ["20261202T220000Z-abcdef12.json", "20261202T220000Z-abcdef12.md"]


def test_writing_again_replaces_the_record(tmp_path):
    run_record.write_record(build_record(context(), [], "running"), str(tmp_path))
    json_path, _ = run_record.write_record(build_record(context(), [moved_host()], "succeeded"), str(tmp_path))
    assert json.load(open(json_path))["outcome"]["status"] == "succeeded"
    assert len(os.listdir(str(tmp_path))) == 2


def test_a_message_for_the_whole_run_is_in_the_record_and_the_markdown():
    record = build_record(context(), [], "failed", message="Ansible stopped; password %s" % PASSWORD,
                          secrets={PASSWORD})
    assert_valid(record)
    assert record["outcome"]["message"] == "Ansible stopped; password ********"
    assert "| Status | failed: Ansible stopped; password ******** |" in run_record.render_markdown(record)


class Unresolvable(Exception):
    pass


class FakeHostVars(dict):
    """hostvars[host][key] as Ansible resolves it: a value may fail to template."""

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if isinstance(value, Unresolvable):
            raise value
        return value


def test_host_secrets_reads_the_secret_variables_of_the_hosts_only():
    hostvars = FakeHostVars(
        db1=FakeHostVars(db_password=PASSWORD, db_host="10.0.0.1", vault_admin=Unresolvable("undefined")),
        db2=FakeHostVars(db_password="other-pw-1", api_token=dict(value="t0k3n-abc")),
        db3=FakeHostVars(db_password="not-asked-for"))
    found = run_record.host_secrets(hostvars, ["db1", "db2", "localhost"], skip=(Unresolvable, KeyError))
    assert found == {PASSWORD, "other-pw-1", "t0k3n-abc"}
