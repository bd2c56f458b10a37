"""What the default scenario guarantees once converge and the idempotence run
are done: the set is applied, recorded, and nothing else changed. Each test
reads the database with psql on the host under test."""

import hashlib
import os

from testinfra_pg import DATABASES, EARLIER_PHASES

testinfra_hosts = DATABASES

SET_NAME = "molecule_smoke"
SET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "files", SET_NAME)
VERSIONS = ["001_create_feature_flags", "002_add_feature_flags_rollout_percent"]


def test_001_created_the_feature_flags_table(db):
    assert db.rows("SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                   " WHERE table_schema = 'public' AND table_name = 'feature_flags'"
                   " AND column_name <> 'rollout_percent' ORDER BY ordinal_position") == [
        ("id", "bigint", "NO"),
        ("company_id", "uuid", "NO"),
        ("name", "character varying", "NO"),
        ("enabled", "boolean", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
    ]


def test_002_added_the_rollout_percent_column_with_its_check(db):
    assert db.rows("SELECT data_type, is_nullable, column_default FROM information_schema.columns"
                   " WHERE table_schema = 'public' AND table_name = 'feature_flags'"
                   " AND column_name = 'rollout_percent'") == [("smallint", "NO", "0")]
    assert db.value("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conname = 'feature_flags_rollout_percent_range'") == \
        "CHECK (((rollout_percent >= 0) AND (rollout_percent <= 100)))"


def test_each_migration_of_the_set_has_its_history_row(db):
    assert db.rows("SELECT version, checksum IS NOT NULL, migration_set, engine"
                   " FROM public.schema_migrations WHERE migration_set IS NOT NULL ORDER BY version") == [
        (version, "t", SET_NAME, "teei.db_rollout.pg_migrate") for version in VERSIONS]


def test_history_checksums_are_the_sha256_of_the_migration_files(db):
    recorded = dict(db.rows("SELECT version, checksum FROM public.schema_migrations"
                            " WHERE migration_set = '%s'" % SET_NAME))
    for version in VERSIONS:
        with open(os.path.join(SET_DIR, version + ".sql"), "rb") as handle:
            assert recorded[version] == hashlib.sha256(handle.read()).hexdigest(), version


def test_converge_applied_the_set_in_one_run(db):
    assert db.value("SELECT count(DISTINCT run_id) FROM public.schema_migrations"
                    " WHERE migration_set = '%s'" % SET_NAME) == "1"


def test_earlier_phase_rows_are_untouched(db):
    assert db.earlier_phase_rows() == [(version, applied_at, "0") for version, applied_at in EARLIER_PHASES]


def test_history_holds_only_the_earlier_phases_and_the_set(db):
    assert [row[0] for row in db.rows("SELECT version FROM public.schema_migrations ORDER BY version")] == \
        sorted([version for version, _ in EARLIER_PHASES] + VERSIONS)
