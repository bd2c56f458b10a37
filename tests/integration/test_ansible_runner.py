"""The rollout through ansible-runner, the engine AWX/AAP run every job with: a private data directory
(project, inventory, env/extravars, env/envvars, env/cmdline) with the vault password given the way
runner documents (env/passwords answering `Vault password:`), against a password-protected harness
cluster whose tenant databases the pg_databases inventory plugin discovers. The job's artifacts hold
its events; the run record lands in the folder the job collects."""

import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, TEMPLATE_DB, VENV_BIN, ansible_env
from tenants import create_databases, drop_databases

TENANTS = ["runner_tenant_%d" % n for n in range(1, 3)]
VAULT_SECRET = "runner-vault-secret"
IDENT = "rollout-job-1"
# The playbook the job runs; with PLAYBOOK = "playbooks/status.yml" (one line) the same job only reports,
# and the tests below skip what only a rollout does.
PLAYBOOK = "playbooks/rollout.yml"
RECORD_CALLBACK = "teei.db_rollout.rollout_record"
HAS_RECORD_CALLBACK = os.path.exists(os.path.join(ROOT, "plugins", "callback", "rollout_record.py"))
NOT_IN_PROJECT = (".venv", ".git", ".collections", ".build", ".demo", ".ci", ".pytest_cache", "__pycache__",
                  "tests", "molecule", "benchmarks")


def write(path, content, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def vault_encrypt(secret, vault_password_file):
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt_string", "--vault-password-file",
                           vault_password_file, "--stdin-name", "password"], input=secret, capture_output=True,
                          text=True, env=ansible_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def job(pg_password_cluster, tmp_path_factory):
    """One ansible-runner job of the rollout over two tenant databases; yields its folders."""
    cluster = pg_password_cluster
    names = create_databases(cluster, TENANTS, template=TEMPLATE_DB)
    base = tmp_path_factory.mktemp("runner")
    private = base / "job"
    records = private / "artifacts" / IDENT / "rollout_record"
    # project/: the repository checkout, as an AWX SCM project holds it (the collection itself comes
    # from the execution environment's collections path: here, the checkout's link).
    shutil.copytree(ROOT, str(private / "project"), ignore=shutil.ignore_patterns(*NOT_IN_PROJECT))
    # inventory/: the database servers, discovered; the database password vaulted in it.
    scratch_vault = base / "vault-password"
    write(str(scratch_vault), VAULT_SECRET + "\n")
    vaulted = vault_encrypt(cluster.password, str(scratch_vault))
    scratch_vault.unlink()
    write(str(private / "inventory" / "tenants.pg_databases.yml"),
          "plugin: teei.db_rollout.pg_databases\nservers:\n  - name: pg1\n    host: %s\n    port: %d\n"
          "    user: %s\n%s\ndatabases: ['runner_tenant_*']\n"
          % (cluster.host, cluster.port, cluster.user, "\n".join("    " + l for l in vaulted.splitlines())))
    extravars = dict(change_ticket="CHG4711", rollout_environment="local", rollout_operator="awx-job",
                     rollout_record_dir=str(records), maintenance_method="connections",
                     rollout_waves=["100%"],  # one wave: both tenants move in parallel (waves: test_rollout)
                     backup_dir=str(base / "backups") + "/{{ inventory_hostname }}")
    write(str(private / "env" / "extravars"), yaml.safe_dump(extravars))
    envvars = dict(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
                   ANSIBLE_INVENTORY_UNPARSED_FAILED="true", TEEI_ROLLOUT_RECORD_DIR=str(records))
    if HAS_RECORD_CALLBACK:
        envvars["ANSIBLE_CALLBACKS_ENABLED"] = RECORD_CALLBACK
    write(str(private / "env" / "envvars"), yaml.safe_dump(envvars))
    write(str(private / "env" / "cmdline"), "--ask-vault-pass --forks 2")
    write(str(private / "env" / "passwords"), json.dumps({r"^Vault password:\s*?$": VAULT_SECRET}))

    env = ansible_env()
    for key in ("ANSIBLE_CONFIG", "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_LOAD_CALLBACK_PLUGINS"):
        env.pop(key)  # the project's ansible.cfg and runner's own display callback apply, as in AWX
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-runner"), "run", str(private), "-p", PLAYBOOK,
                           "--ident", IDENT], capture_output=True, text=True, env=env, timeout=600)
    yield dict(proc=proc, cluster=cluster, artifacts=private / "artifacts" / IDENT, records=records)
    drop_databases(cluster, names)


def events(job):
    found = []
    for path in sorted(glob.glob(str(job["artifacts"] / "job_events" / "*.json"))):
        with open(path) as handle:
            found.append(json.load(handle))
    return sorted(found, key=lambda e: e["counter"])


def test_runner_job_succeeds_and_the_tenant_databases_are_migrated(job):
    proc = job["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert (job["artifacts"] / "status").read_text() == "successful"
    assert (job["artifacts"] / "rc").read_text() == "0"
    cluster = job["cluster"]
    for name in TENANTS:
        if PLAYBOOK.endswith("rollout.yml"):
            assert cluster.psql("SELECT count(*) FROM schema_migrations WHERE migration_set = 'phase_c'",
                                dbname=name) == "6"
            assert cluster.psql("SELECT to_regclass('public.integration_configs') IS NOT NULL", dbname=name) == "t"


def test_job_events_hold_the_play_and_every_discovered_database(job):
    found = events(job)
    kinds = [e["event"] for e in found]
    # Runner answered ansible-playbook's vault prompt from env/passwords before the playbook started.
    assert found[0]["event"] == "verbose" and found[0]["stdout"].startswith("Vault password:")
    assert kinds.index("playbook_on_start") < kinds.index("playbook_on_play_start")
    assert kinds.count("playbook_on_stats") == 1
    migrated = {e["event_data"]["host"] for e in found
                if e["event"] == "runner_on_ok" and e["event_data"].get("task_action") == "teei.db_rollout.pg_migrate"}
    assert migrated == {"pg1_" + name for name in TENANTS}
    stats = found[kinds.index("playbook_on_stats")]["event_data"]
    assert migrated <= set(stats["ok"]) and not stats.get("failures") and not stats.get("dark")
    assert (job["artifacts"] / "stdout").stat().st_size > 0


def test_no_password_in_the_job_artifacts(job):
    password = job["cluster"].password
    for folder, _, files in os.walk(str(job["artifacts"])):
        for name in files:
            with open(os.path.join(folder, name), errors="replace") as handle:
                text = handle.read()
            assert password not in text, "database password in %s" % name
            assert VAULT_SECRET not in text, "vault password in %s" % name


@pytest.mark.skipif(not HAS_RECORD_CALLBACK, reason="callback %s is not on main yet" % RECORD_CALLBACK)
def test_run_record_lands_in_the_folder_the_job_collects(job):
    records = glob.glob(str(job["records"] / "**" / "*.json"), recursive=True)
    assert len(records) == 1, "not one record in %s: %s" % (job["records"], records)
    # The job's output (and so AWX's job view) names the file.
    said = [e["stdout"] for e in events(job) if e["stdout"].startswith("Run record: ")]
    assert said == ["Run record: " + records[0]]
    with open(records[0]) as handle:
        record = json.load(handle)
    text = json.dumps(record)
    assert all(name in text for name in TENANTS)
    if PLAYBOOK.endswith("rollout.yml"):
        assert "CHG4711" in text
    assert job["cluster"].password not in text
