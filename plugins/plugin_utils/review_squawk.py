# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""squawk, the PostgreSQL migration linter, run as it is on the controller.

The review does not rewrite squawk's rules: it runs the pinned ``squawk`` binary (PyPI
``squawk-cli``) with its JSON reporter and the server's ``--pg-version`` on each migration file,
and keeps what it reports, with 1-based lines.

Plain Python: subprocess, no Ansible, no database.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys


class SquawkError(RuntimeError):
    """squawk is missing or did not report; the message says what to do."""


def find_squawk(path=None):
    """The squawk binary: path if given, else on PATH, else beside the running Python (a venv)."""
    if path:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise SquawkError("squawk binary %s does not exist or is not executable" % path)
    found = shutil.which("squawk") or os.path.join(os.path.dirname(sys.executable), "squawk")
    if not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise SquawkError("squawk binary not found on PATH nor beside %s: install the pinned squawk-cli "
                          "(pip install -r requirements.txt) or set its path" % sys.executable)
    return found


def pg_version_arg(server_version_num):
    """squawk's --pg-version (major.minor) from server_version_num (150018 -> 15.18)."""
    number = int(server_version_num)
    return "%d.%d" % (number // 10000, number % 10000)


def run_squawk(binary, filename, pg_version, in_transaction=True, exclude=(), timeout=120):
    """squawk's findings for one file: [{rule, line, line_end, column, level, message, help}].

    squawk exits 1 when it found something and 0 when not; anything else, or output that is not
    its JSON, is a SquawkError naming the file and squawk's message.
    """
    cmd = [binary, "--reporter", "json", "--pg-version", pg_version]
    if in_transaction:
        cmd.append("--assume-in-transaction")
    if exclude:
        cmd.append("--exclude=%s" % ",".join(exclude))
    cmd.append(filename)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except OSError as exc:
        raise SquawkError("could not run squawk (%s): %s" % (binary, exc))
    if proc.returncode not in (0, 1):
        raise SquawkError("squawk failed on %s (exit %d): %s"
                          % (filename, proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))
    try:
        data = json.loads(proc.stdout or "[]")
    except ValueError:
        raise SquawkError("squawk printed no JSON for %s: %s" % (filename, (proc.stdout + proc.stderr)[-2000:]))
    findings = []
    for item in data:
        # squawk's lines are 0-based; the review's (and pg_migrate's) are 1-based.
        findings.append({"rule": item.get("rule_name"), "line": int(item.get("line", 0)) + 1,
                         "line_end": int(item.get("line_end", item.get("line", 0))) + 1,
                         "column": item.get("column"), "level": item.get("level"),
                         "message": item.get("message"), "help": item.get("help")})
    return findings
