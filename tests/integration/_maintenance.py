"""Helpers for the maintenance tests: an inventory, playbooks/maintenance.yml runs, and
connections as the application."""

import json
import os
import signal
import subprocess
import time

import psycopg2

from conftest import ROOT, VENV_BIN, ansible_env

PLAYBOOK = os.path.join(ROOT, "playbooks", "maintenance.yml")
APP_ROLE = "cockpit_app"
APP_PASSWORD = "cockpit_app"  # the fixture's; the test cluster trusts loopback anyway


def write_inventory(path, db, app_hosts=(), **host_vars):
    """A `databases` group with one local host for ``db`` (``host_vars`` override its db_* values) and
    an `app` group of local hosts."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    db_host = dict(local, db_host=db.cluster.host, db_port=db.cluster.port, db_name=db.name, db_user="postgres")
    db_host.update(host_vars)
    inventory = {"all": {"children": {
        "databases": {"hosts": {"testdb": db_host}},
        "app": {"hosts": {name: dict(local) for name in app_hosts}},
    }}}
    path.write_text(json.dumps(inventory, indent=2))
    return str(path)


def _command(inventory, state, check, extra_vars):
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-i", inventory,
           "-e", json.dumps(dict(extra_vars or {}, maintenance_state=state))]
    if check:
        cmd.append("--check")
    return cmd


def result_of(stdout):
    """The last maintenance_result the run set (success or rescue), from the JSON callback."""
    data = json.loads(stdout)
    found = None
    for play in data["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                facts = result.get("ansible_facts") or {}
                if "maintenance_result" in facts:
                    found = facts["maintenance_result"]
    return found


def play(inventory, state, check=False, timeout=300, **extra_vars):
    """Run playbooks/maintenance.yml; return (maintenance_result, completed process)."""
    proc = subprocess.run(_command(inventory, state, check, extra_vars), capture_output=True, text=True,
                          env=ansible_env(), cwd=ROOT, timeout=timeout)
    try:
        return result_of(proc.stdout), proc
    except ValueError:
        raise AssertionError("ansible-playbook printed no JSON (rc %d):\n%s\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))


def start_play(inventory, state, **extra_vars):
    """Start playbooks/maintenance.yml in its own process group (to be killed with kill_play)."""
    return subprocess.Popen(_command(inventory, state, False, extra_vars), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ansible_env(), cwd=ROOT, start_new_session=True)


def kill_play(proc):
    """SIGKILL ansible-playbook and the module process it started."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


def wait_for(predicate, what, timeout=120):
    """Poll until ``predicate()`` is true (a condition, not a duration, is what the tests check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("gave up waiting for %s" % what)


def connect_as(cluster, dbname, user, password=None, port=None):
    """(connection, None) or (None, PostgreSQL's error message)."""
    dsn = "host=%s port=%d dbname=%s user=%s connect_timeout=10" % (cluster.host, port or cluster.port, dbname, user)
    if password:
        dsn += " password=%s" % password
    try:
        conn = psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        return None, str(exc)
    conn.autocommit = True
    return conn, None


def access_state(db, effective=False):
    """What maintenance must restore exactly: the database's ACL (pg_database.datacl as it is, or with
    ``effective`` PostgreSQL's default when it is NULL) and connection limit, the app role's settings."""
    acl = "coalesce(d.datacl, acldefault('d', d.datdba))" if effective else "d.datacl"
    return db.cluster.psql(
        "SELECT coalesce(%s::text, 'NULL') || ' ' || d.datconnlimit || ' ' || r.rolcanlogin || ' ' || r.rolconnlimit "
        "FROM pg_database d, pg_roles r WHERE d.datname = '%s' AND r.rolname = '%s'" % (acl, db.name, APP_ROLE))


def grant_app_connect(db):
    """GRANT CONNECT to the application as the fixture's schema does (CREATE DATABASE ... TEMPLATE
    copies no database ACL, so a fresh test database starts with PostgreSQL's default, NULL)."""
    db.psql('GRANT CONNECT ON DATABASE "%s" TO %s' % (db.name, APP_ROLE))


def record_exists(db):
    return db.psql("SELECT to_regnamespace('teei_maintenance') IS NOT NULL") == "t"
