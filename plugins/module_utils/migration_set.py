# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration file convention, defined once.

A migration set is a directory::

    NNN_name.sql            a migration; its version is the file name without .sql
    rollback/NNN_name.sql   its rollback (optional; needed to roll it back)
    verify/NNN_name.sql     its verification, run inside the migration's transaction
    check/NNN_name.sql      its read-only precondition, run before the run changes anything
    verify/set.sql          the set's own verification, run when a run completes the set

Only migrations match ``*.sql`` at the set's root, so the runbook's
``ls -1 migrations/*.sql`` lists exactly the migrations. Versions are ordered by
their numeric prefix. A script whose leading comment holds the line
``-- rollout: no-transaction`` runs outside a transaction, statement by
statement (for CREATE INDEX CONCURRENTLY and the like). Anything else in the
directory is an error.

This module is plain Python: it checks the set's shape and carries parsed
scripts from the controller to the module. Reading and parsing the SQL is the
controller's job (``plugins/plugin_utils/sqlparse.py``, PostgreSQL's own parser
through pglast); this module never talks to a database or to Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re

MIGRATION_NAME = re.compile(r"^(?P<number>[0-9]{3,})_(?P<name>[a-z0-9][a-z0-9_]*)\.sql$")
COMPANION_DIRS = ("rollback", "verify", "check")
SET_VERIFY = "verify/set.sql"
OLD_SET_VERIFY = "verify.sql"
NO_TRANSACTION_MARK = re.compile(r"^--\s*rollout:\s*no-transaction\s*$", re.IGNORECASE)


class MigrationSetError(ValueError):
    """A migration set that breaks the convention; the message names the file."""


def checksum(data):
    """sha256 of a file's bytes, as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def has_no_transaction_mark(text):
    """True when the text's leading comment holds the line ``-- rollout: no-transaction``."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return False
        if NO_TRANSACTION_MARK.match(stripped):
            return True
    return False


class Statement(object):
    """One statement of a script: its text, its 1-based index and the line it starts on."""

    __slots__ = ("sql", "index", "line")

    def __init__(self, sql, index, line):
        self.sql = sql
        self.index = index
        self.line = line

    def __repr__(self):
        return "Statement(%d, line %d, %r)" % (self.index, self.line, self.sql[:40])


class Script(object):
    """One SQL file of the set, parsed: its path in the set, checksum, statements and mark.

    ``warnings`` are said when the script runs (a BEGIN/COMMIT wrapper that was dropped);
    ``indexes`` are the indexes a no-transaction script builds concurrently, as its statements
    name them: the only ones the engine checks for, and drops when INVALID."""

    def __init__(self, relpath, checksum, statements, no_transaction=False, warnings=(), indexes=()):
        self.relpath = relpath
        self.checksum = checksum
        self.statements = statements
        self.no_transaction = no_transaction
        self.warnings = list(warnings)
        self.indexes = list(indexes)

    def to_wire(self):
        """A JSON-serialisable form for the module's arguments."""
        return dict(checksum=self.checksum, no_transaction=self.no_transaction, warnings=self.warnings,
                    indexes=self.indexes, statements=[[s.line, s.sql] for s in self.statements])

    @classmethod
    def from_wire(cls, relpath, wire):
        if not isinstance(wire, dict) or "statements" not in wire:
            raise MigrationSetError("%s: not a parsed script (the pg_migrate action sends these)" % relpath)
        statements = [Statement(sql, index, line) for index, (line, sql) in enumerate(wire["statements"], 1)]
        return cls(relpath, wire["checksum"], statements, bool(wire.get("no_transaction")),
                   wire.get("warnings") or (), wire.get("indexes") or ())


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
        self.positions = dict((m.version, index) for index, m in enumerate(migrations))

    @property
    def versions(self):
        return [m.version for m in self.migrations]

    @property
    def newest(self):
        return self.migrations[-1].version if self.migrations else None

    def get(self, version):
        return self.by_version.get(version)

    def scripts(self):
        """Every script of the set, migrations first with their companions, then the set's verify."""
        for migration in self.migrations:
            for script in (migration.script, migration.rollback, migration.verify, migration.check):
                if script is not None:
                    yield script
        if self.verify is not None:
            yield self.verify

    def position(self, version):
        """Index of version in the set's order, or raise MigrationSetError."""
        try:
            return self.positions[version]
        except KeyError:
            raise MigrationSetError("target %s is not a migration of set %s (versions: %s)"
                                    % (version, self.name, ", ".join(self.versions) or "none"))

    def to_wire(self):
        return dict((s.relpath, s.to_wire()) for s in self.scripts())


def read_tree(path):
    """Read a migration set directory into {relative path: bytes}.

    Sub-directories other than rollback/, verify/ and check/ are reported with a
    trailing slash so that check_layout can reject them by name.
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


def check_layout(tree):
    """Check the names of {relative path: content} against the convention, before any file is parsed.

    Returns the migrations as {relative path: (number, name)}."""
    migrations = {}
    numbers = {}
    for relpath in sorted(tree):
        if relpath.endswith("/"):
            raise MigrationSetError("%s is not part of the migration file convention "
                                    "(only rollback/, verify/ and check/ may be folders)" % relpath)
        if relpath == OLD_SET_VERIFY:
            raise MigrationSetError("verify.sql at the set's root is no longer part of the convention: only "
                                    "migrations may match *.sql there; move it to %s" % SET_VERIFY)
        if "/" in relpath:
            continue
        match = MIGRATION_NAME.match(relpath)
        if not match:
            raise MigrationSetError(
                "%s is not a migration file name: expected NNN_name.sql (three or more digits, "
                "then lowercase letters, digits and underscores)" % relpath)
        number = int(match.group("number"))
        if number in numbers:
            raise MigrationSetError("duplicate version number %s: %s and %s"
                                    % (match.group("number"), numbers[number], relpath))
        numbers[number] = relpath
        migrations[relpath] = (number, match.group("name"))
    for relpath in tree:
        if "/" in relpath and relpath != SET_VERIFY and relpath.split("/", 1)[1] not in migrations:
            raise MigrationSetError("%s has no migration %s in the set" % (relpath, relpath.split("/", 1)[1]))
    return migrations


def parse_set(name, tree, make_script):
    """Validate {relative path: content} against the convention and return a MigrationSet.

    make_script(relpath, content) turns one file's content into a Script: on the
    controller it parses the file's bytes, in the module it decodes what the
    controller sent. Names are checked before any file is parsed."""
    layout = check_layout(tree)
    migrations = {}
    for relpath, (number, mname) in layout.items():
        migrations[relpath] = Migration(make_script(relpath, tree[relpath]), number, mname)
    set_verify = None
    for relpath in sorted(tree):
        if relpath == SET_VERIFY:
            set_verify = make_script(relpath, tree[relpath])
        elif "/" in relpath:
            kind, filename = relpath.split("/", 1)
            setattr(migrations[filename], kind, make_script(relpath, tree[relpath]))
    ordered = sorted(migrations.values(), key=lambda m: m.number)
    return MigrationSet(name, ordered, set_verify)


def from_wire(name, wire):
    """The MigrationSet the controller sent (see MigrationSet.to_wire)."""
    return parse_set(name, wire, Script.from_wire)
