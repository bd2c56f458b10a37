"""The review's reading of statements: which table each touches, with which lock, for how long."""

import pytest

from ansible_collections.teei.db_rollout.plugins.plugin_utils import locklevels as ll
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_parse import (
    ReviewParseError,
    analyse_migration,
)
from ansible_collections.teei.db_rollout.plugins.plugin_utils.sqlparse import parse_script


def analyse(sql, version="001_x"):
    script = parse_script(version + ".sql", sql.encode())
    return analyse_migration(version, script.statements)["statements"]


def touches(sql):
    return [(t["table"], t["lock"], t["effect"]) for s in analyse(sql) for t in s["touches"]]


def test_add_column_with_volatile_default_rewrites_under_access_exclusive():
    [(table, lock, effect)] = touches("ALTER TABLE accounts ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();")
    assert (table, lock, effect) == ("accounts", ll.ACCESS_EXCLUSIVE, ll.REWRITE)


def test_add_column_with_constant_default_is_a_catalog_change():
    assert touches("ALTER TABLE accounts ADD COLUMN active boolean DEFAULT true;") == [
        ("accounts", ll.ACCESS_EXCLUSIVE, ll.BRIEF)]


def test_add_unique_column_scans_to_build_its_index():
    [statement] = analyse("ALTER TABLE companies ADD COLUMN slug varchar(100) UNIQUE, ADD COLUMN x int;")
    [touch] = statement["touches"]
    assert (touch["lock"], touch["effect"]) == (ll.ACCESS_EXCLUSIVE, ll.SCAN)
    assert touch["action"].startswith("ALTER TABLE companies ADD COLUMN slug (UNIQUE")


def test_create_index_takes_share_and_concurrently_share_update_exclusive():
    assert touches("CREATE INDEX i ON t (a);") == [("t", ll.SHARE, ll.SCAN)]
    sql = "-- rollout: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"
    assert touches(sql) == [("t", ll.SHARE_UPDATE_EXCLUSIVE, ll.SCAN)]


def test_alter_column_type_rewrites():
    assert touches("ALTER TABLE users ALTER COLUMN n TYPE bigint;") == [("users", ll.ACCESS_EXCLUSIVE, ll.REWRITE)]


def test_foreign_key_locks_the_referenced_table_share_row_exclusive():
    result = touches("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES customers (id) NOT VALID;")
    assert result == [("orders", ll.SHARE_ROW_EXCLUSIVE, ll.BRIEF), ("customers", ll.SHARE_ROW_EXCLUSIVE, ll.BRIEF)]


def test_validate_constraint_scans_without_blocking_writes():
    [(table, lock, effect)] = touches("ALTER TABLE orders VALIDATE CONSTRAINT fk;")
    assert (lock, effect) == (ll.SHARE_UPDATE_EXCLUSIVE, ll.SCAN)
    assert not ll.blocks_writes(lock)


def test_create_table_is_a_creation_and_locks_what_it_references():
    [statement] = analyse("CREATE TABLE keys (id int PRIMARY KEY, c uuid REFERENCES companies (id));")
    assert statement["creates"] == ["keys"]
    assert [(t["table"], t["lock"]) for t in statement["touches"]] == [("companies", ll.SHARE_ROW_EXCLUSIVE)]


def test_statements_inside_a_do_block_are_read_with_their_own_line():
    sql = "SELECT 1;\nDO $$\nBEGIN\n  IF true THEN\n    ALTER TABLE users ALTER COLUMN r TYPE text USING r::text;\n" \
          "  END IF;\n  EXECUTE 'DROP TABLE x';\nEND\n$$;\n"
    statements = analyse(sql)
    do = statements[1]
    assert do["line"] == 2
    [touch] = do["touches"]
    expected = ("users", ll.ACCESS_EXCLUSIVE, ll.REWRITE, 5)
    assert (touch["table"], touch["lock"], touch["effect"], touch["line"]) == expected
    assert do["notes"] == ["line 7: EXECUTE of dynamic SQL in the DO block: not reviewed"]


def test_update_without_where_writes_every_row_and_reads_are_access_share():
    result = touches("UPDATE users u SET n = c.n FROM companies c WHERE c.id = u.company_id; DELETE FROM logs;")
    assert result == [("users", ll.ROW_EXCLUSIVE, ll.BRIEF), ("companies", ll.ACCESS_SHARE, ll.BRIEF),
                      ("logs", ll.ROW_EXCLUSIVE, ll.SCAN)]


def test_cte_names_are_not_tables():
    result = touches("WITH seed (a) AS (VALUES (1)) INSERT INTO t SELECT a FROM seed;")
    assert result == [("t", ll.ROW_EXCLUSIVE, ll.BRIEF)]


def test_schema_qualified_names_are_kept():
    assert touches("TRUNCATE app.events;") == [("app.events", ll.ACCESS_EXCLUSIVE, ll.BRIEF)]


def test_lock_table_takes_the_named_mode_and_access_exclusive_by_default():
    assert touches("LOCK TABLE a IN SHARE MODE; LOCK TABLE b;") == [("a", ll.SHARE, ll.BRIEF),
                                                                    ("b", ll.ACCESS_EXCLUSIVE, ll.BRIEF)]


def test_a_statement_pglast_rejects_names_file_and_line():
    class Statement(object):
        sql, index, line = "ALTER TABLE", 1, 7
    with pytest.raises(ReviewParseError, match=r"001_x.sql line 7: syntax error"):
        analyse_migration("001_x", [Statement()])


def test_every_alter_table_subcommand_of_the_parser_has_a_lock():
    from pglast.enums.parsenodes import AlterTableType
    internal = {"AT_AddColumnToView", "AT_CookedColumnDefault", "AT_ReAddIndex", "AT_ReAddConstraint",
                "AT_ReAddDomainConstraint", "AT_ReAddComment", "AT_DropOids", "AT_ReAddStatistics"}
    missing = [t.name for t in AlterTableType if t.name not in internal and t.name not in ll.ALTER_TABLE]
    assert missing == []


def test_conflict_table_is_symmetric():
    for mode in ll.MODES:
        for other in ll.MODES:
            assert (other in ll.CONFLICTS[mode]) == (mode in ll.CONFLICTS[other]), (mode, other)
