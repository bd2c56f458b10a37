"""teei.db_rollout.pg_databases against a real server holding several tenant databases: `ansible-inventory
--list` shows exactly the matching ones, the password never appears in clear text, and the collection's
playbooks run on the discovered hosts."""

import json
import os
import subprocess

import pytest

from conftest import TEMPLATE_DB, VENV_BIN, ansible_env, run_playbook
from tenants import create_databases, drop_databases, write_fleet_inventory

TENANTS = ["fleet_tenant_%03d" % n for n in range(1, 6)]
OTHERS = ["fleet_tenant_demo", "fleet_billing", "fleet_tenant_007_old"]
PW_ENV = "TEEI_TEST_FLEET_PASSWORD"


@pytest.fixture(scope="module")
def fleet(pg_password_cluster):
    """A password-protected server with five tenant databases and three that are not tenants."""
    names = create_databases(pg_password_cluster, TENANTS + OTHERS, template=TEMPLATE_DB)
    yield pg_password_cluster
    drop_databases(pg_password_cluster, names)


def server(cluster, name="pg1", **extra):
    entry = dict(name=name, host=cluster.host, port=cluster.port, user=cluster.user)
    entry.update(extra)
    return entry


TENANT_SELECTION = dict(databases=["fleet_tenant_*"], exclude_databases=["fleet_tenant_demo", "*_old"])


def inventory(args, env=None, cwd=None):
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-inventory")] + args, capture_output=True, text=True,
                          env=ansible_env(dict(ANSIBLE_INVENTORY_UNPARSED_FAILED="true", **(env or {}))),
                          cwd=cwd, timeout=120)
    return proc


def listed(source, env=None, extra=()):
    proc = inventory(["-i", source, "--list"] + list(extra), env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc


def plain(value):
    """A hostvar as ansible-inventory prints it (untrusted strings come wrapped)."""
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value


def test_list_shows_exactly_the_matching_tenant_databases(fleet, tmp_path):
    source = write_fleet_inventory(tmp_path / "tenants.pg_databases.yml",
                                   [server(fleet, password_env=PW_ENV)], **TENANT_SELECTION)
    data, proc = listed(source, {PW_ENV: fleet.password})
    expected = ["pg1_" + name for name in TENANTS]
    assert data["databases"]["hosts"] == expected
    assert sorted(data["_meta"]["hostvars"]) == expected
    first = data["_meta"]["hostvars"]["pg1_fleet_tenant_001"]
    assert {key: plain(first[key]) for key in ("db_host", "db_port", "db_name", "db_user", "db_server",
                                               "ansible_connection")} == \
        dict(db_host=fleet.host, db_port=fleet.port, db_name="fleet_tenant_001", db_user="postgres",
             db_server="pg1", ansible_connection="local")
    # The password is looked up when a task runs; the inventory holds only the variable's name.
    assert first["db_password"] == "{{ lookup('ansible.builtin.env', '%s') }}" % PW_ENV
    assert fleet.password not in proc.stdout + proc.stderr


def test_discovered_hosts_run_the_status_playbook_with_the_password_from_the_environment(fleet, tmp_path):
    source = write_fleet_inventory(tmp_path / "tenants.pg_databases.yml",
                                   [server(fleet, password_env=PW_ENV)], **TENANT_SELECTION)
    data, proc = run_playbook("playbooks/status.yml", inventory=source, env={PW_ENV: fleet.password})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = {}
    for task in [t for play in data["plays"] for t in play["tasks"]]:
        for host, result in task["hosts"].items():
            if "msg" in result and "pending" in str(result["msg"]):
                said[host] = result["msg"]
    assert sorted(said) == ["pg1_" + name for name in TENANTS]
    assert all(("phase_c on %s is at nothing" % host[len("pg1_"):]) in msg for host, msg in said.items())
    assert fleet.password not in proc.stdout + proc.stderr


def test_vaulted_password_stays_encrypted_in_the_inventory(fleet, tmp_path):
    vault_file = tmp_path / "vault-password"
    vault_file.write_text("fleet-vault-secret\n")
    vault_file.chmod(0o600)
    encrypted = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt_string", "--vault-password-file",
                                str(vault_file), "--stdin-name", "password"], input=fleet.password,
                               capture_output=True, text=True, env=ansible_env(), timeout=60)
    assert encrypted.returncode == 0, encrypted.stderr
    source = tmp_path / "vaulted.pg_databases.yml"
    source.write_text("plugin: teei.db_rollout.pg_databases\nservers:\n"
                      "  - name: pg1\n    host: %s\n    port: %d\n    user: postgres\n%s"
                      "databases: [fleet_tenant_00?]\n"
                      % (fleet.host, fleet.port, "".join("    " + line + "\n"
                                                         for line in encrypted.stdout.strip().splitlines())))
    data, proc = listed(str(source), extra=["--vault-password-file", str(vault_file)])
    assert data["databases"]["hosts"] == ["pg1_" + name for name in TENANTS]
    assert "$ANSIBLE_VAULT" in data["_meta"]["hostvars"]["pg1_fleet_tenant_001"]["db_password"]["__ansible_vault"]
    assert fleet.password not in proc.stdout + proc.stderr


