"""The harness gives every test a real PostgreSQL 15 and removes it afterwards, pass or fail."""

import os
import subprocess
import sys
import textwrap

import psycopg2

import pgcluster
from conftest import ROOT


def test_harness_gives_a_real_server_that_takes_a_table(pg_cluster):
    conn = psycopg2.connect(pg_cluster.dsn("postgres"))
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SHOW server_version_num")
    assert cur.fetchone()[0].startswith("15")
    cur.execute("CREATE TABLE harness_probe (id int PRIMARY KEY, note text)")
    cur.execute("INSERT INTO harness_probe VALUES (1, 'real')")
    cur.execute("SELECT note FROM harness_probe")
    assert cur.fetchone()[0] == "real"
    cur.execute("DROP TABLE harness_probe")
    conn.close()


def test_harness_loads_the_fixtures_at_a_chosen_scale():
    with pgcluster.Cluster.start() as cluster:
        cluster.load_fixtures("scaled", companies=7, users_per_company=3)
        assert cluster.psql("SELECT count(*) FROM companies", dbname="scaled") == "7"
        assert cluster.psql("SELECT count(*) FROM users", dbname="scaled") == "21"


def test_password_cluster_refuses_a_wrong_password(pg_password_cluster):
    try:
        psycopg2.connect(pg_password_cluster.dsn("postgres", password="wrong"))
    except psycopg2.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("a wrong password was accepted")
    psycopg2.connect(pg_password_cluster.dsn("postgres")).close()


def test_cluster_is_removed_after_the_fixture_also_when_the_test_fails(tmp_path):
    record = tmp_path / "datadir.txt"
    inner = tmp_path / "test_inner.py"
    inner.write_text(textwrap.dedent('''
        import os

        def test_fails_while_using_a_cluster(pg_cluster):
            with open(%r, "w") as handle:
                handle.write(pg_cluster.datadir)
            assert os.path.isdir(pg_cluster.datadir)
            assert False, "this test fails on purpose"
    ''' % str(record)))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(inner)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "this test fails on purpose" in proc.stdout
    datadir = record.read_text()
    assert datadir and not os.path.exists(datadir)
    assert not os.path.exists(os.path.dirname(datadir))
