"""Run options are validated before anything connects."""

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.executor import RunOptions, duration_ms
from ansible_collections.teei.db_rollout.plugins.module_utils.history import HistoryTable, HistoryTableError


@pytest.mark.parametrize("text, ms", [("2s", 2000), ("500ms", 500), ("1min", 60000), ("0", 0), ("250", 250),
                                      ("1.5s", 1500), (" 3 s ", 3000), ("1h", 3600000)])
def test_durations_use_postgresql_syntax(text, ms):
    assert duration_ms(text) == ms


@pytest.mark.parametrize("option", ["lock_timeout", "statement_timeout", "lock_retry_delay", "run_lock_timeout"])
def test_a_malformed_duration_names_its_option(option):
    with pytest.raises(ValueError, match="%s '5 seconds' is not a PostgreSQL duration" % option):
        RunOptions(**{option: "5 seconds"})


def test_negative_lock_retries_are_refused():
    with pytest.raises(ValueError, match="lock_retries"):
        RunOptions(lock_retries=-1)


@pytest.mark.parametrize("name, schema, table", [("schema_migrations", "public", "schema_migrations"),
                                                 ("rollout.history", "rollout", "history")])
def test_history_table_names(name, schema, table):
    history = HistoryTable(name)
    assert (history.schema, history.table) == (schema, table)
    assert history.sql_name == '"%s"."%s"' % (schema, table)


@pytest.mark.parametrize("name", ["a.b.c", "x; DROP TABLE y", "", "1abc"])
def test_history_table_refuses_anything_but_a_plain_name(name):
    with pytest.raises(HistoryTableError):
        HistoryTable(name)


class _OldServer(object):
    """A connection to a PostgreSQL 13 server that records whatever it is asked to run."""
    server_version = 130011

    def __init__(self):
        self.executed = []
        self.closed = False
        self.autocommit = False

    def cursor(self):
        raise AssertionError("nothing may run on a server the engine does not support")

    def close(self):
        self.closed = True


class _Set(object):
    name = "phase_t"


def test_a_server_older_than_14_is_refused_before_anything_runs():
    from ansible_collections.teei.db_rollout.plugins.module_utils.executor import MigrationError, Runner
    conn = _OldServer()
    with pytest.raises(MigrationError) as caught:
        Runner(lambda: conn, _Set(), HistoryTable(), RunOptions()).run()
    assert "PostgreSQL 13.11 is too old for pg_migrate: it needs 14 or newer" in caught.value.msg
    assert caught.value.result["server_version"] == "13.11" and caught.value.result["applied"] == []
    assert conn.closed
