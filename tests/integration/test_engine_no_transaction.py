"""No-transaction migrations and rollbacks touch only what they name, and get the same lock retries
and blocker reports as transactional ones."""

import threading

from _engine import make_set, set_versions, wait_for


def test_an_applications_concurrent_index_build_survives_a_failing_no_transaction_migration(db, tmp_path):
    # The migration waits on an advisory lock the test holds, so that the application's build starts
    # while the migration runs; then the migration's own unique build fails.
    files = {"001_users_initial.sql": "-- rollout: no-transaction\nSELECT pg_advisory_xact_lock_shared(7401);\n"
                                      "CREATE UNIQUE INDEX CONCURRENTLY idx_users_initial ON users (left(email, 1));\n"}
    gate = db.connect()
    gate.cursor().execute("SELECT pg_advisory_lock(7401)")
    writer = db.connect()  # an open writer keeps the application's build waiting, its index INVALID
    wcur = writer.cursor()
    wcur.execute("BEGIN")
    wcur.execute("LOCK TABLE companies IN ROW EXCLUSIVE MODE")
    app = db.connect()
    outcome = {}

    def migrate():
        outcome["run"] = db.pg_migrate(path=make_set(tmp_path, files), lock_timeout="120s")

    def build():
        try:
            app.cursor().execute("CREATE INDEX CONCURRENTLY idx_app_companies_name ON companies (name)")
            outcome["app"] = "built"
        except Exception as exc:  # reported by the assertion below
            outcome["app"] = str(exc)

    runner = threading.Thread(target=migrate)
    builder = threading.Thread(target=build)
    try:
        runner.start()
        assert wait_for(lambda: db.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND query LIKE '%pg_advisory_xact_lock_shared%'") == "1")
        builder.start()
        assert wait_for(lambda: db.psql("SELECT count(*) FROM pg_index WHERE NOT indisvalid AND "
                                        "indexrelid = to_regclass('idx_app_companies_name')") == "1")
        gate.close()
        runner.join(120)
        result, proc = outcome["run"]
        assert proc.returncode != 0
        assert "001_users_initial.sql failed at statement 2 (line 3)" in result["msg"]
        assert "dropped the INVALID index idx_users_initial" in result["msg"]
        # The application's index is still there, still building.
        assert db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                       "to_regclass('idx_app_companies_name')") == "f"
        assert db.psql("SELECT to_regclass('idx_users_initial') IS NULL") == "t"
    finally:
        writer.close()
        if builder.ident is not None:
            builder.join(60)
        app.close()
        if not gate.closed:
            gate.close()
    assert outcome.get("app") == "built"
    assert db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('idx_app_companies_name')") == "t"
    assert set_versions(db) == []


def test_a_lock_blocked_no_transaction_rollback_retries_and_names_its_blocker(db, tmp_path):
    files = {"001_index.sql": "-- rollout: no-transaction\n"
                              "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_companies_created ON companies (created_at);\n",
             "rollback/001_index.sql": "-- rollout: no-transaction\n"
                                       "DROP INDEX CONCURRENTLY IF EXISTS idx_companies_created;\n"}
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0, result
    blocker = db.connect()
    cur = blocker.cursor()
    cur.execute("SET application_name = 'nightly-report'")
    cur.execute("BEGIN")
    cur.execute("LOCK TABLE companies IN SHARE MODE /* nightly-report */")
    try:
        pid = blocker.get_backend_pid()
        result, proc = db.pg_migrate(path=path, state="rolled_back", target="none", lock_timeout="200ms",
                                     lock_retries=2, lock_retry_delay="100ms")
    finally:
        blocker.close()
    assert proc.returncode != 0
    msg = result["msg"]
    assert "rollback/001_index.sql could not get its locks within lock_timeout 200ms after 3 attempts" in msg
    assert "blocked by pid %d" % pid in msg and "nightly-report" in msg
    assert "001_index stays recorded as applied; the database is left at 001_index" in msg
    assert db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_companies_created'::regclass") == "t"
    assert set_versions(db) == ["001_index"]
    # Once the blocker is gone the rollback goes through.
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="none")
    assert proc.returncode == 0, result
    assert set_versions(db) == [] and db.psql("SELECT to_regclass('idx_companies_created') IS NULL") == "t"


def test_an_unnamed_concurrent_index_is_refused_before_anything_changes(db, tmp_path):
    schema = db.schema()
    files = {"001_index.sql": "-- rollout: no-transaction\nCREATE INDEX CONCURRENTLY ON companies (created_at);\n"}
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert result["msg"].startswith("001_index.sql line 2: name the index this CREATE INDEX CONCURRENTLY builds")
    assert db.schema() == schema
