"""The backup role (playbooks/backup.yml, teei.db_rollout.pg_backup) against a real PostgreSQL 15 that asks
for a password: what it writes, how it proves it, how it fails, and that the database never changes."""

import contextlib
import hashlib
import json
import os
import pwd
import subprocess
import tempfile
import threading

import psycopg2
import pytest

from _backup import (BACKUP_TASK, backup, databases, inventory, mode, on_db_host, pg_restore_list,  # noqa: F401
                     postgres_owned_dir, row_counts, state, task_result)
from conftest import ROOT, ansible_env, run_playbook

from ansible_collections.teei.db_rollout.plugins.module_utils import backup as bk

RUN_ID = "20261202T220000Z-test"
MARK_RUN_FAILED_PLAYBOOK = """
- name: Mark the backup of a failed run
  hosts: databases
  gather_facts: false
  tasks:
    - name: Keep this run's backup for good
      ansible.builtin.include_role:
        name: teei.db_rollout.backup
        tasks_from: mark_run_failed
"""


@pytest.fixture
def backup_dir(tmp_path):
    return tmp_path / "backups"


def manifest_of(result):
    with open(result["manifest"]) as handle:
        return json.load(handle)


@contextlib.contextmanager
def mounted_tmpfs(options):
    """A tmpfs mounted with ``options`` (root only); the test is skipped where mounting is not allowed."""
    where = tempfile.mkdtemp(prefix="teei-bk-mnt-")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", where], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        os.rmdir(where)
        pytest.skip("cannot mount a tmpfs here (%s): needs root" % proc.stderr.strip())
    try:
        yield where
    finally:
        subprocess.run(["umount", where], check=False)
        os.rmdir(where)


def test_backup_is_a_private_dump_with_a_manifest_that_matches_it(password_db, backup_dir, tmp_path):
    db = password_db
    before = state(db)
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), rollout_run_id=RUN_ID,
                    change_ticket="CHG-1234")
    result, proc = backup(inv, playbook="teei.db_rollout.backup")  # reachable by FQCN
    assert proc.returncode == 0, result.get("msg")
    assert result["changed"] is True and not result.get("failed")

    run_dir = str(backup_dir / ("%s-%s" % (db.name, RUN_ID)))
    assert result["directory"] == run_dir
    assert result["path"] == os.path.join(run_dir, db.name + ".dump")
    assert mode(run_dir) == "0o700"
    assert sorted(os.listdir(run_dir)) == sorted([db.name + ".dump", "globals.sql", "manifest.json"])
    for name in os.listdir(run_dir):
        assert mode(os.path.join(run_dir, name)) == "0o600", name

    with open(result["path"], "rb") as handle:
        sha = hashlib.sha256(handle.read()).hexdigest()
    manifest = manifest_of(result)
    assert result["sha256"] == manifest["sha256"] == sha
    assert result["size_bytes"] == manifest["size_bytes"] == os.path.getsize(result["path"])
    assert manifest["database"] == db.name and manifest["format"] == "custom"
    assert manifest["server_version"].startswith("15.") and manifest["pg_dump_version"].startswith("15.")
    assert (manifest["run_id"], manifest["change_ticket"]) == (RUN_ID, "CHG-1234")
    assert manifest["started"] <= manifest["finished"]
    assert manifest["table_count"] == len(row_counts(db)) == len(manifest["tables"])
    assert manifest["migration_version"] == max(db.versions())
    assert manifest["globals"]["file"] == "globals.sql" and manifest["globals"]["role_passwords"] is False
    assert "TABLE DATA public companies" in pg_restore_list(db.cluster, result["path"])
    assert result["restore_command"].startswith("createdb ") and result["path"] in result["restore_command"]
    assert db.cluster.password not in json.dumps(result)
    assert state(db) == before


def test_the_password_is_in_no_output_file_or_process_list(password_db, backup_dir, tmp_path):
    db = password_db
    password = db.cluster.password
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), backup_verify_restore=True)
    seen = []
    done = threading.Event()

    def watch_processes():
        while not done.is_set():
            seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)

    watcher = threading.Thread(target=watch_processes)
    watcher.start()
    try:
        proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-vvv", "-i", inv,
                               os.path.join(ROOT, "playbooks", "backup.yml")],
                              capture_output=True, text=True, cwd=ROOT,
                              env=ansible_env(dict(ANSIBLE_STDOUT_CALLBACK="default")))
    finally:
        done.set()
        watcher.join()
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "pg_backup" in proc.stdout and "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in proc.stdout
    assert password not in proc.stdout + proc.stderr
    assert any("pg_dump" in snapshot or "ansible" in snapshot for snapshot in seen)
    assert not [snapshot for snapshot in seen if password in snapshot]
    for folder, _dirs, files in os.walk(str(backup_dir)):
        for name in files:
            if not name.endswith(".dump"):
                with open(os.path.join(folder, name), "rb") as handle:
                    assert password.encode() not in handle.read(), name
        assert password not in folder


