"""The execution environment that AWX/AAP would build: `ansible-builder create` writes a
build context holding this collection, its Python requirements and its system packages.
(No container engine runs here, so the image itself is not built.)"""

import os
import subprocess
import tarfile

import yaml

from conftest import ROOT, VENV_BIN, ansible_env


def read_lines(path):
    with open(path) as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]


def test_ansible_builder_context_holds_collection_and_its_requirements(tmp_path):
    build_dir = os.path.join(ROOT, ".build")
    version = yaml.safe_load(open(os.path.join(ROOT, "galaxy.yml")))["version"]
    built = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--force",
                            "--output-path", build_dir, ROOT], capture_output=True, text=True,
                           env=ansible_env(), cwd=ROOT, timeout=300)
    assert built.returncode == 0, built.stderr
    context = tmp_path / "context"
    created = subprocess.run([os.path.join(VENV_BIN, "ansible-builder"), "create", "-f",
                              os.path.join(ROOT, "execution-environment.yml"), "-c", str(context),
                              "--output-filename", "Containerfile"],
                             capture_output=True, text=True, env=ansible_env(), cwd=ROOT, timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr

    tarball = context / "_build" / "collections" / ("teei-db_rollout-%s.tar.gz" % version)
    assert tarball.is_file()
    with tarfile.open(str(tarball)) as tar:
        members = set(tar.getnames())
    # What ansible-builder's introspection reads inside the installed collection.
    assert {"meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt"} <= members
    python = read_lines(context / "_build" / "requirements.txt")
    names = [line.split(">")[0].split("=")[0].split("<")[0].strip() for line in python]
    assert {"psycopg2-binary", "pglast", "squawk-cli"} <= set(names)
    system = read_lines(context / "_build" / "bindep.txt")
    assert any(line.startswith("postgresql-client-15 ") for line in system)
    assert any(line.startswith("postgresql ") and "platform:rpm" in line for line in system)
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert [c["name"] for c in galaxy["collections"]] == ["community.postgresql"]

    containerfile = (context / "Containerfile").read_text()
    # The collection is installed where ansible-runner in the image looks for collections,
    # and the builder stage introspects it (so its meta/execution-environment.yml counts too).
    assert "ansible-galaxy collection install --no-deps -p /usr/share/ansible/collections " \
           "/tmp/teei-collections/*.tar.gz" in containerfile
    assert "introspect" in containerfile
    assert "ansible-runner" in containerfile
