"""The composed rollout, rollback and status playbooks, run with ansible-playbook against real
clusters: what the run reports is checked against what the database, the backup directory and the
run record hold afterwards."""

import glob
import json
import os
import pwd
import re
import shutil
import stat
import subprocess

import psycopg2
import pytest

from conftest import ROOT, VENV_BIN, ansible_env
from _backup import postgres_owned_dir  # noqa: F401  (a fixture)

PHASE_C = os.path.join(ROOT, "migrations", "phase_c")
PHASE_C_VERSIONS = ["001_add_tenant_routing", "002_add_rbac_roles", "003_add_api_keys_table",
                    "004_add_audit_log_table", "005_add_weight_overrides_table",
                    "006_add_integration_configs_table"]
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Run(object):
    """One ansible-playbook run with the default stdout callback and the record callback."""

    def __init__(self, proc, record_dir):
        self.proc = proc
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        self.flat = " ".join(self.out.split())  # the output with its line wrapping undone
        self.recap = {m.group(1): dict(ok=int(m.group(2)), changed=int(m.group(3)),
                                       unreachable=int(m.group(4)), failed=int(m.group(5)))
                      for m in RECAP.finditer(proc.stdout)}
        self.record_dir = record_dir

    def record(self):
        """The JSON record whose path the run printed on its last line."""
        last = self.proc.stdout.strip().splitlines()[-1]
        assert last.startswith("Run record: "), self.proc.stdout[-2000:]
        path = last[len("Run record: "):].strip()
        assert os.path.dirname(os.path.abspath(path)).startswith(os.path.abspath(self.record_dir)), path
        with open(path) as handle:
            return json.load(handle)


def play(playbook, inventory, record_dir, extra_vars=None, check=False, timeout=600):
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", playbook),
           "-i", inventory]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    env = ansible_env({"ANSIBLE_STDOUT_CALLBACK": "default"})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    return Run(proc, record_dir)


def write_inventory(path, hosts, **group_vars):
    """An inventory whose `databases` group holds one host per (name, Database[, host vars])."""
    inventory = {"all": {"children": {"databases": {"hosts": {}}}, "vars": {
        "ansible_connection": "local",
        "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
        "db_user": "postgres",
        "db_delegate_to_controller": True,
        "rollout_environment": "test",
        "maintenance_method": "connections",
        "maintenance_app_roles": ["cockpit_app"],
    }}}
    inventory["all"]["vars"].update(group_vars)
    for name, db, *extra in hosts:
        inventory["all"]["children"]["databases"]["hosts"][name] = dict(
            db_host=db.cluster.host, db_port=db.cluster.port, db_name=db.name, **(extra[0] if extra else {}))
    path.write_text(json.dumps(inventory, indent=2))
    return str(path)


@pytest.fixture
def env(tmp_path):
    """Backup and record directories of one test, and a writer for its inventory."""
    class Env(object):
        backups = str(tmp_path / "backups")
        records = str(tmp_path / "records")

        def inventory(self, hosts, name="hosts.yml", **group_vars):
            group_vars.setdefault("backup_dir", self.backups)
            group_vars.setdefault("rollout_record_dir", self.records)
            return write_inventory(tmp_path / name, hosts, **group_vars)
    return Env()


def failing_set(tmp_path, rollback_fails=None, verify_fails=True):
    """Phase C with 004's verification failing (and, optionally, a failing rollback script)."""
    path = str(tmp_path / "phase_c_fails_at_004")
    shutil.copytree(PHASE_C, path)
    if verify_fails:
        with open(os.path.join(path, "verify", "004_add_audit_log_table.sql"), "w") as handle:
            handle.write("DO $$ BEGIN RAISE EXCEPTION 'audit_log is not what 004 promised'; END $$;\n")
    if rollback_fails:
        with open(os.path.join(path, "rollback", rollback_fails + ".sql"), "w") as handle:
            handle.write("ALTER TABLE companies DROP COLUMN no_such_column;\n")
    return path


