"""The run record through real ansible-playbook runs: written by the rollout_record callback on success,
on a task failing outside a block, on an undefined variable, in check mode and when a later serial wave
stops the run; valid against its schema; says who moved, stayed or failed and why; never holds a secret;
0600 files in a 0700 directory; the playbook's last line says where it is."""

import glob
import json
import os
import stat
import subprocess

import jsonschema
import pytest

from conftest import ROOT, VENV_BIN, ansible_env, parse_json_callback, write_inventory

from ansible_collections.teei.db_rollout.plugins.plugin_utils import run_record

DATA = os.path.join(ROOT, "tests", "integration", "data", "record")
CALLBACK = "teei.db_rollout.rollout_record"
PASSWORD = "Pw-inventory-7f3a9c"
VAULT_PASSWORD = "Pw-vaulted-41be07"
VAULT_KEY = "vault-key-for-tests"


HOSTS = ["db1", "db2", "db3", "db4"]


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    """Four local hosts; db_password from a vaulted variable, and one in clear text on db2."""
    tmp_path = tmp_path_factory.mktemp("inventory")
    key = tmp_path / "vault-key"
    key.write_text(VAULT_KEY)
    vaulted = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt_string", "--vault-password-file",
                              str(key), VAULT_PASSWORD, "--name", "vault_db_password"], capture_output=True,
                             text=True, env=ansible_env(), check=True).stdout
    lines = ["all:", "  children:", "    databases:", "      hosts:"]
    for host in HOSTS:
        lines.append("        %s:" % host)
        lines.append("          db_password: %s" % (PASSWORD if host == "db2" else '"{{ vault_db_password }}"'))
    lines += ["  vars:", "    ansible_connection: local",
              '    ansible_python_interpreter: "{{ ansible_playbook_python }}"']
    lines += ["    " + line for line in vaulted.strip().splitlines()]
    path = tmp_path / "inventory.yml"
    path.write_text("\n".join(lines) + "\n")
    return dict(path=str(path), key=str(key))


def playbook(name, inventory, records, extra_vars=None, check=False, callback=True, stdout_callback="default",
             limit=None):
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(DATA, name), "-i", inventory["path"],
           "--vault-password-file", inventory["key"],
           "-e", json.dumps(dict(rollout_record_dir=str(records), **(extra_vars or {})))]
    if check:
        cmd.append("--check")
    if limit:
        cmd += ["--limit", limit]
    # Without the callback: a stdout-type callback in the list enables nothing (and overrides ansible.cfg's list).
    env = dict(ANSIBLE_STDOUT_CALLBACK=stdout_callback,
               ANSIBLE_CALLBACKS_ENABLED=CALLBACK if callback else "ansible.builtin.minimal")
    return subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), cwd=ROOT, timeout=300)


def the_record(records):
    paths = glob.glob(os.path.join(str(records), "*.json"))
    assert len(paths) == 1, "not one record in %s: %s" % (records, paths)
    with open(paths[0]) as handle:
        record = json.load(handle)
    jsonschema.Draft7Validator(run_record.load_schema()).validate(record)
    return paths[0], record


def database(record, host):
    return [db for db in record["databases"] if db["host"] == host][0]


def assert_no_secret(records, proc=None):
    for path in glob.glob(os.path.join(str(records), "*")):
        with open(path) as handle:
            text = handle.read()
        for secret in (PASSWORD, VAULT_PASSWORD, VAULT_KEY):
            assert secret not in text, "%s holds a secret" % path


