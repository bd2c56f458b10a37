"""The maintenance role through playbooks/maintenance.yml (real ansible-playbook) against a real
PostgreSQL 15 and real PgBouncers, connecting as the fixture's application role cockpit_app, and
looking at the database and the PgBouncers afterwards."""

import os
import shutil
import tempfile
import threading
import uuid

import psycopg2
import pytest

import pgbouncer
from _maintenance import (APP_PASSWORD, APP_ROLE, access_state, connect_as, grant_app_connect, kill_play, play,
                          record_exists, result_of, start_play, wait_for, write_inventory)
from conftest import _drop_db, _fresh_db

DENIED = "permission denied for database"


@pytest.fixture
def owner(db):
    """A non-superuser owner of the database, as the runbook's teei_admin, allowed to end sessions."""
    name = "owner_" + uuid.uuid4().hex[:8]
    db.cluster.psql("CREATE ROLE %s LOGIN; GRANT pg_signal_backend TO %s" % (name, name))
    db.cluster.psql('ALTER DATABASE "%s" OWNER TO %s' % (db.name, name))
    yield name
    db.cluster.psql('ALTER DATABASE "%s" OWNER TO postgres' % db.name)
    db.cluster.psql("DROP OWNED BY %s; DROP ROLE %s" % (name, name))


@pytest.fixture
def other_db(pg_cluster):
    database = _fresh_db(pg_cluster)
    yield database
    _drop_db(database)


def app_connect(db, port=None, dbname=None):
    return connect_as(db.cluster, dbname or db.name, APP_ROLE, APP_PASSWORD, port=port)


def assert_app_reads_and_writes(conn):
    cur = conn.cursor()
    cur.execute("INSERT INTO companies (name) VALUES ('maintenance check') RETURNING id")
    new_id = cur.fetchone()[0]
    cur.execute("UPDATE companies SET name = 'maintenance checked' WHERE id = %s", (new_id,))
    cur.execute("SELECT name FROM companies WHERE id = %s", (new_id,))
    assert cur.fetchone()[0] == "maintenance checked"
    cur.execute("DELETE FROM companies WHERE id = %s", (new_id,))
    assert cur.rowcount == 1


# ------------------------------------------------------------------ method connections

def test_on_keeps_the_app_out_of_this_database_only_and_off_restores_access_exactly(db, other_db, owner, tmp_path):
    flag = tmp_path / "maintenance.flag"
    inventory = write_inventory(tmp_path / "inv.json", db, app_hosts=["web1"], db_user=owner,
                                maintenance_flag_file=True, maintenance_flag_path=str(flag))
    grant_app_connect(db)
    # A monitoring role that connects through PUBLIC's default CONNECT and holds TEMP after the
    # application's item: it keeps connecting, and off must put the items back in this order.
    monitor = "monitor_" + uuid.uuid4().hex[:8]
    db.cluster.psql('CREATE ROLE %s LOGIN; GRANT TEMPORARY ON DATABASE "%s" TO %s' % (monitor, db.name, monitor))
    before, other_before = access_state(db), access_state(other_db)
    assert before.index(APP_ROLE + "=c/" + owner) < before.index(monitor + "=T/" + owner)
    session, error = app_connect(db)
    assert error is None

    result, proc = play(inventory, "on", maintenance_grace_period=1)
    assert proc.returncode == 0, proc.stdout[-3000:]

    conn, error = app_connect(db)
    assert conn is None and DENIED in error and db.name in error
    with pytest.raises(psycopg2.Error):
        session.cursor().execute("SELECT 1")
    assert result["sessions_terminated"] == 1 and result["sessions_waited"] == 0
    assert (result["method"], result["state"], result["changed"], result["failed"]) == ("connections", "on", True, False)
    assert result["enabled_at"].endswith("Z") and result["disabled_at"] is None
    assert result["granted"] == [monitor]
    for user in (owner, "postgres", monitor):
        conn, error = connect_as(db.cluster, db.name, user)
        assert error is None, error
        conn.close()
    conn, error = app_connect(db, dbname=other_db.name)
    assert error is None, error
    conn.close()
    assert access_state(other_db) == other_before
    assert flag.read_text().startswith("The application is down for maintenance")

    result, proc = play(inventory, "off")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert access_state(db) == before
    assert not record_exists(db)
    assert not flag.exists()
    assert (result["state"], result["changed"]) == ("off", True)
    assert result["enabled_at"] and result["disabled_at"].endswith("Z")
    conn, error = app_connect(db)
    assert error is None, error
    assert_app_reads_and_writes(conn)
    conn.close()

    result, proc = play(inventory, "off")
    assert proc.returncode == 0 and result["changed"] is False
    assert "nothing recorded" in result["msg"]
    assert access_state(db) == before
    db.cluster.psql("DROP OWNED BY %s; DROP ROLE %s" % (monitor, monitor))