def app_schema(db):
    """The schema dump without the engine's own bookkeeping (the history table, whose columns the
    engine extends, and its log), with pg_dump 15.18's random \\restrict lines removed."""
    out = subprocess.run([os.path.join(db.cluster.bindir, "pg_dump"), "--schema-only", "--no-owner",
                          "--exclude-table=public.schema_migrations*", "-d", db.name],
                         capture_output=True, text=True, env=db.cluster.env(), check=True).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def app_can_connect(db):
    conn = psycopg2.connect(host=db.cluster.host, port=db.cluster.port, dbname=db.name,
                            user="cockpit_app", password="cockpit_app", connect_timeout=5)
    conn.close()
    return True


def applied(db):
    """The Phase C versions the history table holds (the fixture also has earlier phases' rows)."""
    out = db.psql("SELECT string_agg(version, ',' ORDER BY version) FROM public.schema_migrations "
                  "WHERE version ~ '^[0-9]{3}_'")
    return out.split(",") if out else []


def record_db(record, host):
    entries = [d for d in record["databases"] if d["host"] == host]
    assert len(entries) == 1, record["databases"]
    return entries[0]


# ---------------------------------------------------------------- the rollout

def test_full_rollout_then_nothing_pending(db, env):
    inventory = env.inventory([("cockpit", db)])
    run = play("rollout.yml", inventory, env.records, {"change_ticket": "CHG1001"})
    assert run.rc == 0, run.out[-4000:]
    assert applied(db) == PHASE_C_VERSIONS
    record = run.record()
    run_id = record["run_id"]
    assert db.psql("SELECT string_agg(DISTINCT run_id, ',') FROM schema_migrations WHERE migration_set = 'phase_c'") == run_id
    assert record["change_ticket"] == "CHG1001"
    entry = record_db(record, "cockpit")
    assert entry["outcome"] == "moved"
    assert entry["versions"] == {"before": None, "after": PHASE_C_VERSIONS[-1]}
    assert [m["version"] for m in entry["migrations"] if m["action"] == "applied"] == PHASE_C_VERSIONS

    # The backup: 0600 files in a 0700 directory, and the manifest's sha256 is the file's.
    backup = entry["results"]["backup_result"]
    assert stat.S_IMODE(os.stat(backup["directory"]).st_mode) == 0o700
    for name in os.listdir(backup["directory"]):
        full = os.path.join(backup["directory"], name)
        if os.path.isfile(full):
            assert stat.S_IMODE(os.stat(full).st_mode) == 0o600, full
    with open(backup["manifest"]) as handle:
        manifest = json.load(handle)
    assert manifest["sha256"] == backup["sha256"]

    # Maintenance was on around the change and is off now: the application connects again.
    maintenance = entry["results"]["maintenance_result"]
    assert maintenance["state"] == "off" and maintenance["enabled_at"] and maintenance["disabled_at"]
    assert app_can_connect(db)

    # Again: nothing pending, so no backup, no maintenance, no change, and still a record.
    backups_before = sorted(os.listdir(env.backups))
    again = play("rollout.yml", inventory, env.records, {"change_ticket": "CHG1001"})
    assert again.rc == 0, again.out[-4000:]
    assert again.recap["cockpit"]["changed"] == 0, again.out[-4000:]
    assert sorted(os.listdir(env.backups)) == backups_before
    second = again.record()
    assert second["run_id"] != run_id
    assert (record_db(second, "cockpit")["outcome"], record_db(second, "cockpit")["reason"]) == \
        ("stayed", "nothing pending")
    assert "backup_result" not in record_db(second, "cockpit")["results"]
    assert db.psql("SELECT string_agg(DISTINCT run_id, ',') FROM schema_migrations WHERE migration_set = 'phase_c'") == run_id

    # status: the last run, and what a given run changed.
    status = play("status.yml", inventory, env.records)
    assert status.rc == 0, status.out[-3000:]
    assert status.recap["cockpit"]["changed"] == 0
    assert run_id in status.out
    by_run = play("status.yml", inventory, env.records, {"run_id": run_id})
    assert by_run.rc == 0, by_run.out[-3000:]
    for version in PHASE_C_VERSIONS:
        assert version in by_run.out

    # rollback.yml down to 003: the schema is back at that version, with a backup and a record.
    back = play("rollback.yml", inventory, env.records,
                {"migrate_target": "003_add_api_keys_table", "change_ticket": "CHG1002"})
    assert back.rc == 0, back.out[-4000:]
    assert applied(db) == PHASE_C_VERSIONS[:3]
    assert db.psql("SELECT to_regclass('public.audit_log') IS NULL") == "t"
    rolled = record_db(back.record(), "cockpit")
    assert [m["version"] for m in rolled["migrations"] if m["action"] == "rolled_back"] == \
        list(reversed(PHASE_C_VERSIONS[3:]))
    assert app_can_connect(db)


