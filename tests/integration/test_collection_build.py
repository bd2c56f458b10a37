"""The built collection installs, and its module, roles and playbooks resolve by FQCN from the install."""

import os
import subprocess

import yaml

from conftest import ROOT, VENV_BIN, ansible_env, parse_json_callback, write_inventory


def run(cmd, env, cwd):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def collection_version():
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        return yaml.safe_load(handle)["version"]


def test_built_tarball_installs_and_resolves_by_fqcn(db, tmp_path):
    build = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path",
                 str(tmp_path), ROOT], ansible_env(), ROOT)
    assert build.returncode == 0, build.stderr
    tarball = tmp_path / ("teei-db_rollout-%s.tar.gz" % collection_version())
    assert tarball.exists()
    installed = tmp_path / "collections"
    install = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--force",
                   "-p", str(installed), str(tarball)], ansible_env(), ROOT)
    assert install.returncode == 0, install.stderr
    root = installed / "ansible_collections" / "teei" / "db_rollout"
    assert (root / "migrations" / "phase_c" / "001_add_tenant_routing.sql").exists()
    assert not (root / "tests").exists() and not (root / ".venv").exists()

    # Only the installed copy (and the bundled community collections) may resolve now.
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_CONFIG": str(config)})
    listing = run([os.path.join(VENV_BIN, "ansible-doc"), "-l", "teei.db_rollout"], env, str(tmp_path))
    assert "teei.db_rollout.pg_migrate" in listing.stdout, listing.stderr
    doc = run([os.path.join(VENV_BIN, "ansible-doc"), "teei.db_rollout.pg_migrate"], env, str(tmp_path))
    assert str(installed) in doc.stdout and "EXAMPLES" in doc.stdout
    role_doc = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "role", "teei.db_rollout.migrate"], env,
                   str(tmp_path))
    assert "migrate_lock_timeout" in role_doc.stdout, role_doc.stderr

    inventory = write_inventory(tmp_path / "hosts.yml", db)
    rollout = run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "teei.db_rollout.rollout"],
                  env, str(tmp_path))
    assert rollout.returncode == 0, rollout.stdout[-3000:] + rollout.stderr[-3000:]
    assert db.psql("SELECT count(*) FROM schema_migrations WHERE migration_set = 'phase_c'") == "6"
    status = run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "teei.db_rollout.status"],
                 env, str(tmp_path))
    assert status.returncode == 0
    assert "is at 006_add_integration_configs_table" in parse_json_callback(status)["msg"]