def test_check_mode_changes_nothing_and_on_twice_keeps_the_first_record(db, tmp_path):
    """On a database whose ACL is PostgreSQL's default (NULL): off restores the same privileges
    written out (no SQL statement brings NULL back), so the effective ACL is compared. It connects
    through the cluster's unix socket (db_unix_socket)."""
    inventory = write_inventory(tmp_path / "inv.json", db, db_unix_socket=db.cluster.socketdir)
    before = access_state(db)
    assert before.startswith("NULL ")

    result, proc = play(inventory, "on", check=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["changed"] is True and "would be turned on" in result["msg"]
    assert access_state(db) == before and not record_exists(db)
    conn, error = app_connect(db)
    assert error is None
    conn.close()

    for expected_changed in (True, False):
        result, proc = play(inventory, "on", maintenance_grace_period=0)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert result["changed"] is expected_changed
    assert "already on" in result["msg"]
    during = access_state(db)
    assert during != before

    result, proc = play(inventory, "off", check=True)
    assert proc.returncode == 0 and result["changed"] is True and "would be turned off" in result["msg"]
    assert access_state(db) == during and record_exists(db)

    status, proc = play(inventory, "status")
    assert proc.returncode == 0 and status["state"] == "on" and status["changed"] is False

    result, proc = play(inventory, "off")
    assert proc.returncode == 0 and result["changed"] is True
    assert access_state(db, effective=True) == access_state(db, effective=False)
    assert access_state(db, effective=True) == before.replace("NULL", "{=Tc/postgres,postgres=CTc/postgres}")
    assert "PostgreSQL's default (NULL)" in proc.stdout


def test_a_session_that_ends_within_the_grace_period_is_waited_for_not_terminated(db, tmp_path):
    inventory = write_inventory(tmp_path / "inv.json", db)
    session, error = app_connect(db)
    assert error is None
    run = start_play(inventory, "on", maintenance_grace_period=120)
    try:
        wait_for(lambda: app_connect(db)[1] is not None, "cockpit_app to be refused")
        session.close()
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            kill_play(run)
    result = result_of(out)
    assert run.returncode == 0, out[-3000:]
    assert (result["sessions_waited"], result["sessions_terminated"]) == (1, 0)
    play(inventory, "off")


def test_a_run_killed_during_on_is_recovered_by_the_maintenance_playbook(db, tmp_path):
    inventory = write_inventory(tmp_path / "inv.json", db)
    grant_app_connect(db)
    before = access_state(db)
    session, error = app_connect(db)
    assert error is None
    run = start_play(inventory, "on", maintenance_grace_period=600)
    try:
        wait_for(lambda: record_exists(db) and app_connect(db)[1] is not None, "maintenance to be on")
    finally:
        kill_play(run)
    assert app_connect(db)[1] is not None

    result, proc = play(inventory, "off")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result["changed"] is True
    assert access_state(db) == before
    conn, error = app_connect(db)
    assert error is None, error
    assert_app_reads_and_writes(conn)
    conn.close()
    session.close()


@pytest.mark.parametrize("extra, message", [
    ({"maintenance_app_roles": ["no_such_app"]}, "app_roles: role no_such_app does not exist"),
    ({"maintenance_app_roles": ["postgres"]}, "app_roles: postgres is a superuser"),
    ({"maintenance_login_db": "no_such_db"}, "unable to connect to database no_such_db"),
    ({"maintenance_grace_period": "soon"}, "maintenance_grace_period"),
])
def test_bad_input_is_refused_with_one_clear_error_and_nothing_changes(db, tmp_path, extra, message):
    inventory = write_inventory(tmp_path / "inv.json", db)
    grant_app_connect(db)
    before = access_state(db)
    result, proc = play(inventory, "on", **extra)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert access_state(db) == before and not record_exists(db)
    if result is not None:
        assert result["failed"] is True and message in result["msg"]


def test_a_user_who_does_not_own_the_database_is_refused(db, tmp_path):
    name = "stranger_" + uuid.uuid4().hex[:8]
    db.cluster.psql("CREATE ROLE %s LOGIN" % name)
    try:
        inventory = write_inventory(tmp_path / "inv.json", db, db_user=name)
        before = access_state(db)
        result, proc = play(inventory, "on")
        assert proc.returncode != 0
        assert "user %s may not change who connects to database %s" % (name, db.name) in result["msg"]
        assert access_state(db) == before and not record_exists(db)
    finally:
        db.cluster.psql("DROP ROLE %s" % name)


# ------------------------------------------------------------------ method pgbouncer

@pytest.fixture
def bouncer(db):
    with pgbouncer.PgBouncer.start(db.cluster, [db.name], users={APP_ROLE: APP_PASSWORD}) as running:
        yield running


def bouncer_vars(*bouncers, **extra):
    values = dict(maintenance_method="pgbouncer",
                  maintenance_pgbouncers=[{"host": b.host, "port": b.port} for b in bouncers],
                  maintenance_pgbouncer_admin_user=bouncers[0].admin_user,
                  maintenance_pgbouncer_admin_password=bouncers[0].admin_password)
    values.update(extra)
    return values


def paused(bouncer, db):
    row = bouncer.database(db.name)
    return (row["paused"], row["disabled"])


class LoopingClient(threading.Thread):
    """The application: one query after another through PgBouncer, recording any error."""

    def __init__(self, bouncer, db):
        super(LoopingClient, self).__init__(daemon=True)
        self.conn = psycopg2.connect(bouncer.dsn(db.name, APP_ROLE, APP_PASSWORD))
        self.conn.autocommit = True
        self.queries = 0
        self.errors = []
        self.stopping = threading.Event()

    def run(self):
        cur = self.conn.cursor()
        while not self.stopping.is_set():
            try:
                cur.execute("SELECT count(*) FROM companies")
                cur.fetchone()
                self.queries += 1
            except psycopg2.Error as exc:
                self.errors.append(str(exc))
                return

    def stop(self):
        self.stopping.set()
        self.join(60)
        self.conn.close()


def test_a_client_looping_through_pgbouncer_waits_through_the_window_and_sees_no_error(db, bouncer, tmp_path):
    inventory = write_inventory(tmp_path / "inv.json", db, **bouncer_vars(bouncer))
    client = LoopingClient(bouncer, db)
    client.start()
    try:
        wait_for(lambda: client.queries > 0, "the client's first queries")
        result, proc = play(inventory, "on")
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert paused(bouncer, db) == (1, 0)
        assert (result["method"], result["state"], result["changed"]) == ("pgbouncer", "on", True)
        assert result["enabled_at"].endswith("Z") and result["disabled_at"] is None
        assert [(p["name"], p["action"], p["paused"]) for p in result["pgbouncers"]] == [
            ("%s:%d" % (bouncer.host, bouncer.port), "paused", True)]
        assert db.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'" % APP_ROLE) == "0"
        db.psql("ALTER TABLE companies ADD COLUMN maintenance_probe int")
        held = client.queries
        assert client.queries == held and not client.errors

        result, proc = play(inventory, "off")
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert result["changed"] is True and paused(bouncer, db) == (0, 0)
        assert result["disabled_at"].endswith("Z")
        wait_for(lambda: client.queries > held + 3 or client.errors, "the client's queries to go on")
    finally:
        client.stop()
    assert client.errors == []
    conn, error = app_connect(db, port=bouncer.port)
    assert error is None, error
    conn.cursor().execute("SELECT maintenance_probe FROM companies LIMIT 1")
    conn.close()
    assert bouncer.admin_password not in proc.stdout + proc.stderr


def test_an_idle_in_transaction_client_makes_on_fail_within_its_timeout_with_nothing_paused(db, bouncer, tmp_path):
    inventory = write_inventory(tmp_path / "inv.json", db, **bouncer_vars(bouncer, maintenance_pause_timeout=2))
    idle = psycopg2.connect(bouncer.dsn(db.name, APP_ROLE, APP_PASSWORD))
    idle.cursor().execute("SELECT 1")
    try:
        result, proc = play(inventory, "on")
        assert proc.returncode != 0
        assert "did not finish within pause_timeout=2s" in result["msg"]
        assert "idle in transaction" in result["msg"] and "nothing is paused" in result["msg"]
        assert result["failed"] is True
        assert paused(bouncer, db) == (0, 0)
        idle.commit()
        cur = idle.cursor()
        cur.execute("SELECT count(*) FROM companies")
        assert cur.fetchone()[0] > 0
    finally:
        idle.close()


def test_two_pgbouncers_where_the_second_cannot_pause_leave_neither_paused(db, bouncer, tmp_path):
    with pgbouncer.PgBouncer.start(db.cluster, [db.name], users={APP_ROLE: APP_PASSWORD},
                                   admin_password=bouncer.admin_password) as second:
        inventory = write_inventory(tmp_path / "inv.json", db,
                                    **bouncer_vars(bouncer, second, maintenance_pause_timeout=2))
        idle = psycopg2.connect(second.dsn(db.name, APP_ROLE, APP_PASSWORD))
        idle.cursor().execute("SELECT 1")
        try:
            result, proc = play(inventory, "on")
        finally:
            idle.close()
        assert proc.returncode != 0
        assert "PgBouncer %s:%d: PAUSE" % (second.host, second.port) in result["msg"]
        assert "resumed %s:%d, %s:%d" % (bouncer.host, bouncer.port, second.host, second.port) in result["msg"]
        assert paused(bouncer, db) == (0, 0) and paused(second, db) == (0, 0)


def test_a_pgbouncer_refusing_the_admin_login_stops_on_before_anything_is_paused(db, bouncer, tmp_path):
    with pgbouncer.PgBouncer.start(db.cluster, [db.name], users={APP_ROLE: APP_PASSWORD}) as other_password:
        inventory = write_inventory(tmp_path / "inv.json", db, **bouncer_vars(bouncer, other_password))
        result, proc = play(inventory, "on")
        assert proc.returncode != 0
        assert "PgBouncer %s:%d: cannot reach its admin console" % (other_password.host, other_password.port) \
            in result["msg"]
        assert paused(bouncer, db) == (0, 0) and paused(other_password, db) == (0, 0)
    assert bouncer.admin_password not in proc.stdout + proc.stderr


def test_pgbouncer_check_mode_double_on_double_off_and_recovery_after_a_killed_run(db, bouncer, tmp_path):
    inventory = write_inventory(tmp_path / "inv.json", db, **bouncer_vars(bouncer, maintenance_pause_timeout=600))
    result, proc = play(inventory, "on", check=True)
    assert proc.returncode == 0 and result["changed"] is True and paused(bouncer, db) == (0, 0)
    for expected in (True, False):
        result, proc = play(inventory, "on")
        assert proc.returncode == 0 and result["changed"] is expected and paused(bouncer, db) == (1, 0)
    result, proc = play(inventory, "off", check=True)
    assert proc.returncode == 0 and result["changed"] is True and paused(bouncer, db) == (1, 0)
    for expected in (True, False):
        result, proc = play(inventory, "off")
        assert proc.returncode == 0 and result["changed"] is expected and paused(bouncer, db) == (0, 0)

    idle = psycopg2.connect(bouncer.dsn(db.name, APP_ROLE, APP_PASSWORD))
    idle.cursor().execute("SELECT 1")
    run = start_play(inventory, "on")
    try:
        wait_for(lambda: paused(bouncer, db)[0] == 1, "PgBouncer to be pausing")
    finally:
        kill_play(run)
    idle.rollback()
    idle.close()
    assert paused(bouncer, db) == (1, 0)
    result, proc = play(inventory, "off")
    assert proc.returncode == 0 and result["changed"] is True and paused(bouncer, db) == (0, 0)
    conn, error = app_connect(db, port=bouncer.port)
    assert error is None, error
    assert_app_reads_and_writes(conn)
    conn.close()


def test_disable_mode_drops_and_refuses_clients_until_off(db, bouncer, tmp_path):
    inventory = write_inventory(tmp_path / "inv.json", db, **bouncer_vars(bouncer, maintenance_pgbouncer_mode="disable"))
    connected, error = app_connect(db, port=bouncer.port)
    assert error is None
    result, proc = play(inventory, "on")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert paused(bouncer, db)[1] == 1 and result["sessions_terminated"] == 1
    with pytest.raises(psycopg2.Error):
        connected.cursor().execute("SELECT 1")
    assert app_connect(db, port=bouncer.port)[1] is not None
    result, proc = play(inventory, "off")
    assert proc.returncode == 0 and result["changed"] is True and paused(bouncer, db) == (0, 0)
    conn, error = app_connect(db, port=bouncer.port)
    assert error is None, error
    conn.close()


def test_the_pgbouncer_harness_cli_starts_a_pgbouncer_molecule_can_reuse_and_stops_it(pg_cluster, tmp_path):
    import json
    import subprocess
    import sys
    from conftest import ROOT
    users = tmp_path / "users.json"
    users.write_text(json.dumps({APP_ROLE: APP_PASSWORD}))
    cli = [sys.executable, "%s/tests/harness/pgbouncer.py" % ROOT]
    parent = tempfile.mkdtemp(prefix="teei-bouncer-cli-")  # pytest's tmp_path is closed to the postgres OS user
    os.chmod(parent, 0o755)
    base = os.path.join(parent, "bouncer")
    started = subprocess.run(cli + ["start", "--dir", base, "--cluster-dir", pg_cluster.base, "--database",
                                    "fixture_template", "--users-file", str(users)],
                             capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    try:
        attached = pgbouncer.PgBouncer.attach(base)
        assert attached.admin_password not in started.stdout
        assert attached.database("fixture_template")["paused"] == 0
        conn = psycopg2.connect(attached.dsn("fixture_template", APP_ROLE, APP_PASSWORD))
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM companies")
        assert cur.fetchone()[0] > 0
        conn.close()
        assert oct(os.stat(info["admin_password_file"]).st_mode & 0o777) == "0o600"
    finally:
        subprocess.run(cli + ["stop", "--dir", base], check=True)
    assert not os.path.exists(os.path.join(base, "pgbouncer.json"))
    shutil.rmtree(parent)


def test_a_planned_window_longer_than_query_wait_timeout_is_refused_before_pausing(db, tmp_path):
    with pgbouncer.PgBouncer.start(db.cluster, [db.name], users={APP_ROLE: APP_PASSWORD},
                                   query_wait_timeout=30) as short:
        inventory = write_inventory(tmp_path / "inv.json", db,
                                    **bouncer_vars(short, review_result={"predicted_window_seconds": 45}))
        result, proc = play(inventory, "on")
        assert proc.returncode != 0
        assert "query_wait_timeout=30s, but the planned window is 45s" in result["msg"]
        assert paused(short, db) == (0, 0)