def test_failure_at_004_returns_to_the_starting_version(db, env, tmp_path):
    before = app_schema(db)
    inventory = env.inventory([("cockpit", db)], migrate_path=failing_set(tmp_path))
    run = play("rollout.yml", inventory, env.records, {"change_ticket": "CHG1003"})
    assert run.rc != 0
    assert applied(db) == []
    assert app_schema(db) == before
    assert app_can_connect(db)
    entry = record_db(run.record(), "cockpit")
    assert entry["outcome"] == "failed"
    assert "audit_log is not what 004 promised" in entry["error"]
    assert "audit_log is not what 004 promised" in run.out
    assert "The database is back at its starting version." in run.flat


def test_failing_rollback_script_ends_with_the_restore_command(db, env, tmp_path):
    inventory = env.inventory([("cockpit", db)],
                              migrate_path=failing_set(tmp_path, rollback_fails="002_add_rbac_roles"))
    run = play("rollout.yml", inventory, env.records, {"change_ticket": "CHG1004"})
    assert run.rc != 0
    entry = record_db(run.record(), "cockpit")
    command = entry["results"]["backup_result"]["restore_command"]
    assert "pg_restore" in command
    assert "The database is between versions: restore the backup this run took with: " + command in run.flat
    assert app_can_connect(db)


def test_failing_rollback_script_with_restore_on_failure_restores_the_backup(db, env, tmp_path):
    before = app_schema(db)
    rows = db.psql("SELECT count(*) FROM users")
    inventory = env.inventory([("cockpit", db)],
                              migrate_path=failing_set(tmp_path, rollback_fails="002_add_rbac_roles"))
    run = play("rollout.yml", inventory, env.records,
               {"change_ticket": "CHG1005", "rollout_restore_on_failure": True})
    assert run.rc != 0
    assert app_schema(db) == before
    assert db.psql("SELECT count(*) FROM users") == rows
    assert app_can_connect(db)
    entry = record_db(run.record(), "cockpit")
    assert entry["results"]["restore_result"]["sha256_ok"] is True
    assert "the backup %s was restored." % entry["results"]["backup_result"]["path"] in run.flat


def test_failing_rollback_playbook_stops_where_it_failed_with_the_restore_command(db, env, tmp_path):
    """rollback.yml whose rollback of 002 fails: 006 to 003 are rolled back (each in its own
    transaction), 002 stays, the application is let back in, and the last word is the restore command."""
    inventory = env.inventory([("cockpit", db)], migrate_path=failing_set(tmp_path, rollback_fails="002_add_rbac_roles",
                                                                          verify_fails=False))
    assert play("rollout.yml", inventory, env.records, {"change_ticket": "CHG1008"}).rc == 0
    back = play("rollback.yml", inventory, env.records, {"migrate_target": "none", "change_ticket": "CHG1009"})
    assert back.rc != 0
    assert applied(db) == PHASE_C_VERSIONS[:2]
    assert app_can_connect(db)
    entry = record_db(back.record(), "cockpit")
    assert entry["outcome"] == "failed"
    assert "no_such_column" in entry["error"]
    command = entry["results"]["backup_result"]["restore_command"]
    assert "Restore the backup this run took with: " + command in back.flat
    assert 'Rollback failed at "' in back.flat
    assert "the database is left at 002_add_rbac_roles. Restore the backup" in back.flat


