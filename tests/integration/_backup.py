"""Helpers for the backup and restore tests: an inventory for one database, playbook runs that return
the role's result fact, and what a database holds (schema dump and row counts) to compare."""

import json
import os
import pwd
import shutil
import subprocess
import tempfile

import psycopg2
import pytest

from conftest import PYTHON, ROOT, run_playbook

from ansible_collections.teei.db_rollout.plugins.module_utils import backup as bk

BACKUP_PLAYBOOK = os.path.join(ROOT, "playbooks", "backup.yml")
RESTORE_PLAYBOOK = os.path.join(ROOT, "playbooks", "restore.yml")
BACKUP_TASK = "Take the database backup, read it back whole and write its manifest"
RESTORE_TASK = "Check the backup's sha256 and restore it into the database"


def inventory(path, db, **hostvars):
    """An inventory (JSON is YAML) whose `databases` group holds one host connecting locally to db."""
    cluster = db.cluster
    host = dict(ansible_connection="local", ansible_python_interpreter=PYTHON, db_host=cluster.host,
                db_port=cluster.port, db_name=db.name, db_user=cluster.user, db_password=cluster.password or "")
    host.update(hostvars)
    path.write_text(json.dumps({"all": {"children": {"databases": {"hosts": {"testdb": host}}}}}, indent=2))
    return str(path)


def task_result(data, name):
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ", 1)[-1] == name:
                return task["hosts"]["testdb"]
    raise AssertionError("task %r did not run: %s" % (name, json.dumps(data)[:3000]))


def backup(inv, extra_vars=None, playbook=BACKUP_PLAYBOOK, env=None):
    """Run the backup playbook; return (backup_result, completed process)."""
    data, proc = run_playbook(playbook, inventory=inv, extra_vars=extra_vars, env=env)
    return task_result(data, BACKUP_TASK), proc


def restore(inv, extra_vars=None, env=None):
    data, proc = run_playbook(RESTORE_PLAYBOOK, inventory=inv, extra_vars=extra_vars, env=env)
    return task_result(data, RESTORE_TASK), proc


def take_backup(db, directory, run_id=None, **options):
    """A backup taken in this process (for tests of what comes after it; the role has its own tests)."""
    cluster = db.cluster
    connect, client = bk.make_connector(psycopg2, dict(host=cluster.host, port=cluster.port, user=cluster.user,
                                                       password=cluster.password))
    return bk.Backup(connect, client, bk.BackupOptions(database=db.name, directory=str(directory), run_id=run_id,
                                                       **options)).run()


def row_counts(db):
    """{schema.table: rows} of every ordinary table of db."""
    tables = db.psql("SELECT schemaname || '.' || tablename FROM pg_tables "
                     "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1").splitlines()
    return dict((t, int(db.psql("SELECT count(*) FROM %s" % t))) for t in tables)


def state(db):
    """What a test compares before and after: the schema dump and every table's row count."""
    return db.schema(), row_counts(db)


def databases(cluster):
    return sorted(cluster.psql("SELECT datname FROM pg_database WHERE NOT datistemplate").splitlines())


def mode(path):
    return oct(os.stat(path).st_mode & 0o777)


def pg_restore_list(cluster, path):
    return subprocess.run([os.path.join(cluster.bindir, "pg_restore"), "--list", path], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture
def postgres_owned_dir():
    """A folder the postgres OS user owns (pytest's tmp_path is closed to it)."""
    if os.geteuid() != 0:
        pytest.skip("become to postgres needs root here")
    check = subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", "/usr/bin/python3 -c 'import psycopg2'"],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        pytest.skip("the postgres OS user needs /usr/bin/python3 with psycopg2 (apt-get install python3-psycopg2): "
                    + check.stderr.strip()[-200:])
    folder = tempfile.mkdtemp(prefix="teei-bk-pg-")
    os.chmod(folder, 0o755)
    entry = pwd.getpwnam("postgres")
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def on_db_host(db, folder, **extra):
    """Host vars of the database host mode: the module runs there, as postgres, over the Unix socket."""
    hostvars = dict(ansible_become=True, ansible_become_user="postgres", ansible_become_method="su",
                    ansible_python_interpreter="/usr/bin/python3", db_unix_socket=db.cluster.socketdir,
                    db_delegate_to_controller=False, backup_dir=os.path.join(folder, "backups"))
    hostvars.update(extra)
    return hostvars
