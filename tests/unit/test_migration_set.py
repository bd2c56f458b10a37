"""The migration file convention: what is a set, and every way a set can be malformed.

The set is read the way the controller reads it (plugin_utils.sqlparse), and
carried to the module the way the action sends it (to_wire/from_wire)."""

import json

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import (
    MigrationSetError,
    checksum,
    from_wire,
)
from ansible_collections.teei.db_rollout.plugins.plugin_utils.sqlparse import load_set, parse_tree as parse_set


def tree(**files):
    return dict((k.replace("__", "/"), v) for k, v in files.items())


GOOD = {
    "001_create.sql": b"CREATE TABLE a (id int);",
    "002_more.sql": b"ALTER TABLE a ADD COLUMN b int;",
    "010_late.sql": b"-- rollout: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON a (b);",
    "rollback/001_create.sql": b"DROP TABLE a;",
    "verify/002_more.sql": b"SELECT b FROM a;",
    "check/002_more.sql": b"SELECT 1;",
    "verify/set.sql": b"SELECT 1;",
}


def test_versions_are_file_names_ordered_by_number():
    mset = parse_set("s", dict(GOOD))
    assert mset.versions == ["001_create", "002_more", "010_late"]
    assert mset.get("001_create").rollback.relpath == "rollback/001_create.sql"
    assert mset.get("002_more").verify is not None and mset.get("002_more").check is not None
    assert mset.verify.relpath == "verify/set.sql"


def test_only_migrations_match_sql_at_the_sets_root():
    with pytest.raises(MigrationSetError, match="verify.sql at the set's root .* move it to verify/set.sql"):
        parse_set("s", dict(GOOD, **{"verify.sql": b"SELECT 1;"}))


def test_numeric_order_not_text_order():
    mset = parse_set("s", {"1000_b.sql": b"SELECT 1;", "999_a.sql": b"SELECT 1;"})
    assert mset.versions == ["999_a", "1000_b"]


def test_checksum_is_sha256_of_file_bytes():
    mset = parse_set("s", dict(GOOD))
    assert mset.get("001_create").checksum == checksum(GOOD["001_create.sql"])
    assert len(mset.get("001_create").checksum) == 64


def test_no_transaction_header_is_read_from_leading_comment_only():
    mset = parse_set("s", dict(GOOD, **{"003_x.sql": b"SELECT 1;\n-- rollout: no-transaction\n"}))
    assert mset.get("010_late").no_transaction
    assert not mset.get("003_x").no_transaction
    assert not mset.get("001_create").no_transaction


def test_the_set_crosses_to_the_module_as_json_and_comes_back_the_same():
    mset = parse_set("s", dict(GOOD))
    again = from_wire("s", json.loads(json.dumps(mset.to_wire())))
    assert again.versions == mset.versions
    for before, after in zip(mset.scripts(), again.scripts()):
        assert (after.relpath, after.checksum, after.no_transaction) == \
            (before.relpath, before.checksum, before.no_transaction)
        assert [(s.index, s.line, s.sql) for s in after.statements] == \
            [(s.index, s.line, s.sql) for s in before.statements]


def test_the_module_refuses_files_the_controller_did_not_parse():
    with pytest.raises(MigrationSetError, match="001_a.sql: not a parsed script"):
        from_wire("s", {"001_a.sql": "SELECT 1;"})


@pytest.mark.parametrize("files, message", [
    ({"001_a.sql": b"SELECT 1;", "001_b.sql": b"SELECT 1;"}, "duplicate version number 001"),
    ({"001_a.sql": b"SELECT 1;", "1_b.sql": b"SELECT 1;"}, "1_b.sql is not a migration file name"),
    ({"01_a.sql": b"SELECT 1;"}, "01_a.sql is not a migration file name"),
    ({"001_A.sql": b"SELECT 1;"}, "001_A.sql is not a migration file name"),
    ({"001_a.sql": b"SELECT 1;", "notes.txt": b"hello"}, "notes.txt is not a migration file name"),
    ({"001_a.sql": b"SELECT 1;", "rollback/002_b.sql": b"SELECT 1;"}, "rollback/002_b.sql has no migration"),
    ({"001_a.sql": b"SELECT 1;", "verify/002_b.sql": b"SELECT 1;"}, "verify/002_b.sql has no migration"),
    ({"001_a.sql": b""}, "001_a.sql is empty"),
    ({"001_a.sql": b"  \n"}, "001_a.sql is empty"),
    ({"001_a.sql": b"-- only a comment\n"}, "001_a.sql holds no SQL statement"),
    ({"001_a.sql": b"SELECT '\xff\xfe';"}, "001_a.sql is not valid UTF-8"),
    ({"001_a.sql": b"SELECT 'open;"}, "001_a.sql line 1: unterminated quoted string"),
    ({"001_a.sql": b"SELECT 1;", "extra/": None}, "extra/ is not part of the migration file convention"),
    ({"001_a.sql": b"SELECT 1;", "rollback/deep/": None}, "rollback/deep/ is not part"),
])
def test_malformed_sets_fail_naming_the_file(files, message):
    with pytest.raises(MigrationSetError) as info:
        parse_set("s", files)
    assert message in str(info.value)


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(MigrationSetError, match="does not exist"):
        load_set(str(tmp_path / "nope"))


def test_load_set_reads_a_directory(tmp_path):
    (tmp_path / "rollback").mkdir()
    (tmp_path / "001_a.sql").write_bytes(b"SELECT 1;")
    (tmp_path / "rollback" / "001_a.sql").write_bytes(b"SELECT 2;")
    mset = load_set(str(tmp_path))
    assert mset.name == tmp_path.name
    assert mset.get("001_a").rollback.statements[0].sql == "SELECT 2"
