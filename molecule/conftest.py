"""pytest fixtures for the testinfra verifiers of every scenario (molecule/*/tests/; the
base config's `confcutdir` makes pytest read this file). The checks themselves are plain
Python in shared/rollout_checks.py, which the test modules import."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "shared"))

from rollout_checks import Instance, records  # noqa: E402


@pytest.fixture(scope="module")
def instance(host):
    """The database behind the testinfra host under test (molecule's instance config)."""
    return Instance.named(host.backend.get_hostname())


@pytest.fixture(scope="module")
def run_records():
    """The scenario's run records, oldest first."""
    return records()