def test_verify_restore_proves_every_table_and_drops_the_scratch_database(password_db, backup_dir, tmp_path):
    db = password_db
    before_dbs = databases(db.cluster)
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), backup_verify_restore=True)
    result, proc = backup(inv)
    assert proc.returncode == 0, result.get("msg")
    proof = result["verify_restore"]
    assert proof["ok"] is True and proof["missing"] == [] and proof["mismatched"] == []
    assert proof["tables"] == len(row_counts(db)) and proof["rows"] == sum(row_counts(db).values())
    assert manifest_of(result)["row_counts"] == row_counts(db)
    assert databases(db.cluster) == before_dbs


def test_the_restore_proof_finds_a_table_missing_from_the_dump(password_db, tmp_path):
    db = password_db
    cluster = db.cluster
    dump = str(tmp_path / "partial.dump")
    subprocess.run([os.path.join(cluster.bindir, "pg_dump"), "--format=c", "--exclude-table=public.sessions",
                    "--file", dump, "-d", db.name], env=cluster.env(), check=True)
    client = bk.ClientConnection(host=cluster.host, port=cluster.port, user=cluster.user, password=cluster.password)
    connect, _client = bk.make_connector(psycopg2, dict(host=cluster.host, port=cluster.port, user=cluster.user,
                                                        password=cluster.password))
    before_dbs = databases(cluster)
    source = connect(db.name)
    try:
        with bk.passfile(cluster.password) as pgpass:
            proof = bk.restore_proof(bk.Tools(cluster.bindir, client, pgpass), connect, source, dump,
                                     row_counts(db), db.name)
    finally:
        source.close()
    assert proof["ok"] is False
    assert proof["missing"] == ["public.sessions"]
    assert "missing tables: public.sessions" in proof["msg"]
    assert databases(cluster) == before_dbs


def test_directory_format_dumps_in_parallel(password_db, backup_dir, tmp_path):
    db = password_db
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), backup_format="directory",
                    backup_jobs=2)
    result, proc = backup(inv)
    assert proc.returncode == 0, result.get("msg")
    assert os.path.isdir(result["path"]) and mode(result["path"]) == "0o700"
    for name in os.listdir(result["path"]):
        assert mode(os.path.join(result["path"], name)) == "0o600"
    assert result["sha256"] == bk.sha256_of(result["path"])
    assert "TABLE DATA public users" in pg_restore_list(db.cluster, result["path"])


def test_a_second_run_with_the_same_run_id_takes_no_second_backup(password_db, backup_dir, tmp_path):
    inv = inventory(tmp_path / "inv.yml", password_db, backup_dir=str(backup_dir), rollout_run_id=RUN_ID)
    first, proc = backup(inv)
    assert proc.returncode == 0, first.get("msg")
    again, proc = backup(inv)
    assert proc.returncode == 0 and again["changed"] is False
    assert again["sha256"] == first["sha256"] and again["path"] == first["path"]


def test_retention_keeps_the_newest_and_the_backup_of_a_failed_run(password_db, backup_dir, tmp_path):
    db = password_db
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), backup_keep=1, backup_globals=False)
    results = {}
    for run in ("r1", "r2", "r3"):
        results[run], proc = backup(inv, extra_vars={"rollout_run_id": run})
        assert proc.returncode == 0, results[run].get("msg")
        if run == "r1":
            mark = tmp_path / "mark.yml"
            mark.write_text(MARK_RUN_FAILED_PLAYBOOK)
            data, proc = run_playbook(str(mark), inventory=inv, extra_vars={
                "backup_manifest": results[run]["manifest"], "backup_run_failed_reason": "rollback scripts failed"})
            assert proc.returncode == 0, proc.stdout[-2000:]
            assert manifest_of(results[run])["run_failed"] is True
    assert sorted(os.listdir(str(backup_dir))) == ["%s-%s" % (db.name, run) for run in ("r1", "r3")]
    assert results["r2"]["deleted"] == [] and results["r3"]["deleted"] == [results["r2"]["directory"]]


def test_an_unwritable_backup_directory_fails_naming_it_and_writes_nothing(password_db, tmp_path):
    db = password_db
    before, before_dbs = state(db), databases(db.cluster)
    with mounted_tmpfs("ro,size=1m") as readonly:
        inv = inventory(tmp_path / "inv.yml", db, backup_dir=readonly)
        result, proc = backup(inv)
        assert proc.returncode != 0 and result["failed"] is True
        assert "backup directory %s is not writable" % readonly in result["msg"]
        assert result["path"] is None and result["restore_command"] is None
        assert os.listdir(readonly) == []
    assert state(db) == before and databases(db.cluster) == before_dbs


