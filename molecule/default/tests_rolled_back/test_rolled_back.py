"""What the default scenario guarantees after its side effect, the rollback
playbook down to 001: 002 is undone and forgotten, 001 and everything older
stay. Run by `verify tests_rolled_back` in molecule.yml's test_sequence."""

from testinfra_pg import DATABASES, EARLIER_PHASES

testinfra_hosts = DATABASES

SET_NAME = "molecule_smoke"


def test_002_rollback_dropped_the_rollout_percent_column_and_its_check(db):
    assert db.rows("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                   " AND table_name = 'feature_flags' AND column_name = 'rollout_percent'") == []
    assert db.value("SELECT count(*) FROM pg_constraint"
                    " WHERE conname = 'feature_flags_rollout_percent_range'") == "0"


def test_001_table_stays(db):
    assert db.value("SELECT to_regclass('public.feature_flags') IS NOT NULL") == "t"


def test_only_001_is_left_in_the_history_of_the_set(db):
    assert db.rows("SELECT version, checksum IS NOT NULL FROM public.schema_migrations"
                   " WHERE migration_set = '%s' ORDER BY version" % SET_NAME) == [
        ("001_create_feature_flags", "t")]


def test_earlier_phase_rows_are_untouched(db):
    assert db.earlier_phase_rows() == [(version, applied_at, "0") for version, applied_at in EARLIER_PHASES]
