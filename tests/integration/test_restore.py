"""The restore role (playbooks/restore.yml, teei.db_rollout.pg_restore) against a real PostgreSQL 15 that
asks for a password: a restore after Phase C brings the pre-migration database back exactly, and every
refusal or failure leaves the database as it was."""

import json
import os
import uuid

import psycopg2
import pytest

from _backup import (RESTORE_PLAYBOOK, RESTORE_TASK, backup, databases, inventory, on_db_host,  # noqa: F401
                     postgres_owned_dir, restore, row_counts, state, take_backup, task_result)
from conftest import ROOT, Database, run_playbook

PHASE_C = os.path.join(ROOT, "migrations", "phase_c")


@pytest.fixture
def backup_dir(tmp_path):
    return tmp_path / "backups"


@pytest.fixture
def taken(password_db, backup_dir, tmp_path):
    """A backup of password_db (run id r1), its inventory and the database's state at backup time."""
    inv = inventory(tmp_path / "inv.yml", password_db, backup_dir=str(backup_dir), rollout_run_id="r1")
    return dict(result=take_backup(password_db, backup_dir, "r1"), inv=inv, state=state(password_db))


@pytest.fixture
def other_db(password_db):
    """A database name on the same cluster that does not exist yet (dropped afterwards)."""
    db = Database(password_db.cluster, "r_" + uuid.uuid4().hex[:12])
    yield db
    db.cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db.name)


def add_marker(db):
    """A change made after the backup, which a refused or failed restore must leave in place."""
    db.psql("INSERT INTO schema_migrations (version, applied_at) VALUES ('zz_after_backup', now())")


def test_restore_after_phase_c_brings_back_the_pre_migration_schema_and_rows(password_db, taken):
    db = password_db
    result, proc = db.pg_migrate(path=PHASE_C)
    assert proc.returncode == 0, result.get("msg")
    assert state(db) != taken["state"]
    app_role = "h3_app_" + uuid.uuid4().hex[:8]
    db.cluster.psql('CREATE ROLE "%s"' % app_role)
    db.psql('REVOKE CONNECT, TEMPORARY ON DATABASE "%s" FROM PUBLIC; GRANT CONNECT ON DATABASE "%s" TO "%s"; '
            'ALTER DATABASE "%s" CONNECTION LIMIT 7' % (db.name, db.name, app_role, db.name))
    acl_sql = "SELECT datacl::text || ' ' || datconnlimit FROM pg_database WHERE datname = '%s'" % db.name
    acl_before = db.cluster.psql(acl_sql)
    before_dbs = databases(db.cluster)
    app = db.connect()

    restored, proc = restore(taken["inv"], {"restore_from": taken["result"]["path"], "restore_overwrite": True})
    assert proc.returncode == 0, restored.get("msg")
    assert restored["changed"] is True and restored["sha256_ok"] is True and restored["replaced"] is True
    assert (restored["database"], restored["from"]) == (db.name, taken["result"]["path"])
    assert state(db) == taken["state"]
    assert databases(db.cluster) == before_dbs
    assert db.cluster.psql(acl_sql) == acl_before  # who may connect is carried over (maintenance mode)
    assert db.cluster.password not in proc.stdout + proc.stderr
    with pytest.raises(psycopg2.Error):
        app.cursor().execute("SELECT 1")  # the application's session was terminated


def test_restore_refuses_to_replace_a_database_without_the_confirmation(password_db, taken):
    db = password_db
    add_marker(db)
    before, before_dbs = state(db), databases(db.cluster)
    restored, proc = restore(taken["inv"], {"restore_from": taken["result"]["path"]})
    assert proc.returncode != 0
    assert restored["msg"].startswith("database %s exists: set overwrite (restore_overwrite: true)" % db.name)
    assert restored["sha256_ok"] is True and restored["changed"] is False
    assert state(db) == before and databases(db.cluster) == before_dbs