def test_a_disk_that_fills_during_the_dump_leaves_no_partial_file(password_db, tmp_path):
    db = password_db
    before = state(db)
    with mounted_tmpfs("size=16k") as small:
        inv = inventory(tmp_path / "inv.yml", db, backup_dir=small, rollout_run_id=RUN_ID)
        result, proc = backup(inv)
        assert proc.returncode != 0
        assert "no space left on device" in result["msg"].lower(), result["msg"]
        assert os.listdir(small) == []
    assert state(db) == before


def test_a_lock_held_past_the_lock_wait_timeout_fails_and_leaves_no_partial_backup(password_db, backup_dir,
                                                                                   tmp_path):
    db = password_db
    holder = db.connect()
    holder.autocommit = False
    try:
        holder.cursor().execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), rollout_run_id=RUN_ID,
                        backup_lock_wait_timeout="1s")
        result, proc = backup(inv)
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode != 0
    assert "pg_dump of %s failed" % db.name in result["msg"] and "users" in result["msg"], result["msg"]
    assert not os.path.exists(str(backup_dir / ("%s-%s" % (db.name, RUN_ID))))


def test_a_pg_dump_older_than_the_server_is_refused_before_anything_is_written(password_db, backup_dir, tmp_path):
    db = password_db
    old = tmp_path / "pg14"
    old.mkdir()
    script = old / "pg_dump"
    script.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.10'\n")
    script.chmod(0o755)
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), backup_pg_bindir=str(old))
    result, proc = backup(inv)
    assert proc.returncode != 0
    assert "pg_dump 14.10 is older than the server (PostgreSQL 15." in result["msg"], result["msg"]
    assert not backup_dir.exists()


def test_an_unknown_database_is_named(password_db, backup_dir, tmp_path):
    inv = inventory(tmp_path / "inv.yml", password_db, backup_dir=str(backup_dir), db_name="no_such_db")
    result, proc = backup(inv)
    assert proc.returncode != 0
    assert result["msg"].startswith("database no_such_db does not exist on postgres@127.0.0.1:")
    assert not backup_dir.exists()


def test_check_mode_reports_the_backup_and_writes_nothing(password_db, backup_dir, tmp_path):
    inv = inventory(tmp_path / "inv.yml", password_db, backup_dir=str(backup_dir), rollout_run_id=RUN_ID)
    data, proc = run_playbook(os.path.join(ROOT, "playbooks", "backup.yml"), inventory=inv, check=True)
    result = task_result(data, BACKUP_TASK)
    assert proc.returncode == 0 and result["changed"] is True
    assert result["msg"].startswith("would back %s up into" % password_db.name)
    assert not backup_dir.exists()


def test_backup_on_the_database_host_over_the_unix_socket_as_postgres(password_db, postgres_owned_dir, tmp_path):
    db = password_db
    before = state(db)
    inv = inventory(tmp_path / "inv.yml", db, **on_db_host(db, postgres_owned_dir, rollout_run_id=RUN_ID))
    result, proc = backup(inv)
    assert proc.returncode == 0, result.get("msg")
    assert result["path"].startswith(postgres_owned_dir)
    assert "--host=%s" % db.cluster.socketdir in result["restore_command"]
    postgres_uid = pwd.getpwnam("postgres").pw_uid
    for path in (result["directory"], result["path"], result["manifest"]):
        assert os.stat(path).st_uid == postgres_uid, path
    assert mode(result["directory"]) == "0o700" and mode(result["path"]) == "0o600"
    assert manifest_of(result)["source"].startswith("postgres@%s:" % db.cluster.socketdir)
    assert state(db) == before


def test_a_locked_history_table_fails_within_the_lock_wait_timeout(password_db, backup_dir, tmp_path):
    db = password_db
    holder = db.connect()
    holder.autocommit = False
    try:
        holder.cursor().execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), backup_lock_wait_timeout="1s")
        result, proc = backup(inv)
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode != 0
    assert result["msg"].startswith("a table of %s stayed locked past lock_wait_timeout 1s" % db.name)
    assert os.listdir(str(backup_dir)) == []


def test_without_a_history_table_the_manifest_records_no_migration_version(password_db, backup_dir, tmp_path):
    db = password_db
    db.psql("DROP TABLE schema_migrations")
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir))
    result, proc = backup(inv)
    assert proc.returncode == 0, result.get("msg")
    assert result["migration_version"] is None and manifest_of(result)["migration_version"] is None
