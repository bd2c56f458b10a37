"""The collection as Galaxy would ship it: the tarball `ansible-galaxy collection build` makes installs into
a clean collections path, its playbooks run by FQCN from there against a real database, and `ansible-doc`
renders every module, plugin and role the tree holds (found in the tree, so new ones are covered)."""

import glob
import importlib
import json
import os
import re
import subprocess

import pytest
import yaml

from conftest import ROOT, VENV_BIN, ansible_env, write_inventory

# plugins/<folder> -> ansible-doc's type. action plugins are documented by the module of their name;
# module_utils, plugin_utils and doc_fragments are not plugins.
DOC_TYPES = {"modules": "module", "callback": "callback", "inventory": "inventory", "lookup": "lookup",
             "filter": "filter", "test": "test", "connection": "connection", "become": "become",
             "cache": "cache", "vars": "vars", "strategy": "strategy"}
NOT_PLUGINS = {"action", "module_utils", "plugin_utils", "doc_fragments", "__pycache__"}


def stems(folder, ext=".py"):
    return sorted(os.path.basename(p)[:-len(ext)] for p in glob.glob(os.path.join(ROOT, "plugins", folder, "*" + ext))
                  if not os.path.basename(p).startswith("_"))


def jinja_plugin_names(folder):
    """Filters or tests: the names each file of the folder exports (one file may hold several)."""
    names = []
    holder = "FilterModule" if folder == "filter" else "TestModule"
    method = "filters" if folder == "filter" else "tests"
    for stem in stems(folder):
        module = importlib.import_module("ansible_collections.teei.db_rollout.plugins.%s.%s" % (folder, stem))
        names.extend(getattr(getattr(module, holder)(), method)())
    return sorted(names)


def documented_plugins():
    found = []
    for folder in sorted(os.listdir(os.path.join(ROOT, "plugins"))):
        if folder in NOT_PLUGINS or not os.path.isdir(os.path.join(ROOT, "plugins", folder)):
            continue
        assert folder in DOC_TYPES, "plugins/%s: a plugin type this test does not know; add it to DOC_TYPES" % folder
        names = jinja_plugin_names(folder) if folder in ("filter", "test") else stems(folder)
        found.extend((DOC_TYPES[folder], "teei.db_rollout." + name) for name in names)
    return found


ROLES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks")))


def run(cmd, env, cwd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The built tarball installed alone into a fresh collections path; an env that sees only it."""
    base = tmp_path_factory.mktemp("published")
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        version = yaml.safe_load(handle)["version"]
    built = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(base), ROOT],
                ansible_env(), ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = base / ("teei-db_rollout-%s.tar.gz" % version)
    collections = base / "collections"
    config = base / "ansible.cfg"
    config.write_text("[defaults]\n")
    # Only the installed copy resolves teei.db_rollout; community.postgresql comes from the ansible package.
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_CONFIG": str(config)})
    installed = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "-p",
                     str(collections), str(tarball)], env, str(base))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return dict(base=base, root=collections / "ansible_collections" / "teei" / "db_rollout", env=env)


def test_the_install_holds_the_collection_and_resolves_only_there(published):
    root = published["root"]
    assert (root / "MANIFEST.json").is_file() and (root / "plugins" / "inventory" / "pg_databases.py").is_file()
    assert not (root / "tests").exists() and not (root / ".venv").exists()
    listing = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "inventory", "--json", "teei.db_rollout.pg_databases"],
                  published["env"], str(published["base"]))
    assert json.loads(listing.stdout)["teei.db_rollout.pg_databases"]["doc"]["filename"].startswith(str(root))


def test_status_playbook_runs_by_fqcn_from_the_install_and_changes_nothing(published, db, tmp_path):
    before = db.schema()
    inventory = write_inventory(tmp_path / "hosts.yml", db)
    proc = run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "teei.db_rollout.status"],
               published["env"], str(published["base"]))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["stats"]["testdb"]["failures"] == 0 and data["stats"]["testdb"]["changed"] == 0
    results = [task["hosts"]["testdb"] for play in data["plays"] for task in play["tasks"] if "testdb" in task["hosts"]]
    assert any("001_add_tenant_routing" in (result.get("pending") or []) for result in results), results
    assert db.schema() == before


def test_every_module_and_plugin_is_found_in_the_tree():
    found = documented_plugins()
    assert ("module", "teei.db_rollout.pg_migrate") in found and ("inventory", "teei.db_rollout.pg_databases") in found
    modules = set(stems("modules"))
    for action in stems("action"):
        assert action in modules, "action plugin %s has no module of its name to document it" % action


@pytest.mark.parametrize("doc_type", sorted(set(t for t, _ in documented_plugins())))
def test_ansible_doc_renders_every_plugin_of_a_type(published, doc_type):
    names = [name for t, name in documented_plugins() if t == doc_type]
    as_json = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", doc_type, "--json"] + names,
                  published["env"], str(published["base"]))
    assert as_json.returncode == 0, as_json.stderr
    docs = json.loads(as_json.stdout)
    for name in names:
        assert name in docs and docs[name].get("doc", {}).get("short_description"), \
            "ansible-doc -t %s %s: no documentation (%s)" % (doc_type, name, as_json.stderr.strip())
        assert docs[name]["doc"].get("version_added"), "%s: no version_added" % name
        if doc_type == "module":
            assert docs[name].get("examples"), "%s: no EXAMPLES" % name
    text = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", doc_type] + names, published["env"],
               str(published["base"]))
    assert text.returncode == 0 and "ERROR" not in text.stderr and "WARNING" not in text.stderr, text.stderr
    for name in names:
        assert name in text.stdout


def test_ansible_doc_renders_every_role(published):
    missing = [role for role in ROLES if not os.path.isfile(os.path.join(ROOT, "roles", role, "meta",
                                                                          "argument_specs.yml"))]
    assert not missing, "roles without meta/argument_specs.yml: %s" % ", ".join(missing)
    names = ["teei.db_rollout." + role for role in ROLES]
    as_json = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "role", "--json"] + names, published["env"],
                  str(published["base"]))
    assert as_json.returncode == 0, as_json.stderr
    docs = json.loads(as_json.stdout)
    text = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "role"] + names, published["env"], str(published["base"]))
    assert text.returncode == 0 and "WARNING" not in text.stderr, text.stderr
    problems = []
    for name in names:
        entry_points = docs.get(name, {}).get("entry_points")
        if not entry_points:
            problems.append("%s: no entry point documented" % name)
            continue
        for entry, spec in entry_points.items():
            if not spec.get("short_description"):
                problems.append("%s entry point %s: no short_description" % (name, entry))
        # Each role's text, from its header to the next one; ansible-doc marks names bold (`*main*` off a terminal).
        section = re.search(r"> ROLE: \W*%s\W.*?(?=^> ROLE: |\Z)" % re.escape(name), text.stdout, re.S | re.M)
        for entry in entry_points:
            if not section or not re.search(r"ENTRY POINT: \W*%s\W" % re.escape(entry), section.group(0)):
                problems.append("%s: entry point %s not rendered" % (name, entry))
    assert not problems, "\n".join(problems)
