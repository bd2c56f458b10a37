"""The controller's parse layer (pglast, PostgreSQL's own parser): where statements start and end,
which line an error names, and every file that is refused before anything connects. No database."""

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import checksum
from ansible_collections.teei.db_rollout.plugins.plugin_utils.sqlparse import SqlParseError, parse_script, parse_tree


def statements(text, relpath="001_a.sql"):
    return [(s.index, s.line, s.sql) for s in parse_script(relpath, text.encode("utf-8")).statements]


def refused(text, relpath="001_a.sql"):
    with pytest.raises(SqlParseError) as info:
        parse_script(relpath, text.encode("utf-8") if isinstance(text, str) else text)
    return str(info.value)


def test_semicolons_inside_quotes_identifiers_and_comments_do_not_split():
    text = ("INSERT INTO t VALUES ('a;b', E'c\\';d', \"we;ird\");\n-- a comment; with a semicolon\n"
            "/* block; /* nested; */ still comment; */\nSELECT 1;")
    assert statements(text) == [(1, 1, "INSERT INTO t VALUES ('a;b', E'c\\';d', \"we;ird\")"), (2, 4, "SELECT 1")]


def test_dollar_quoted_bodies_with_tags_are_one_statement():
    text = ("CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\n"
            "DO $x$ BEGIN PERFORM $$;$$; END $x$;")
    assert [s[:2] for s in statements(text)] == [(1, 1), (2, 2)]


def test_begin_atomic_function_body_is_one_statement():
    text = ("CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1 AS \"end\";\n"
            "  SELECT CASE WHEN true THEN 2 END;\nEND;\nSELECT 3;")
    assert [s[:2] for s in statements(text)] == [(1, 1), (2, 6)]


def test_non_ascii_identifiers_parse_and_keep_their_lines():
    assert statements("CREATE TABLE tâble (ñame text, 名前 text);\nSELECT ñame FROM tâble;") == [
        (1, 1, "CREATE TABLE tâble (ñame text, 名前 text)"), (2, 2, "SELECT ñame FROM tâble")]


def test_a_byte_order_mark_is_accepted_and_kept_in_the_checksum():
    data = b"\xef\xbb\xbfCREATE TABLE t (id int);\n"
    script = parse_script("001_a.sql", data)
    assert [s.sql for s in script.statements] == ["CREATE TABLE t (id int)"]
    assert script.checksum == checksum(data) != checksum(data[3:])


def test_statement_lines_point_past_leading_comments():
    assert [s[:2] for s in statements("-- header\n\nCREATE TABLE a (id int);\n\n/* c */\nCREATE TABLE b (id int);\n")] \
        == [(1, 3), (2, 6)]


def test_a_syntax_error_names_file_line_and_postgresqls_message():
    message = refused("SELECT 1;\n\n-- typo below\nSELEC 2;\n", "rollback/001_a.sql")
    assert message == 'rollback/001_a.sql line 4: syntax error at or near "SELEC" (PostgreSQL\'s parser)'


def test_a_syntax_error_after_non_ascii_text_names_the_right_line():
    assert refused("SELECT 'ünïcödé';\nSELECT 'ß' FROM;\n").startswith("001_a.sql line 2: syntax error")


@pytest.mark.parametrize("text, message", [
    ("SELECT 'open", "line 1: unterminated quoted string"),
    ('SELECT "open', "line 1: unterminated quoted identifier"),
    ("SELECT $$open", "line 1: unterminated dollar-quoted string"),
    ("SELECT 1;\n/* open", "line 2: unterminated /* comment"),
])
def test_unterminated_quotes_and_comments_are_errors(text, message):
    assert message in refused(text)


@pytest.mark.parametrize("text, line, command", [
    ("\\set ON_ERROR_STOP on\nSELECT 1;", 1, "\\set"),
    ("SELECT 1;\n\\i other.sql\n", 2, "\\i"),
    ("SELECT 1;\n  \\echo hello\n", 2, "\\echo"),
])
def test_psql_meta_commands_are_refused_naming_the_line(text, line, command):
    assert refused(text).startswith("001_a.sql line %d: %s is a psql meta-command, not SQL" % (line, command))


@pytest.mark.parametrize("text", ["SELECT 1;\nCOPY t (a) FROM stdin;\n1\n2\n\\.\n", "SELECT 1;\nCOPY t FROM STDIN;"])
def test_copy_from_stdin_is_refused_saying_what_to_use_instead(text):
    message = refused(text)
    assert message.startswith("001_a.sql line 2: COPY ... FROM STDIN needs psql")
    assert "INSERT ... VALUES" in message


