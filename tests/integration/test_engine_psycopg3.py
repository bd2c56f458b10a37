"""The engine on psycopg 3, where community.postgresql's helpers support it: psycopg2 is made
unimportable for the run and psycopg 3 (make setup installs it in .venv/psycopg3) is put on the
path, so connect_to_db hands pg_migrate a psycopg 3 connection. Each case looks at the database."""

import os

import pytest

from _engine import make_set, set_versions
from conftest import ROOT

PSYCOPG3 = os.path.join(ROOT, ".venv", "psycopg3")

SET = {
    "001_create_labels.sql": "CREATE TABLE labels (id int PRIMARY KEY, ñame text NOT NULL);\n"
                             "INSERT INTO labels SELECT g, 'label ' || g FROM generate_series(1, 50) g;\n"
                             "DO $$ BEGIN RAISE NOTICE 'labels filled'; END $$;\n",
    "verify/001_create_labels.sql": "DO $$ BEGIN IF (SELECT count(*) FROM labels) <> 50 THEN "
                                    "RAISE EXCEPTION 'labels: expected 50 rows'; END IF; END $$;\n",
    "rollback/001_create_labels.sql": "DROP TABLE labels;\n",
    "002_index_labels.sql": "-- rollout: no-transaction\nCREATE INDEX CONCURRENTLY labels_ñame ON labels (ñame);\n",
    "rollback/002_index_labels.sql": "-- rollout: no-transaction\nDROP INDEX CONCURRENTLY labels_ñame;\n",
}


@pytest.fixture
def psycopg3_env(tmp_path):
    assert os.path.isdir(os.path.join(PSYCOPG3, "psycopg")), "psycopg 3 is missing from %s: run make setup" % PSYCOPG3
    hidden = tmp_path / "hide_psycopg2" / "psycopg2"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("psycopg2 is hidden: the psycopg 3 lane")\n')
    return {"PYTHONPATH": os.pathsep.join([str(hidden.parent), PSYCOPG3])}


def test_the_lane_really_runs_psycopg_3(psycopg3_env, db, tmp_path):
    """Without psycopg, the hidden psycopg2 would leave community.postgresql with no driver at all."""
    env = dict(psycopg3_env, PYTHONPATH=psycopg3_env["PYTHONPATH"].split(os.pathsep)[0])
    result, proc = db.pg_migrate(path=make_set(tmp_path, SET), env=env)
    assert proc.returncode != 0 and "psycopg" in result["msg"], result
    assert set_versions(db) == []


def test_apply_status_and_rollback_on_psycopg_3(psycopg3_env, db, tmp_path):
    path = make_set(tmp_path, SET)
    result, proc = db.pg_migrate(path=path, env=psycopg3_env)
    assert proc.returncode == 0, result
    assert result["applied"] == ["001_create_labels", "002_index_labels"]
    assert any("labels filled" in notice for notice in result["notices"]), result["notices"]
    assert set_versions(db) == ["001_create_labels", "002_index_labels"]
    assert db.psql("SELECT count(*) FROM labels") == "50"
    assert db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('labels_ñame')") == "t"

    status, proc = db.pg_migrate(path=path, state="status", env=psycopg3_env)
    assert proc.returncode == 0 and status["changed"] is False and status["pending"] == []

    back, proc = db.pg_migrate(path=path, state="rolled_back", target="none", env=psycopg3_env)
    assert proc.returncode == 0, back
    assert back["rolled_back"] == ["002_index_labels", "001_create_labels"]
    assert set_versions(db) == [] and db.psql("SELECT to_regclass('labels') IS NULL") == "t"


def test_a_failing_verification_on_psycopg_3_commits_nothing(psycopg3_env, db, tmp_path):
    files = dict(SET)
    files["verify/001_create_labels.sql"] = "DO $$ BEGIN RAISE EXCEPTION 'labels: always wrong'; END $$;\n"
    result, proc = db.pg_migrate(path=make_set(tmp_path, files), env=psycopg3_env)
    assert proc.returncode != 0
    assert "verify/001_create_labels.sql" in result["msg"] and "labels: always wrong" in result["msg"]
    assert set_versions(db) == [] and db.psql("SELECT to_regclass('labels') IS NULL") == "t"


def test_a_lock_blocked_migration_on_psycopg_3_retries_and_names_its_blocker(psycopg3_env, db, tmp_path):
    blocker = db.connect()
    cur = blocker.cursor()
    cur.execute("SET application_name = 'nightly-report'")
    cur.execute("BEGIN")
    cur.execute("LOCK TABLE companies IN ACCESS SHARE MODE")
    files = {"001_alter_companies.sql": "ALTER TABLE companies ADD COLUMN tier int;\n",
             "rollback/001_alter_companies.sql": "ALTER TABLE companies DROP COLUMN tier;\n"}
    try:
        result, proc = db.pg_migrate(path=make_set(tmp_path, files), lock_timeout="200ms", lock_retries=2,
                                     lock_retry_delay="100ms", env=psycopg3_env)
        pid = blocker.get_backend_pid()
    finally:
        blocker.close()
    assert proc.returncode != 0
    assert "lock_timeout 200ms after 3 attempts" in result["msg"], result["msg"]
    assert "blocked by pid %d" % pid in result["msg"] and "nightly-report" in result["msg"], result["msg"]
    assert db.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'tier'") == "0"
    assert set_versions(db) == []


def test_the_run_lock_on_psycopg_3_names_its_holder(psycopg3_env, db, tmp_path):
    path = make_set(tmp_path, SET)
    db.pg_migrate(path=path, target="001_create_labels", env=psycopg3_env)
    holder = db.connect()
    holder.autocommit = True
    cur = holder.cursor()
    cur.execute("SET application_name = 'other-runner'")
    cur.execute("SELECT pg_advisory_lock(%s, hashtext(current_database() || '/' || 'public.schema_migrations'))"
                % 0x7465)
    try:
        result, proc = db.pg_migrate(path=path, run_lock_timeout="300ms", env=psycopg3_env)
    finally:
        holder.close()
    assert proc.returncode != 0 and "other-runner" in result["msg"], result["msg"]
    assert set_versions(db) == ["001_create_labels"]
