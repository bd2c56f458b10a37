"""What pg_migrate reports without changing anything: state status (what a rollout needs, what
the last run did) and state verified (every applied migration's verification, rolled back).

Each test looks at the database afterwards: a report never changes it."""

import re

from _engine import log_rows, make_set, set_versions

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

SET = {
    "001_create_widgets.sql": "CREATE TABLE widgets (id int PRIMARY KEY, label text);\n"
                              "INSERT INTO widgets VALUES (1, 'one');\n",
    "rollback/001_create_widgets.sql": "DROP TABLE widgets;\n",
    "verify/001_create_widgets.sql": "DO $$ BEGIN IF (SELECT count(*) FROM widgets) <> 1 THEN "
                                     "RAISE EXCEPTION 'widgets should hold 1 row'; END IF; END $$;\n",
    "002_link_companies.sql": "WITH recent AS (SELECT id FROM companies LIMIT 1)\n"
                              "UPDATE widgets SET label = 'x' FROM recent;\n"
                              "ALTER TABLE public.users ADD COLUMN widget_id int;\n",
    "rollback/002_link_companies.sql": "ALTER TABLE users DROP COLUMN widget_id;\n",
    # A verification may write: state verified runs it in a transaction that is rolled back.
    "verify/002_link_companies.sql": "UPDATE widgets SET label = 'probed' WHERE id = 1;\n"
                                     "SELECT widget_id FROM users LIMIT 1;\n",
    "check/002_link_companies.sql": "SELECT 1 FROM companies LIMIT 1;\n",
    "003_add_gadgets.sql": "CREATE TABLE gadgets (id int PRIMARY KEY);\nGRANT SELECT ON gadgets TO PUBLIC;\n",
    "check/003_add_gadgets.sql": "DO $$ BEGIN IF EXISTS (SELECT 1 FROM companies) THEN "
                                 "RAISE EXCEPTION 'companies must be empty first'; END IF; END $$;\n",
    "verify/set.sql": "SELECT 1 FROM widgets, gadgets LIMIT 1;\n",
}


def test_status_reports_what_a_rollout_of_the_pending_migrations_needs(db, tmp_path):
    path = make_set(tmp_path, SET)
    db.pg_migrate(path=path, target="001_create_widgets")
    schema = db.schema()
    result, proc = db.pg_migrate(path=path, state="status")
    assert proc.returncode == 0, result
    assert result["changed"] is False
    assert result["pending"] == ["002_link_companies", "003_add_gadgets"]
    assert result["missing_rollbacks"] == ["003_add_gadgets"]
    assert result["pending_tables"] == {"002_link_companies": ["public.companies", "public.users", "public.widgets"],
                                        "003_add_gadgets": ["public.gadgets"]}
    assert result["preconditions"] == [
        {"version": "002_link_companies", "ok": True, "msg": "check/002_link_companies.sql holds"},
        {"version": "003_add_gadgets", "ok": False, "msg": result["preconditions"][1]["msg"]}]
    assert "check/003_add_gadgets.sql failed at statement 1 (line 1)" in result["preconditions"][1]["msg"]
    assert "companies must be empty first" in result["preconditions"][1]["msg"]
    assert db.schema() == schema
    assert set_versions(db) == ["001_create_widgets"]


def test_status_runs_preconditions_read_only_and_changes_nothing(db, tmp_path):
    files = dict(SET, **{"check/002_link_companies.sql": "DELETE FROM sessions;\n"})
    sessions = db.psql("SELECT count(*) FROM sessions")
    assert sessions != "0"
    result, proc = db.pg_migrate(path=make_set(tmp_path, files), state="status")
    assert proc.returncode == 0, result
    failed = [p for p in result["preconditions"] if p["version"] == "002_link_companies"][0]
    assert failed["ok"] is False and "read-only transaction" in failed["msg"]
    assert db.psql("SELECT count(*) FROM sessions") == sessions


def test_status_without_preconditions_runs_none(db, tmp_path):
    files = dict(SET, **{"check/002_link_companies.sql": "SELECT pg_advisory_lock(4242);\n"})
    result, proc = db.pg_migrate(path=make_set(tmp_path, files), state="status", check_preconditions=False)
    assert proc.returncode == 0, result
    assert result["preconditions"] == []
    assert db.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242") == "0"


def test_status_in_check_mode_reports_the_same(db, tmp_path):
    path = make_set(tmp_path, SET)
    schema = db.schema()
    result, proc = db.pg_migrate(path=path, state="status", check=True)
    assert proc.returncode == 0, result
    assert result["changed"] is False and result["pending"] == ["001_create_widgets", "002_link_companies",
                                                                "003_add_gadgets"]
    assert result["last_run"] is None
    assert db.schema() == schema