def test_copy_to_stdout_is_refused():
    assert "COPY ... TO STDOUT" in refused("COPY t TO STDOUT;")


@pytest.mark.parametrize("text, line, what", [
    ("CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);", 2, "COMMIT"),
    ("CREATE TABLE a (id int);\nROLLBACK;\nCREATE TABLE b (id int);", 2, "ROLLBACK"),
    ("CREATE TABLE a (id int);\nEND;", 2, "COMMIT"),
    ("SAVEPOINT s;\nSELECT 1;", 1, "SAVEPOINT"),
    ("SELECT 1;\nRELEASE s;", 2, "RELEASE"),
    ("SELECT 1;\nROLLBACK TO SAVEPOINT s;", 2, "ROLLBACK TO SAVEPOINT"),
    ("SELECT 1;\nPREPARE TRANSACTION 'x';", 2, "PREPARE TRANSACTION"),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;", 1, "SET TRANSACTION"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;", 1, "SET SESSION CHARACTERISTICS"),
    ("SET transaction_read_only = on;", 1, "SET transaction_read_only"),
    ("BEGIN;\nSELECT 1;", 1, "BEGIN"),
    ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;", 1, "START TRANSACTION"),
    ("BEGIN;\nSELECT 1;\nROLLBACK;", 1, "BEGIN"),
    ("BEGIN;\nSELECT 1;\nCOMMIT AND CHAIN;", 1, "BEGIN"),
])
def test_transaction_control_in_a_transactional_script_is_refused(text, line, what):
    message = refused(text, "verify/001_a.sql")
    assert message.startswith("verify/001_a.sql line %d: %s controls the transaction" % (line, what)), message
    assert "-- rollout: no-transaction" in message


@pytest.mark.parametrize("text, what", [
    ("CREATE INDEX CONCURRENTLY i ON t (a);", "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY i;", "DROP INDEX CONCURRENTLY"),
    ("REINDEX (CONCURRENTLY) INDEX i;", "REINDEX CONCURRENTLY"),
    ("VACUUM t;", "VACUUM"),
    ("VACUUM (ANALYZE) t;", "VACUUM"),
])
def test_statements_that_cannot_run_in_a_transaction_need_the_no_transaction_mark(text, what):
    assert what + " cannot run inside a transaction block" in refused(text)


def test_a_whole_file_begin_commit_wrapper_is_dropped_with_a_warning():
    script = parse_script("001_a.sql", b"-- runbook step\nBEGIN;\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n"
                                       b"COMMIT;\n")
    assert [(s.index, s.line, s.sql) for s in script.statements] == [
        (1, 3, "CREATE TABLE a (id int)"), (2, 4, "INSERT INTO a VALUES (1)")]
    assert script.warnings == ["001_a.sql: dropped its BEGIN (line 2) and COMMIT (line 5) wrapper: the engine runs "
                               "the file in its own transaction, with its verification and history row"]


def test_a_no_transaction_script_may_manage_its_own_transactions():
    script = parse_script("001_a.sql", b"-- rollout: no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;\n"
                                       b"CREATE INDEX CONCURRENTLY i ON t (a);\n")
    assert script.no_transaction and len(script.statements) == 4 and script.warnings == []


def test_tables_are_the_relations_the_statements_name_schema_qualified():
    script = parse_script("001_a.sql", (
        "WITH recent AS (SELECT id FROM companies)\nUPDATE app.users SET x = 1 FROM recent;\n"
        "DROP TABLE old_a, archive.old_b;\nCREATE INDEX i ON sessions (id);\nALTER TABLE \"Ñ\".\"Tâble\" ADD c int;\n"
        "TRUNCATE audit_log;\nDO $$ BEGIN PERFORM 1 FROM hidden; END $$;\n").encode("utf-8"))
    assert script.tables() == ["app.users", "archive.old_b", "public.audit_log", "public.companies",
                               "public.old_a", "public.sessions", "Ñ.Tâble"]


def test_a_syntax_error_in_any_file_of_the_set_fails_the_whole_set():
    files = dict(("%03d_m.sql" % i, b"SELECT %d;" % i) for i in range(1, 6))
    files["check/005_m.sql"] = b"SELECT 1;\nSELECT FROM WHERE;\n"
    with pytest.raises(SqlParseError, match=r"^check/005_m.sql line 2: syntax error"):
        parse_tree("s", files)


def test_analyze_alone_runs_in_a_transaction():
    assert len(parse_script("001_a.sql", b"ANALYZE companies;").statements) == 1
