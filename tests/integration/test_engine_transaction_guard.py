"""The executor's second line of defence, below the parser: a statement that ends the engine's
transaction fails the run, and no history row is written for the half-run file.

These tests drive the executor directly on a real connection with scripts the controller's parser
would have refused, to prove the check holds on its own."""

import psycopg2
import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.executor import MigrationError, RunOptions, Runner
from ansible_collections.teei.db_rollout.plugins.module_utils.history import HistoryTable
from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import (
    Migration,
    MigrationSet,
    Script,
    Statement,
)


def script(relpath, *sqls):
    return Script(relpath, "0" * 64, [Statement(sql, i, i) for i, sql in enumerate(sqls, 1)])


@pytest.mark.parametrize("control", ["COMMIT", "ROLLBACK"])
def test_a_statement_that_ends_the_transaction_fails_the_run_and_writes_no_history_row(db, control):
    first = Migration(script("001_half.sql", "CREATE TABLE first_half (id int)", control,
                             "CREATE TABLE second_half (id int)"), 1, "half")
    mset = MigrationSet("guard", [first])

    def connect():
        return psycopg2.connect(db.cluster.dsn(db.name))

    with pytest.raises(MigrationError) as info:
        Runner(connect, mset, HistoryTable(), RunOptions(run_id="guard-run")).run()
    assert "001_half.sql statement 2 (line 2) ended the transaction the engine ran it in" in info.value.msg
    assert "no history row was written" in info.value.msg
    assert db.psql("SELECT to_regclass('public.second_half') IS NULL") == "t"
    assert db.psql("SELECT count(*) FROM schema_migrations WHERE migration_set = 'guard'") == "0"
    # COMMIT kept the first half (the message says to check by hand); ROLLBACK threw it away.
    kept = db.psql("SELECT to_regclass('public.first_half') IS NOT NULL")
    assert kept == ("t" if control == "COMMIT" else "f")
