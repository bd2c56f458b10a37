# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration file convention, defined once.

A migration set is a directory::

    NNN_name.sql            a migration; its version is the file name without .sql
    rollback/NNN_name.sql   its rollback (optional; needed to roll it back)
    verify/NNN_name.sql     its verification, run inside the migration's transaction
    check/NNN_name.sql      its read-only precondition, run before the run changes anything
    verify.sql              the set's own verification, run when a run completes the set

Versions are ordered by their numeric prefix. A migration whose leading comment
holds the line ``-- rollout: no-transaction`` runs outside a transaction,
statement by statement (for CREATE INDEX CONCURRENTLY and the like). Anything
else in the directory is an error.

This module is plain Python: it reads and checks files, and never talks to a
database or to Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re

from ansible_collections.teei.db_rollout.plugins.module_utils.sqlsplit import (
    SqlSplitError,
    split_sql,
)

MIGRATION_NAME = re.compile(r"^(?P<number>[0-9]{3,})_(?P<name>[a-z0-9][a-z0-9_]*)\.sql$")
COMPANION_DIRS = ("rollback", "verify", "check")
SET_VERIFY = "verify.sql"
NO_TRANSACTION_MARK = re.compile(r"^--\s*rollout:\s*no-transaction\s*$", re.IGNORECASE)


class MigrationSetError(ValueError):
    """A migration set that breaks the convention; the message names the file."""


def checksum(data):
    """sha256 of a file's bytes, as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


class Script(object):
    """One SQL file of the set: its path in the set, text, checksum and statements."""

    def __init__(self, relpath, data):
        self.relpath = relpath
        if not data.strip():
            raise MigrationSetError("%s is empty" % relpath)
        try:
            self.text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MigrationSetError("%s is not valid UTF-8 (byte %d)" % (relpath, exc.start))
        self.checksum = checksum(data)
        try:
            self.statements = split_sql(self.text)
        except SqlSplitError as exc:
            raise MigrationSetError("%s: %s" % (relpath, exc))
        if not self.statements:
            raise MigrationSetError("%s holds no SQL statement, only comments" % relpath)

    @property
    def no_transaction(self):
        """True when the file's leading comment marks it ``-- rollout: no-transaction``."""
        for line in self.text.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("--"):
                return False
            if NO_TRANSACTION_MARK.match(stripped):
                return True
        return False


class Migration(object):
    """A migration and its companion scripts."""

    def __init__(self, script, number, name):
        self.script = script
        self.version = script.relpath[:-len(".sql")]
        self.number = number
        self.name = name
        self.rollback = None
        self.verify = None
        self.check = None

    @property
    def checksum(self):
        return self.script.checksum

    @property
    def no_transaction(self):
        return self.script.no_transaction

    def __repr__(self):
        return "Migration(%s)" % self.version


class MigrationSet(object):
    """An ordered, validated migration set."""

    def __init__(self, name, migrations, verify=None):
        self.name = name
        self.migrations = migrations
        self.verify = verify
        self.by_version = dict((m.version, m) for m in migrations)

    @property
    def versions(self):
        return [m.version for m in self.migrations]

    @property
    def newest(self):
        return self.migrations[-1].version if self.migrations else None

    def get(self, version):
        return self.by_version.get(version)

    def position(self, version):
        """Index of version in the set's order, or raise MigrationSetError."""
        for index, migration in enumerate(self.migrations):
            if migration.version == version:
                return index
        raise MigrationSetError("target %s is not a migration of set %s (versions: %s)"
                                % (version, self.name, ", ".join(self.versions) or "none"))


def read_tree(path):
    """Read a migration set directory into {relative path: bytes}.

    Sub-directories other than rollback/, verify/ and check/ are reported with a
    trailing slash so that parse_set can reject them by name.
    """
    if not os.path.isdir(path):
        raise MigrationSetError("migration set %s does not exist or is not a directory" % path)
    tree = {}
    for entry in sorted(os.listdir(path)):
        full = os.path.join(path, entry)
        if os.path.isdir(full):
            if entry not in COMPANION_DIRS:
                tree[entry + "/"] = None
                continue
            for sub in sorted(os.listdir(full)):
                subfull = os.path.join(full, sub)
                rel = entry + "/" + sub
                if os.path.isdir(subfull):
                    tree[rel + "/"] = None
                else:
                    with open(subfull, "rb") as handle:
                        tree[rel] = handle.read()
        else:
            with open(full, "rb") as handle:
                tree[entry] = handle.read()
    return tree


def parse_set(name, tree):
    """Validate {relative path: bytes} against the convention and return a MigrationSet."""
    migrations = {}
    companions = []
    set_verify = None
    for relpath in sorted(tree):
        data = tree[relpath]
        if relpath.endswith("/"):
            raise MigrationSetError("%s is not part of the migration file convention "
                                    "(only rollback/, verify/ and check/ may be folders)" % relpath)
        if "/" in relpath:
            companions.append(relpath)
            continue
        if relpath == SET_VERIFY:
            set_verify = Script(relpath, data)
            continue
        match = MIGRATION_NAME.match(relpath)
        if not match:
            raise MigrationSetError(
                "%s is not a migration file name: expected NNN_name.sql (three or more digits, "
                "then lowercase letters, digits and underscores)" % relpath)
        number = int(match.group("number"))
        if number in migrations:
            raise MigrationSetError("duplicate version number %s: %s and %s"
                                    % (match.group("number"), migrations[number].script.relpath, relpath))
        migrations[number] = Migration(Script(relpath, data), number, match.group("name"))
    by_file = dict((m.script.relpath, m) for m in migrations.values())
    for relpath in companions:
        kind, filename = relpath.split("/", 1)
        migration = by_file.get(filename)
        if migration is None:
            raise MigrationSetError("%s has no migration %s in the set" % (relpath, filename))
        script = Script(relpath, tree[relpath])
        setattr(migration, kind, script)
    ordered = [migrations[number] for number in sorted(migrations)]
    return MigrationSet(name, ordered, set_verify)


def load_set(path, name=None):
    """Read and validate the migration set at path."""
    return parse_set(name or os.path.basename(os.path.normpath(path)), read_tree(path))


def decode_tree(files):
    """Turn {relative path: text} (as sent from the controller) back into bytes."""
    return dict((rel, None if text is None else text.encode("utf-8")) for rel, text in files.items())


def encode_tree(tree):
    """Turn {relative path: bytes} into {relative path: text} for sending to a module.

    Call parse_set first: it has already rejected files that are not UTF-8.
    """
    return dict((rel, None if data is None else data.decode("utf-8")) for rel, data in tree.items())
