"""Files the way real teams write them, read by PostgreSQL's own parser on the controller: what runs,
what is refused before anything changes, and what the database looks like afterwards."""

import hashlib

import pytest

from _engine import make_set, set_versions

GOOD = "CREATE TABLE widgets (id int PRIMARY KEY);\n"


def columns(db, table):
    return db.psql("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns "
                   "WHERE table_name = '%s'" % table)


def test_a_begin_commit_wrapped_migration_whose_verification_fails_leaves_no_table_and_no_row(db, tmp_path):
    files = {"001_wrapped.sql": "-- written like the runbook's Step 2\nBEGIN;\nCREATE TABLE wrapped (id int);\n"
                                "INSERT INTO wrapped VALUES (1);\nCOMMIT;\n",
             "verify/001_wrapped.sql": "DO $$ BEGIN IF (SELECT count(*) FROM wrapped) <> 2 THEN "
                                       "RAISE EXCEPTION 'wrapped should hold 2 rows'; END IF; END $$;\n"}
    path = make_set(tmp_path, files)
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode != 0
    assert "verify/001_wrapped.sql failed at statement 1" in result["msg"]
    assert "left at the state before this run" in result["msg"]
    assert db.psql("SELECT to_regclass('public.wrapped') IS NULL") == "t"
    assert set_versions(db) == []
    # With a verification that holds, the wrapper is dropped with a warning and the file applies.
    make_set(tmp_path, {"verify/001_wrapped.sql": "SELECT 1 FROM wrapped;\n"})
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0, result
    assert any("001_wrapped.sql: dropped its BEGIN (line 2) and COMMIT (line 5) wrapper" in w
               for w in result.get("warnings", [])), result
    assert db.psql("SELECT count(*) FROM wrapped") == "1" and set_versions(db) == ["001_wrapped"]


@pytest.mark.parametrize("control", ["COMMIT", "ROLLBACK", "END", "SAVEPOINT half", "START TRANSACTION"])
def test_transaction_control_half_way_is_refused_before_anything_changes(db, tmp_path, control):
    files = {"001_first.sql": GOOD,
             "002_half.sql": "CREATE TABLE first_half (id int);\n%s;\nCREATE TABLE second_half (id int);\n" % control}
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert result["msg"].startswith("002_half.sql line 2: ")
    assert "controls the transaction the engine runs this file in" in result["msg"]
    assert "-- rollout: no-transaction" in result["msg"]
    assert db.schema() == schema
    assert set_versions(db) == []


def test_a_syntax_error_in_the_fifth_file_stops_the_run_before_the_first_is_applied(db, tmp_path):
    files = dict(("%03d_t%d.sql" % (i, i), "CREATE TABLE t%d (id int);\n" % i) for i in range(1, 6))
    files["005_t5.sql"] = "CREATE TABLE t5 (id int);\n\nALTER TABLE t5 ADD COLUMN;\n"
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode != 0
    assert result["msg"] == "005_t5.sql line 3: syntax error at or near \";\" (PostgreSQL's parser)"
    assert db.schema() == schema and set_versions(db) == []


@pytest.mark.parametrize("relpath", ["rollback/001_t1.sql", "verify/001_t1.sql", "check/001_t1.sql"])
def test_a_syntax_error_in_a_companion_script_fails_before_connecting(db, tmp_path, relpath):
    files = {"001_t1.sql": GOOD, relpath: "SELECT 1;\nSELECT * FROM WHERE;\n"}
    # An unreachable port: the run must fail on the file, not on the connection.
    import pgcluster
    result, proc = db.pg_migrate(path=make_set(tmp_path, files), login_port=pgcluster.free_port())
    assert proc.returncode != 0
    assert result["msg"].startswith("%s line 2: syntax error" % relpath), result["msg"]


def test_non_ascii_identifiers_and_begin_atomic_bodies_apply(db, tmp_path):
    files = {"001_unicode.sql": "CREATE TABLE tâble (ñame text, 名前 text);\nINSERT INTO tâble VALUES ('é', '日本');\n",
             "002_atomic.sql": "CREATE FUNCTION answer() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
                               "  SELECT 42 AS \"end\";\nEND;\n"
                               "CREATE FUNCTION tagged() RETURNS text AS $body$ SELECT $$a;b$$ || E'\\';' $body$ "
                               "LANGUAGE sql;\n/* a /* nested; */ comment; */\nSELECT answer();\n",
             "verify/002_atomic.sql": "DO $$ BEGIN IF answer() <> 42 OR tagged() <> 'a;b'';' THEN "
                                      "RAISE EXCEPTION 'wrong'; END IF; END $$;\n"}
    result, proc = db.pg_migrate(path=make_set(tmp_path, files))
    assert proc.returncode == 0, result
    assert columns(db, "tâble") == "ñame,名前"
    assert db.psql("SELECT answer()") == "42"
    assert set_versions(db) == ["001_unicode", "002_atomic"]


def test_a_file_with_a_byte_order_mark_applies_with_the_checksum_of_its_bytes(db, tmp_path):
    data = b"\xef\xbb\xbfCREATE TABLE bom (id int);\n"
    path = make_set(tmp_path, {"001_bom.sql": data})
    result, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0, result
    assert db.psql("SELECT checksum FROM schema_migrations WHERE version = '001_bom'") == \
        hashlib.sha256(data).hexdigest()
    again, proc = db.pg_migrate(path=path)
    assert proc.returncode == 0 and again["changed"] is False and again["problems"] == []


@pytest.mark.parametrize("text, line, start", [
    ("CREATE TABLE a (id int);\n\\i other.sql\n", 2, "\\i is a psql meta-command, not SQL"),
    ("\\set ON_ERROR_STOP on\nCREATE TABLE a (id int);\n", 1, "\\set is a psql meta-command, not SQL"),
    ("CREATE TABLE a (id int);\nCOPY a (id) FROM stdin;\n1\n2\n\\.\n", 2, "COPY ... FROM STDIN needs psql"),
])
def test_psql_only_syntax_is_refused_naming_file_and_line(db, tmp_path, text, line, start):
    schema = db.schema()
    result, proc = db.pg_migrate(path=make_set(tmp_path, {"001_first.sql": GOOD, "002_psql.sql": text}))
    assert proc.returncode != 0
    assert result["msg"].startswith("002_psql.sql line %d: %s" % (line, start)), result["msg"]
    assert db.schema() == schema and set_versions(db) == []
