"""Shared pytest fixtures: the collection on sys.path, real PostgreSQL clusters, and
a way to run teei.db_rollout.pg_migrate through Ansible and read its result."""

import json
import os
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

import pgcluster  # noqa: E402

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PYTHON = os.path.join(VENV_BIN, "python") if os.path.exists(os.path.join(VENV_BIN, "python")) else sys.executable
TEMPLATE_DB = "fixture_template"


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update(
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_NOCOLOR="1",
    )
    env.pop("PGPASSWORD", None)
    env.update(extra or {})
    return env


class Database(object):
    """One database of a cluster, for one test."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name

    def psql(self, sql):
        return self.cluster.psql(sql, dbname=self.name)

    def scalar(self, sql):
        return self.psql(sql)

    def connect(self):
        import psycopg2
        conn = psycopg2.connect(self.cluster.dsn(self.name))
        conn.autocommit = True
        return conn

    def login_args(self):
        args = dict(login_host=self.cluster.host, login_port=self.cluster.port, login_user=self.cluster.user,
                    login_db=self.name)
        if self.cluster.password:
            args["login_password"] = self.cluster.password
        return args

    def schema(self):
        return self.cluster.pg_dump_schema(self.name)

    def versions(self, table="public.schema_migrations"):
        out = self.psql("SELECT string_agg(version, ',' ORDER BY version) FROM %s" % table)
        return out.split(",") if out else []

    def pg_migrate(self, check=False, diff=False, env=None, timeout=300, **args):
        """Run pg_migrate ad hoc through Ansible; return (result dict, completed process)."""
        module_args = self.login_args()
        module_args.update(args)
        return run_module("teei.db_rollout.pg_migrate", module_args, check=check, diff=diff, env=env,
                          timeout=timeout)


def strip_history_table(dump, table="public.schema_migrations"):
    """A schema dump without the history table's CREATE TABLE, whose columns the engine extends."""
    out = []
    skipping = False
    for line in dump.splitlines():
        if line.startswith("CREATE TABLE %s (" % table):
            skipping = True
        if not skipping:
            out.append(line)
        if skipping and line.startswith(");"):
            skipping = False
    return "\n".join(out)


def run_module(module, module_args, check=False, diff=False, env=None, timeout=300):
    cmd = [os.path.join(VENV_BIN, "ansible"), "localhost", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % PYTHON, "-m", module, "-a", json.dumps(module_args)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), cwd=ROOT, timeout=timeout)
    return parse_json_callback(proc), proc


def parse_json_callback(proc):
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("ansible printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    results = []
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                results.append(result)
    return results[-1] if results else {}


def write_inventory(path, db, host="testdb"):
    """An inventory whose `databases` group holds one host connecting locally to db."""
    path.write_text(
        "all:\n  children:\n    databases:\n      hosts:\n        %s:\n"
        "          ansible_connection: local\n"
        "          ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n"
        "          db_host: %s\n          db_port: %d\n          db_name: %s\n          db_user: postgres\n"
        % (host, db.cluster.host, db.cluster.port, db.name))
    return str(path)


def run_playbook(playbook, inventory=None, extra_vars=None, check=False, env=None, timeout=600):
    """Run ansible-playbook with the JSON callback; return (data, completed process)."""
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), playbook]
    if inventory:
        cmd += ["-i", inventory]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), cwd=ROOT, timeout=timeout)
    try:
        return json.loads(proc.stdout), proc
    except ValueError:
        raise AssertionError("ansible-playbook printed no JSON (rc %d):\n%s\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL 15 cluster (trust auth) with the fixtures in a template database."""
    with pgcluster.Cluster.start(auth="trust") as cluster:
        cluster.load_fixtures(TEMPLATE_DB)
        yield cluster


@pytest.fixture(scope="session")
def pg_password_cluster():
    """A throwaway cluster that asks for a password (scram-sha-256)."""
    with pgcluster.Cluster.start(auth="scram-sha-256") as cluster:
        cluster.load_fixtures(TEMPLATE_DB)
        yield cluster


def _fresh_db(cluster):
    name = "t_" + uuid.uuid4().hex[:12]
    cluster.psql('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, TEMPLATE_DB))
    return Database(cluster, name)


def _drop_db(db):
    db.cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db.name)


@pytest.fixture
def db(pg_cluster):
    """A fresh database holding the pre-Phase-C fixtures, dropped after the test."""
    database = _fresh_db(pg_cluster)
    yield database
    _drop_db(database)


@pytest.fixture
def password_db(pg_password_cluster):
    database = _fresh_db(pg_password_cluster)
    yield database
    _drop_db(database)