def test_passfile_gives_the_password_and_the_inventory_holds_none(fleet, tmp_path):
    passfile = tmp_path / "pgpass"
    passfile.write_text("%s:%d:*:%s:%s\n" % (fleet.host, fleet.port, fleet.user, fleet.password))
    passfile.chmod(0o600)
    source = write_fleet_inventory(tmp_path / "pgpass.pg_databases.yml", [server(fleet)],
                                   databases=["fleet_tenant_001", "fleet_billing"])
    data, proc = listed(source, {"PGPASSFILE": str(passfile)})
    assert data["databases"]["hosts"] == ["pg1_fleet_billing", "pg1_fleet_tenant_001"]
    assert "db_password" not in data["_meta"]["hostvars"]["pg1_fleet_billing"]
    assert fleet.password not in proc.stdout


def test_two_servers_keyed_groups_and_compose(fleet, tmp_path):
    # One cluster named twice: `eu` holds the tenants, `ops` the billing database.
    source = write_fleet_inventory(
        tmp_path / "two.pg_databases.yml",
        [server(fleet, "eu", password_env=PW_ENV, groups=["tenants"]),
         server(fleet, "ops", password_env=PW_ENV, databases=["fleet_billing"], exclude_databases=[],
                vars=dict(db_delegate_to_controller=True))],
        keyed_groups=[dict(key="db_server", prefix="server")],
        compose=dict(rollout_environment="'staging'"), **TENANT_SELECTION)
    data, _ = listed(source, {PW_ENV: fleet.password})
    assert data["server_eu"]["hosts"] == ["eu_" + name for name in TENANTS]
    assert data["tenants"]["hosts"] == data["server_eu"]["hosts"]
    assert data["server_ops"]["hosts"] == ["ops_fleet_billing"]
    assert sorted(data["databases"]["hosts"]) == sorted(["eu_" + name for name in TENANTS] + ["ops_fleet_billing"])
    hostvars = data["_meta"]["hostvars"]
    assert hostvars["ops_fleet_billing"]["db_delegate_to_controller"] is True
    assert {plain(v["rollout_environment"]) for v in hostvars.values()} == {"staging"}


def test_unreachable_server_fails_the_source_naming_it(fleet, tmp_path):
    closed_port = 1
    source = write_fleet_inventory(tmp_path / "down.pg_databases.yml",
                                   [server(fleet, password_env=PW_ENV), dict(name="down", host="127.0.0.1",
                                                                             port=closed_port)])
    proc = inventory(["-i", source, "--list"], {PW_ENV: fleet.password})
    assert proc.returncode != 0
    assert "cannot connect to server 'down' (postgres@127.0.0.1:1/postgres) to list its databases" in proc.stderr
    assert "pg1_fleet_tenant_001" not in proc.stdout


def test_clear_text_password_is_refused(fleet, tmp_path):
    source = write_fleet_inventory(tmp_path / "clear.pg_databases.yml",
                                   [server(fleet, password=fleet.password)])
    proc = inventory(["-i", source, "--list"])
    assert proc.returncode != 0
    assert "server 'pg1' (postgres@%s:%d/postgres): password is in clear text" % (fleet.host, fleet.port) \
        in proc.stderr
    assert "fleet_tenant_001" not in proc.stdout


def test_template_in_a_database_name_is_never_evaluated(fleet, tmp_path):
    hostile = "fleet_{{ 6 * 7 }}"
    create_databases(fleet, [hostile])
    try:
        source = write_fleet_inventory(tmp_path / "hostile.pg_databases.yml",
                                       [server(fleet, password_env=PW_ENV)], databases=["fleet_{*"])
        proc = subprocess.run([os.path.join(VENV_BIN, "ansible"), "databases", "-i", source, "-m",
                               "ansible.builtin.debug", "-a", "var=db_name"], capture_output=True, text=True,
                              env=ansible_env({PW_ENV: fleet.password, "ANSIBLE_STDOUT_CALLBACK": "default",
                                               "ANSIBLE_LOAD_CALLBACK_PLUGINS": "0"}), timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "pg1_fleet____6___7___" in proc.stdout
        assert '"db_name": "fleet_{{ 6 * 7 }}"' in proc.stdout and "42" not in proc.stdout
    finally:
        drop_databases(fleet, [hostile])