def test_a_successful_run_writes_a_valid_record_and_says_where_last(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, extra_vars=dict(change_ticket="CHG-42",
                                                                      rollout_environment="staging",
                                                                      rollout_operator="alice"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path, record = the_record(records)
    assert proc.stdout.rstrip("\n").splitlines()[-1] == "Run record: %s" % path
    assert record["outcome"] == dict(status="succeeded", message=None, failed_hosts=[], unreachable_hosts=[])
    assert (record["change_ticket"], record["environment"], record["operator"]) == ("CHG-42", "staging", "alice")
    assert record["playbook"] == os.path.join(DATA, "rollout.yml")
    assert record["inventory"] == [inventory["path"]]
    assert record["versions"]["collection"] == run_record.collection_version()
    assert record["written_by"] == "callback"
    assert [s["host"] for s in record["summary"]["moved"]] == HOSTS
    db = database(record, "db1")
    assert db["versions"] == dict(before="002_b", after="003_c")
    assert db["migrations"][0]["lock_wait_retries"] == 2
    assert db["results"]["preflight_result"]["boxes"][0]["name"] == "connect"
    # one run id for the whole run: the migrate results carry the record's
    assert set(d["results"]["migrate_result"]["run_id"] for d in record["databases"]) == {record["run_id"]}
    assert path == os.path.join(str(records), record["run_id"] + ".json")
    # 0600 files in a 0700 directory
    assert stat.S_IMODE(os.stat(str(records)).st_mode) == 0o700
    files = sorted(os.listdir(str(records)))
    assert [os.path.splitext(f)[1] for f in files] == [".json", ".md"]
    for name in files:
        assert stat.S_IMODE(os.stat(os.path.join(str(records), name)).st_mode) == 0o600


def test_a_task_failing_outside_a_block_is_recorded_with_its_message(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, extra_vars=dict(record_test_fail=["db4"]))
    assert proc.returncode == 2
    path, record = the_record(records)
    assert proc.stdout.rstrip("\n").splitlines()[-1] == "Run record: %s" % path
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["failed_hosts"] == ["db4"]
    assert record["summary"]["failed"] == [dict(
        host="db4", before="002_b", after="003_c",
        reason="Fail on a chosen database, outside any block: verification of 003_c failed on db4 "
               "(connected with ********)")]
    assert database(record, "db4")["stats"]["failures"] == 1
    assert_no_secret(records)


def test_an_undefined_variable_is_recorded(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, extra_vars=dict(record_test_undefined=["db1"]))
    assert proc.returncode == 2
    _, record = the_record(records)
    assert record["outcome"]["failed_hosts"] == ["db1"]
    reason = record["summary"]["failed"][0]["reason"]
    assert reason.startswith("Use an undefined variable on a chosen database: ")
    assert "'record_test_undefined_var' is undefined" in reason


def test_a_run_ansible_stops_without_final_statistics_is_recorded_failed(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("aborted.yml", inventory, records)
    assert proc.returncode != 0
    assert "record_test_undefined_wave_size" in proc.stdout + proc.stderr
    path, record = the_record(records)
    assert proc.stdout.rstrip("\n").splitlines()[-1] == "Run record: %s" % path
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["message"].startswith("Ansible stopped the playbook without its final statistics")
    assert record["ended_at"] is not None


def test_check_mode_writes_a_record_that_moved_nothing(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, check=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, record = the_record(records)
    assert record["check_mode"] is True
    assert record["summary"]["moved"] == []
    assert set(s["reason"] for s in record["summary"]["stayed"]) == {"check mode: would apply 003_c"}


def test_a_later_wave_failing_stops_the_run_and_the_summary_says_so(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, extra_vars=dict(record_test_serial=[1, 1, "100%"],
                                                                      record_test_fail=["db2"]))
    assert proc.returncode == 2
    path, record = the_record(records)
    assert proc.stdout.rstrip("\n").splitlines()[-1] == "Run record: %s" % path
    summary = record["summary"]
    assert [s["host"] for s in summary["moved"]] == ["db1"]
    assert [(s["host"], s["reason"]) for s in summary["failed"]] == [
        ("db2", "Fail on a chosen database, outside any block: verification of 003_c failed on db2 "
                "(connected with ********)")]
    assert [(s["host"], s["reason"]) for s in summary["stayed"]] == [
        (h, "not reached: the run stopped before this database") for h in ("db3", "db4")]
    # the waves shared one run id
    assert database(record, "db2")["results"]["migrate_result"]["run_id"] == record["run_id"]
    assert_no_secret(records)
    with open(path[:-len(".json")] + ".md") as handle:
        markdown = handle.read()
    assert "1 moved, 2 stayed, 1 failed." in markdown
    assert "| db4 | stayed |  |  | not reached: the run stopped before this database |" in markdown


def test_no_secret_in_any_file_even_when_messages_and_results_hold_one(inventory, tmp_path):
    """db2's clear-text password and everyone else's vaulted one reach a failure message and a result
    fact (login_password); neither reaches the record."""
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, extra_vars=dict(record_test_fail=["db1", "db2"]))
    assert proc.returncode == 2
    assert VAULT_PASSWORD in proc.stdout and PASSWORD in proc.stdout  # the test's messages do carry them
    _, record = the_record(records)
    assert "login_password" not in json.dumps(record)
    assert_no_secret(records)


def test_a_given_run_id_names_the_run(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, extra_vars=dict(rollout_run_id="CHG-42-take-2"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path, record = the_record(records)
    assert path == os.path.join(str(records), "CHG-42-take-2.json")
    assert database(record, "db4")["results"]["migrate_result"]["run_id"] == "CHG-42-take-2"


def test_a_run_id_that_is_not_a_file_name_stops_the_run_before_anything(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, extra_vars=dict(rollout_run_id="../escape"))
    assert proc.returncode == 2
    assert "run id '../escape' must be 1 to 128 letters, digits, '.', '_' or '-'" in proc.stdout
    assert "TASK [Run preflight]" not in proc.stdout
    assert not os.path.exists(str(tmp_path / "escape.json"))


def test_without_the_callback_the_role_writes_the_record(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, callback=False,
                    extra_vars=dict(record_test_fail=["db3"], record_test_max_fail_percentage=100))
    assert proc.returncode == 2
    path, record = the_record(records)
    assert '"msg": "Run record: %s"' % path in proc.stdout
    assert record["written_by"] == "role"
    assert record["outcome"]["status"] == "failed"
    assert [s["host"] for s in record["summary"]["failed"]] == ["db3"]
    assert "enable the teei.db_rollout.rollout_record callback" in record["summary"]["failed"][0]["reason"]
    assert len(record["summary"]["moved"]) == 3
    assert_no_secret(records)


def test_without_the_callback_the_role_on_localhost_records_the_databases_group(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, callback=False, extra_vars=dict(record_test_close_on="localhost"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, record = the_record(records)
    assert (record["written_by"], record["outcome"]["status"]) == ("role", "succeeded")
    assert [s["host"] for s in record["summary"]["moved"]] == HOSTS
    assert_no_secret(records)


def test_without_the_callback_a_run_stopped_by_a_wave_leaves_the_record_running(inventory, tmp_path):
    """Why the callback must be enabled: the end-of-run play never runs when a wave stops the playbook."""
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, callback=False, extra_vars=dict(record_test_fail=["db3"]))
    assert proc.returncode == 2
    _, record = the_record(records)
    assert (record["written_by"], record["outcome"]["status"], record["ended_at"]) == ("role", "running", None)


def test_with_a_json_stdout_callback_stdout_stays_json(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("rollout.yml", inventory, records, stdout_callback="ansible.posix.json")
    assert proc.returncode == 0, proc.stderr
    parse_json_callback(proc)
    path, _ = the_record(records)
    assert proc.stderr.rstrip("\n").splitlines()[-1] == "Run record: %s" % path


def test_a_playbook_that_is_not_a_rollout_writes_no_record(inventory, tmp_path):
    records = tmp_path / "records"
    proc = playbook("not_a_rollout.yml", inventory, records)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not records.exists()
    assert "Run record" not in proc.stdout


def test_the_run_id_of_the_record_is_on_every_history_row(db, tmp_path):
    records = tmp_path / "records"
    inv = write_inventory(tmp_path / "inventory.yml", db)
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(DATA, "migrate.yml"), "-i", inv,
           "-e", json.dumps(dict(rollout_record_dir=str(records), change_ticket="CHG-7",
                                 migrate_path=os.path.join(ROOT, "migrations", "phase_c")))]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=ansible_env(dict(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACKS_ENABLED=CALLBACK)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, record = the_record(records)
    phase_c = "FROM public.schema_migrations WHERE migration_set = 'phase_c'"
    assert db.psql("SELECT string_agg(DISTINCT run_id || '/' || change_ticket, ',') " + phase_c) == \
        "%s/CHG-7" % record["run_id"]
    versions = db.psql("SELECT string_agg(version, ',' ORDER BY version) " + phase_c).split(",")
    checksums = db.psql("SELECT string_agg(checksum, ',' ORDER BY version) " + phase_c).split(",")
    testdb = database(record, "testdb")
    assert testdb["outcome"] == "moved"
    assert testdb["versions"] == dict(before=None, after=versions[-1])
    assert [(m["version"], m["action"], m["checksum"]) for m in testdb["migrations"]] == [
        (v, "applied", c) for v, c in zip(versions, checksums)]
    assert all(m["duration_ms"] is not None and m["lock_wait_retries"] == 0 for m in testdb["migrations"])
