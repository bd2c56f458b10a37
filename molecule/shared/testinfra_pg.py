"""Testinfra helpers shared by the molecule scenarios: read the database behind a
host of the `databases` group with psql, run on that host.

The conftest.py of each of a scenario's test folders puts this folder on
sys.path and imports the ``db`` fixture; a test module sets
``testinfra_hosts = DATABASES`` and asks for ``db``::

    from testinfra_pg import DATABASES

    testinfra_hosts = DATABASES

    def test_table_exists(db):
        assert db.value("SELECT to_regclass('public.t') IS NOT NULL") == "t"

Where the database listens comes from molecule's instance config, written by
shared/create.yml (db_host, db_port, db_name, db_user, pg_bindir): the same
record the scenario's inventory gives the rollout.
"""

import csv
import io
import os

import pytest
import yaml

# The inventory group the scenarios' databases are in (molecule.yml platforms).
DATABASES = ["databases"]

# The history rows the fixtures hold for the phases before Phase C
# (pre_phase_c_schema.sql of the fixtures the harness loads), applied_at in UTC.
EARLIER_PHASES = [
    ("phase_a_001_initial_schema", "2025-06-02 09:14:00"),
    ("phase_a_002_users_email_unique", "2025-06-02 09:14:05"),
    ("phase_b_001_sessions", "2025-09-10 21:03:00"),
]
# The columns the engine adds to the history table and fills on the rows it writes (README).
ENGINE_COLUMNS = ["checksum", "execution_ms", "applied_by", "run_id", "change_ticket", "migration_set", "engine"]


class Database(object):
    """One database, queried with psql on the testinfra host."""

    def __init__(self, host, instance):
        self.host = host
        self.instance = instance
        self.conninfo = "host=%s port=%s dbname=%s user=%s" % (
            instance["db_host"], instance["db_port"], instance["db_name"], instance["db_user"])
        self.psql = os.path.join(instance["pg_bindir"], "psql")

    @classmethod
    def of(cls, host):
        """The database of a testinfra host, found in molecule's instance config."""
        name = host.ansible.get_variables()["inventory_hostname"]
        with open(os.environ["MOLECULE_INSTANCE_CONFIG"]) as handle:
            instances = yaml.safe_load(handle) or []
        for instance in instances:
            if instance["instance"] == name:
                return cls(host, instance)
        raise AssertionError("%s is not in molecule's instance config %s: was the scenario created?"
                             % (name, os.environ["MOLECULE_INSTANCE_CONFIG"]))

    def rows(self, sql):
        """The rows of one query, as tuples of strings (psql's CSV; NULL reads as '')."""
        result = self.host.run("%s -X -q --csv -t -v ON_ERROR_STOP=1 -d %s -c %s",
                               self.psql, self.conninfo, sql)
        assert result.rc == 0, "psql failed (rc %d) on %s:\n%s" % (result.rc, sql, result.stderr)
        return [tuple(row) for row in csv.reader(io.StringIO(result.stdout))]

    def earlier_phase_rows(self, history_table="public.schema_migrations"):
        """The history rows the engine did not write: (version, applied_at in UTC, engine columns set)."""
        return self.rows(
            "SELECT version, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
            " %d - num_nulls(%s) FROM %s WHERE migration_set IS NULL ORDER BY version"
            % (len(ENGINE_COLUMNS), ", ".join(ENGINE_COLUMNS), history_table))

    def value(self, sql):
        """The single value a query returns."""
        rows = self.rows(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, "expected one value from %s, got %r" % (sql, rows)
        return rows[0][0]


@pytest.fixture(scope="module")
def db(host):
    """The database behind the testinfra host under test."""
    return Database.of(host)