def test_last_run_and_run_changes_say_what_each_run_did(db, tmp_path):
    files = dict(SET, **{"rollback/003_add_gadgets.sql": "DROP TABLE gadgets;\n"})
    files.pop("check/003_add_gadgets.sql")
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path, run_id="run-apply", change_ticket="CHG-1", applied_by="ops@ctl")
    assert proc.returncode == 0, result
    result, proc = db.pg_migrate(path=path, state="rolled_back", target="001_create_widgets",
                                 run_id="run-back", change_ticket="CHG-2", applied_by="ops@ctl")
    assert proc.returncode == 0, result
    assert log_rows(db) == ["001_create_widgets|applied|run-apply", "002_link_companies|applied|run-apply",
                            "003_add_gadgets|applied|run-apply", "003_add_gadgets|rolled_back|run-back",
                            "002_link_companies|rolled_back|run-back"]

    result, proc = db.pg_migrate(path=path, state="status")
    assert proc.returncode == 0, result
    last = result["last_run"]
    assert (last["run_id"], last["change_ticket"], last["applied_by"]) == ("run-back", "CHG-2", "ops@ctl")
    assert last["versions"] == ["003_add_gadgets", "002_link_companies"]
    assert last["actions"] == ["rolled_back", "rolled_back"]
    assert ISO_UTC.match(last["finished_at"]), last["finished_at"]
    assert "run_changes" not in result

    result, proc = db.pg_migrate(path=path, state="status", run_id="run-apply")
    changes = result["run_changes"]
    assert [(c["version"], c["action"]) for c in changes] == [
        ("001_create_widgets", "applied"), ("002_link_companies", "applied"), ("003_add_gadgets", "applied")]
    recorded = db.psql("SELECT checksum FROM schema_migrations WHERE version = '001_create_widgets'")
    assert changes[0]["checksum"] == recorded and all(ISO_UTC.match(c["at"]) for c in changes)
    result, proc = db.pg_migrate(path=path, state="status", run_id="run-back")
    assert [(c["version"], c["action"]) for c in result["run_changes"]] == [
        ("003_add_gadgets", "rolled_back"), ("002_link_companies", "rolled_back")]


def test_last_run_is_read_from_history_rows_when_there_is_no_log_yet(db, tmp_path):
    path = make_set(tmp_path, SET)
    db.pg_migrate(path=path, target="001_create_widgets", run_id="run-old")
    db.psql("DROP TABLE schema_migrations_log")  # a history table written before the log existed
    result, proc = db.pg_migrate(path=path, state="status", run_id="run-old")
    assert proc.returncode == 0, result
    assert result["last_run"]["run_id"] == "run-old"
    assert result["last_run"]["versions"] == ["001_create_widgets"]
    assert [c["action"] for c in result["run_changes"]] == ["applied"]
    assert db.psql("SELECT to_regclass('schema_migrations_log') IS NULL") == "t"


# ---------------------------------------------------------------- state verified

def complete_set(db, tmp_path):
    files = dict(SET)
    files.pop("check/003_add_gadgets.sql")
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0, result
    return path


def test_verified_runs_every_verification_and_changes_nothing(db, tmp_path):
    path = complete_set(db, tmp_path)
    db.psql("UPDATE widgets SET label = 'one'")
    schema = db.schema()
    result, proc = db.pg_migrate(path=path, state="verified")
    assert proc.returncode == 0, result
    assert result["changed"] is False
    assert [(v["name"], v["ok"]) for v in result["verifications"]] == [
        ("verify/001_create_widgets.sql", True), ("verify/002_link_companies.sql", True), ("verify/set.sql", True)]
    # verify/002 updated a row inside its transaction: the update did not stay.
    assert db.psql("SELECT label FROM widgets") == "one"
    assert db.schema() == schema


def test_verified_fails_naming_the_verification_that_failed(db, tmp_path):
    path = complete_set(db, tmp_path)
    db.psql("DELETE FROM widgets")  # someone broke what 001 verified
    result, proc = db.pg_migrate(path=path, state="verified")
    assert proc.returncode != 0
    assert result["msg"].startswith("1 verification of set phase_t failed: ")
    assert "verify/001_create_widgets.sql failed at statement 1 (line 1)" in result["msg"]
    assert "widgets should hold 1 row" in result["msg"]
    assert [(v["name"], v["ok"]) for v in result["verifications"]] == [
        ("verify/001_create_widgets.sql", False), ("verify/002_link_companies.sql", True), ("verify/set.sql", True)]
    assert result["changed"] is False
    assert db.psql("SELECT count(*) FROM widgets") == "0"


def test_verified_skips_the_set_verification_while_migrations_are_pending(db, tmp_path):
    path = make_set(tmp_path, SET)
    db.pg_migrate(path=path, target="001_create_widgets")
    result, proc = db.pg_migrate(path=path, state="verified")
    assert proc.returncode == 0, result
    assert [v["name"] for v in result["verifications"]] == ["verify/001_create_widgets.sql"]
    assert any("verify/set.sql not run: 2 migrations of the set are pending" in w
               for w in result.get("warnings", [])), result.get("warnings")
