"""The migration file convention: what is a set, and every way a set can be malformed."""

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import (
    MigrationSetError,
    checksum,
    load_set,
    parse_set,
)


def tree(**files):
    return dict((k.replace("__", "/"), v) for k, v in files.items())


GOOD = {
    "001_create.sql": b"CREATE TABLE a (id int);",
    "002_more.sql": b"ALTER TABLE a ADD COLUMN b int;",
    "010_late.sql": b"-- rollout: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON a (b);",
    "rollback/001_create.sql": b"DROP TABLE a;",
    "verify/002_more.sql": b"SELECT b FROM a;",
    "check/002_more.sql": b"SELECT 1;",
    "verify.sql": b"SELECT 1;",
}


def test_versions_are_file_names_ordered_by_number():
    mset = parse_set("s", dict(GOOD))
    assert mset.versions == ["001_create", "002_more", "010_late"]
    assert mset.get("001_create").rollback.relpath == "rollback/001_create.sql"
    assert mset.get("002_more").verify is not None and mset.get("002_more").check is not None
    assert mset.verify.relpath == "verify.sql"


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
    ({"001_a.sql": b"SELECT 'open;"}, "001_a.sql: unterminated quoted string"),
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
