"""The splitter decides where a statement ends, so it decides what runs and which line an error names."""

from ansible_collections.teei.db_rollout.plugins.module_utils.sqlsplit import SqlSplitError, split_sql

import pytest


def sqls(text):
    return [s.sql for s in split_sql(text)]


def test_semicolons_inside_quotes_identifiers_and_comments_do_not_split():
    text = """INSERT INTO t VALUES ('a;b', E'c\\';d', "we;ird");
-- a comment; with a semicolon
/* block; /* nested; */ still comment; */
SELECT 1;"""
    assert sqls(text) == ["INSERT INTO t VALUES ('a;b', E'c\\';d', \"we;ird\")",
                          "SELECT 1"]


def test_dollar_quoted_bodies_are_one_statement():
    text = """CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;
DO $$ BEGIN PERFORM 1; END $$;"""
    assert len(split_sql(text)) == 2
    assert split_sql(text)[1].sql.startswith("DO $$")


def test_begin_atomic_function_body_is_one_statement():
    text = """CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;
SELECT 3;"""
    assert len(split_sql(text)) == 2


def test_statement_lines_point_past_leading_comments():
    text = "-- header\n\nCREATE TABLE a (id int);\n\n/* c */\nCREATE TABLE b (id int);\n"
    statements = split_sql(text)
    assert [(s.index, s.line) for s in statements] == [(1, 3), (2, 6)]


def test_comment_only_text_has_no_statements():
    assert split_sql("-- nothing\n/* here */\n;;\n") == []


def test_positional_parameters_are_not_dollar_quotes():
    assert sqls("PREPARE p AS SELECT $1; SELECT 'x'") == ["PREPARE p AS SELECT $1", "SELECT 'x'"]


@pytest.mark.parametrize("text", ["SELECT 'open", 'SELECT "open', "SELECT $$open", "/* open"])
def test_unterminated_quotes_are_errors(text):
    with pytest.raises(SqlSplitError):
        split_sql(text)