def test_rollout_on_the_database_host_over_its_unix_socket(db, env, postgres_owned_dir):  # noqa: F811
    """The production path: the modules run on the database host as the postgres OS user (become)
    and connect through the Unix socket; the backup is written there; the record on the controller."""
    backups = os.path.join(postgres_owned_dir, "backups")
    inventory = env.inventory([("cockpit", db, dict(
        ansible_become=True, ansible_become_user="postgres", ansible_become_method="su",
        ansible_python_interpreter="/usr/bin/python3", db_unix_socket=db.cluster.socketdir,
        db_delegate_to_controller=False))], backup_dir=backups)
    run = play("rollout.yml", inventory, env.records, {"change_ticket": "CHG1007"})
    assert run.rc == 0, run.out[-4000:]
    assert applied(db) == PHASE_C_VERSIONS
    entry = record_db(run.record(), "cockpit")
    backup = entry["results"]["backup_result"]
    assert backup["path"].startswith(backups)
    assert os.stat(backup["path"]).st_uid == pwd.getpwnam("postgres").pw_uid
    assert stat.S_IMODE(os.stat(backup["directory"]).st_mode) == 0o700
    assert app_can_connect(db)


def test_production_run_without_a_change_ticket_stops_in_preflight(db, env):
    before = db.schema()
    inventory = env.inventory([("cockpit", db)], rollout_environment="production")
    run = play("rollout.yml", inventory, env.records)
    assert run.rc != 0
    assert "change ticket" in run.out.lower()
    assert "Nothing was changed." in run.flat
    assert db.schema() == before
    assert not os.path.exists(env.backups) or not os.listdir(env.backups)
    assert record_db(run.record(), "cockpit")["outcome"] == "failed"


def test_fleet_stops_after_the_wave_with_a_failure(pg_cluster, env, tmp_path):
    """Six tenant databases on one server, discovered by the inventory plugin; the canary moves,
    the second wave holds a database that fails, and the last wave never starts."""
    names = ["tenant_%02d" % i for i in range(1, 7)]
    for name in names:
        pg_cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        pg_cluster.psql('CREATE DATABASE "%s" TEMPLATE fixture_template' % name)
    try:
        # tenant_03 already has a table 004 creates: its run fails there.
        pg_cluster.psql("CREATE TABLE audit_log (id int)", dbname="tenant_03")
        discovery = tmp_path / "fleet.pg_databases.yml"
        discovery.write_text(json.dumps({
            "plugin": "teei.db_rollout.pg_databases",
            "servers": [{"name": "pg1", "host": pg_cluster.host, "port": pg_cluster.port,
                         "user": "postgres"}],
            "databases": ["tenant_*"],
        }))
        group_vars = tmp_path / "group_vars"
        group_vars.mkdir()
        (group_vars / "all.yml").write_text(json.dumps({
            "ansible_connection": "local",
            "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
            "db_delegate_to_controller": True, "rollout_environment": "test",
            "maintenance_method": "connections", "maintenance_app_roles": ["cockpit_app"],
            "backup_dir": env.backups, "rollout_record_dir": env.records}))
        run = play("rollout.yml", str(discovery), env.records,
                   {"change_ticket": "CHG1006", "rollout_waves": [1, 3, "100%"]})
        assert run.rc != 0
        record = run.record()
        by_name = {d["host"][len("pg1_"):]: d for d in record["databases"]}
        assert by_name["tenant_01"]["outcome"] == "moved"
        assert [n for n in names if by_name[n]["outcome"] == "failed"] == ["tenant_03"]
        assert pg_cluster.psql("SELECT to_regclass('public.api_keys') IS NULL", dbname="tenant_03") == "t"
        # The last wave never started: those databases were not touched and the record says so.
        for name in names[4:]:
            assert pg_cluster.psql("SELECT count(*) FROM schema_migrations WHERE version ~ '^[0-9]{3}_'",
                                   dbname=name) == "0", name
            assert pg_cluster.psql("SELECT to_regclass('public.api_keys') IS NULL", dbname=name) == "t"
            assert by_name[name]["outcome"] == "stayed", by_name[name]
        summary = record["summary"]
        assert [d["host"] for d in summary["failed"]] == ["pg1_tenant_03"]
        assert {d["host"] for d in summary["stayed"]} >= {"pg1_" + n for n in names[4:]}
        assert "pg1_tenant_03" in run.out
    finally:
        for name in names:
            pg_cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