def test_a_manifest_whose_sha256_does_not_match_refuses_and_changes_nothing(password_db, taken):
    db = password_db
    add_marker(db)
    before, before_dbs = state(db), databases(db.cluster)
    manifest_path = taken["result"]["manifest"]
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    manifest["sha256"] = "0" * 64
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    restored, proc = restore(taken["inv"], {"restore_from": taken["result"]["path"], "restore_overwrite": True})
    assert proc.returncode != 0
    assert "sha256 of %s is %s but its manifest" % (taken["result"]["path"], taken["result"]["sha256"]) \
        in restored["msg"]
    assert restored["sha256_ok"] is False and restored["changed"] is False
    assert state(db) == before and databases(db.cluster) == before_dbs


def test_a_missing_dump_is_named_and_changes_nothing(password_db, taken, tmp_path):
    db = password_db
    before, before_dbs = state(db), databases(db.cluster)
    missing = str(tmp_path / "nowhere" / "cockpit.dump")
    restored, proc = restore(taken["inv"], {"restore_from": missing, "restore_overwrite": True})
    assert proc.returncode != 0
    assert restored["msg"] == "backup %s does not exist" % missing
    assert state(db) == before and databases(db.cluster) == before_dbs


def test_a_failing_restore_leaves_the_database_as_it_was_and_open(password_db, backup_dir, tmp_path):
    db = password_db
    owner = "h3_owner_" + uuid.uuid4().hex[:8]
    db.cluster.psql('CREATE ROLE "%s"' % owner)
    db.psql('ALTER TABLE companies OWNER TO "%s"' % owner)
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir), rollout_run_id="r1")
    taken = take_backup(db, backup_dir, "r1")
    # The owner is gone on this server now: pg_restore --exit-on-error fails at ALTER TABLE ... OWNER TO.
    db.psql("ALTER TABLE companies OWNER TO postgres")
    db.cluster.psql('DROP ROLE "%s"' % owner)
    add_marker(db)
    before, before_dbs = state(db), databases(db.cluster)

    restored, proc = restore(inv, {"restore_from": taken["path"], "restore_overwrite": True})
    assert proc.returncode != 0
    assert restored["msg"].startswith("pg_restore into %s_restore_" % db.name) and owner in restored["msg"]
    assert state(db) == before and databases(db.cluster) == before_dbs
    assert db.scalar("SELECT datallowconn FROM pg_database WHERE datname = current_database()") == "t"


def test_the_newest_backup_is_restored_into_a_new_database(password_db, other_db, backup_dir, tmp_path):
    db = password_db
    inv = inventory(tmp_path / "inv.yml", db, backup_dir=str(backup_dir))
    take_backup(db, backup_dir, "r1")
    add_marker(db)
    newest = take_backup(db, backup_dir, "r2")
    source = state(db)
    db.psql("DELETE FROM sessions")

    restored, proc = restore(inv, {"restore_database": other_db.name})
    assert proc.returncode == 0, restored.get("msg")
    assert restored["from"] == newest["path"] and restored["replaced"] is False
    assert row_counts(other_db) == source[1] and other_db.schema() == source[0]
    assert row_counts(db)["public.sessions"] == 0  # the source database was left alone


def test_restore_on_the_database_host_over_the_unix_socket_as_postgres(password_db, other_db, postgres_owned_dir,
                                                                       tmp_path):
    db = password_db
    inv = inventory(tmp_path / "inv.yml", db, **on_db_host(db, postgres_owned_dir, rollout_run_id="r1"))
    taken, proc = backup(inv)
    assert proc.returncode == 0, taken.get("msg")
    restored, proc = restore(inv, {"restore_from": taken["directory"], "restore_database": other_db.name})
    assert proc.returncode == 0, restored.get("msg")
    assert restored["sha256_ok"] is True and restored["from"] == taken["path"]
    assert state(other_db) == state(db)


def test_check_mode_checks_the_backup_and_changes_nothing(password_db, taken):
    db = password_db
    add_marker(db)
    before, before_dbs = state(db), databases(db.cluster)
    data, proc = run_playbook(RESTORE_PLAYBOOK, inventory=taken["inv"], check=True,
                              extra_vars={"restore_from": taken["result"]["path"], "restore_overwrite": True})
    restored = task_result(data, RESTORE_TASK)
    assert proc.returncode == 0 and restored["changed"] is True and restored["sha256_ok"] is True
    assert restored["msg"] == "would restore %s into %s" % (taken["result"]["path"], db.name)
    assert state(db) == before and databases(db.cluster) == before_dbs
