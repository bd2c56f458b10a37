# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a migration set on the controller with PostgreSQL's own parser (pglast).

Every file of the set (migration, rollback, verify, check) is parsed whole by
libpg_query before the module connects anywhere, and split into statements
with the line each starts on. A file is refused, naming file and line, when:

- PostgreSQL's parser rejects it (its message is quoted);
- it holds a psql meta-command (``\\i``, ``\\set``...), which is psql's, not SQL;
- it holds ``COPY ... FROM STDIN`` or ``COPY ... TO STDOUT``: the engine sends
  statements, not COPY data; put rows in ``INSERT ... VALUES``;
- a transactional script (no ``-- rollout: no-transaction`` mark) controls the
  transaction the engine runs it in (BEGIN, COMMIT, ROLLBACK, SAVEPOINT,
  SET TRANSACTION...), or holds a statement PostgreSQL cannot run inside a
  transaction block (CREATE INDEX CONCURRENTLY, VACUUM...).

One exception: a file whose first statement is a plain ``BEGIN`` (or ``START
TRANSACTION``) and whose last is a plain ``COMMIT`` (or ``END``), the way the
runbook writes its steps, has that wrapper dropped with a warning: the engine's
own transaction gives the file the same all-or-nothing meaning, and adds the
verification and the history row to it.

A UTF-8 byte order mark at the start of a file is skipped for parsing; the
checksum stays the sha256 of the file's bytes.

Controller-only: pglast is a controller requirement, never needed where the
module runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import json
import os

try:
    from pglast import parser as pg_parser
except ImportError:  # reported by require_pglast() with what to install
    pg_parser = None

from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import (
    MigrationSetError,
    Script,
    Statement,
    checksum,
    has_no_transaction_mark,
    parse_set,
    read_tree,
)

BOM = u"\ufeff"
# Transaction control the engine keeps for itself (TransactionStmt kinds).
TRANSACTION_KINDS = {
    "TRANS_STMT_BEGIN": "BEGIN", "TRANS_STMT_START": "START TRANSACTION", "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK", "TRANS_STMT_SAVEPOINT": "SAVEPOINT", "TRANS_STMT_RELEASE": "RELEASE",
    "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT", "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED", "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}
# SET forms that change the running transaction or the session's next ones.
TRANSACTION_SETTINGS = {"TRANSACTION": "SET TRANSACTION", "SESSION CHARACTERISTICS": "SET SESSION CHARACTERISTICS",
                        "transaction_isolation": "SET transaction_isolation",
                        "transaction_read_only": "SET transaction_read_only",
                        "transaction_deferrable": "SET transaction_deferrable"}
# Statements PostgreSQL refuses inside a transaction block.
OUTSIDE_TRANSACTION = {"CreatedbStmt": "CREATE DATABASE",
                       "DropdbStmt": "DROP DATABASE", "AlterSystemStmt": "ALTER SYSTEM",
                       "CreateTableSpaceStmt": "CREATE TABLESPACE", "DropTableSpaceStmt": "DROP TABLESPACE",
                       "CreateSubscriptionStmt": "CREATE SUBSCRIPTION"}
NO_TRANSACTION_HINT = ("drop it (the engine runs the file in its own transaction), or mark the file "
                       "'-- rollout: no-transaction' in its leading comment if it must run outside one")


class SqlParseError(MigrationSetError):
    """A file that cannot run as written; the message names file and line."""


def require_pglast():
    if pg_parser is None:
        raise MigrationSetError("pglast is required on the controller to read migration sets "
                                "(pip install pglast; see the collection's requirements)")


class Line(object):
    """Turns character offsets of a text into 1-based line numbers, in one pass per text."""

    def __init__(self, text):
        self.starts = [0]
        index = text.find("\n")
        while index != -1:
            self.starts.append(index + 1)
            index = text.find("\n", index + 1)

    def __call__(self, offset):
        return bisect.bisect_right(self.starts, offset)


class ParsedScript(Script):
    """A Script read on the controller; keeps the parse tree for questions asked later."""

    def __init__(self, relpath, checksum_, statements, no_transaction, warnings, nodes, indexes):
        super(ParsedScript, self).__init__(relpath, checksum_, statements, no_transaction, warnings, indexes)
        self.nodes = nodes

    def tables(self):
        """Sorted schema-qualified names of the relations the script's statements name.

        Unqualified names are taken to be in ``public`` (the default search_path).
        Relations named only inside function bodies or DO blocks are not seen."""
        found = set()
        for node in self.nodes:
            ctes = set()
            relations = []
            _walk(node, relations, ctes)
            for schema, name in relations:
                if schema is None and name in ctes:
                    continue
                found.add("%s.%s" % (schema or "public", name))
        return sorted(found)


def _walk(node, relations, ctes):
    if isinstance(node, dict):
        if "relname" in node and "relpersistence" in node:
            relations.append((node.get("schemaname"), node["relname"]))
        if "ctename" in node:
            ctes.add(node["ctename"])
        drop = node.get("DropStmt")
        if drop and drop.get("removeType") in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW",
                                               "OBJECT_FOREIGN_TABLE"):
            for obj in drop.get("objects", []):
                names = [item["String"]["sval"] for item in obj.get("List", {}).get("items", [])]
                if names:
                    relations.append((names[-2] if len(names) > 1 else None, names[-1]))
        for value in node.values():
            if isinstance(value, (dict, list)):
                _walk(value, relations, ctes)
    elif isinstance(node, list):
        for item in node:
            _walk(item, relations, ctes)


def parse_script(relpath, data):
    """Parse one file's bytes into a ParsedScript, or raise SqlParseError naming file and line."""
    require_pglast()
    if not data.strip():
        raise SqlParseError("%s is empty" % relpath)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SqlParseError("%s is not valid UTF-8 (byte %d)" % (relpath, exc.start))
    if text.startswith(BOM):
        # Blank it rather than cut it, so that offsets stay those of the file's text.
        text = " " + text[1:]
    line_of = Line(text)
    try:
        slices = pg_parser.split(text, with_parser=True, only_slices=True)
        nodes = [entry["stmt"] for entry in json.loads(pg_parser.parse_sql_json(text)).get("stmts", [])]
    except pg_parser.ParseError as exc:
        raise SqlParseError(_describe_parse_error(relpath, text, line_of, exc))
    if len(nodes) != len(slices):  # pglast and libpg_query disagree: a bug to see, not to hide
        raise SqlParseError("%s: the parser split %d statements but parsed %d" % (relpath, len(slices), len(nodes)))
    statements = [Statement(text[piece], index, line_of(piece.start))
                  for index, piece in enumerate(slices, 1)]
    if not statements:
        raise SqlParseError("%s holds no SQL statement, only comments" % relpath)
    no_transaction = has_no_transaction_mark(text)
    warnings = []
    for statement, node in zip(statements, nodes):
        _refuse_copy(relpath, statement, node)
    indexes = []
    if no_transaction:
        indexes = [_concurrent_index(relpath, statement, node) for statement, node in zip(statements, nodes)
                   if node.get("IndexStmt", {}).get("concurrent")]
    else:
        statements, nodes, warnings = _drop_wrapper(relpath, statements, nodes)
        for statement, node in zip(statements, nodes):
            _refuse_transaction_control(relpath, statement, node)
    return ParsedScript(relpath, checksum(data), statements, no_transaction, warnings, nodes, indexes)


def _concurrent_index(relpath, statement, node):
    """The name (schema-qualified when the table is) of the index a CREATE INDEX CONCURRENTLY builds."""
    index = node["IndexStmt"]
    if not index.get("idxname"):
        raise SqlParseError("%s line %d: name the index this CREATE INDEX CONCURRENTLY builds: the engine checks and, "
                            "when a build fails, drops only the indexes a migration names" % (relpath, statement.line))
    name = _quote(index["idxname"])
    schema = index.get("relation", {}).get("schemaname")
    return "%s.%s" % (_quote(schema), name) if schema else name


def _quote(identifier):
    """An identifier as to_regclass() reads it: quoted unless it is plain lowercase."""
    if identifier.replace("_", "a").isalnum() and identifier == identifier.lower() and identifier.isascii() \
            and not identifier[0].isdigit():
        return identifier
    return '"%s"' % identifier.replace('"', '""')


def _describe_parse_error(relpath, text, line_of, exc):
    message, offset = exc.args[0], exc.args[1] if len(exc.args) > 1 else 0
    copy_line = _copy_from_stdin(text, line_of)
    if copy_line is not None:
        return "%s line %d: %s" % (relpath, copy_line, COPY_STDIN)
    meta = _meta_command(text)
    if meta is not None:
        offset, command = meta
        return ("%s line %d: %s is a psql meta-command, not SQL: the engine sends SQL statements only "
                "(inline what it would include or set, or run that step with psql)"
                % (relpath, line_of(offset), command))
    return "%s line %d: %s (PostgreSQL's parser)" % (relpath, line_of(offset), message)


def _meta_command(text):
    """(offset, command) of the first backslash outside quotes and comments, or None."""
    try:
        tokens = pg_parser.scan(text)
    except pg_parser.ParseError:
        return None
    for token in tokens:
        if token.name == "ASCII_92":
            end = text.find("\n", token.start)
            word = text[token.start:end if end != -1 else len(text)].split()
            return token.start, (word[0] if word else "\\")
    return None


COPY_STDIN = ("COPY ... FROM STDIN needs psql or the COPY protocol, which the engine does not speak: "
              "put the rows in INSERT ... VALUES statements (or COPY FROM a file on the database server)")


def _copy_from_stdin(text, line_of):
    """Line of a COPY ... FROM STDIN whose inline data broke the parse, or None."""
    try:
        pieces = pg_parser.split(text, with_parser=False, only_slices=True)
    except pg_parser.ParseError:
        return None
    for piece in pieces:
        words = text[piece].upper().split()
        if words and words[0] == "COPY" and "STDIN" in words:
            return line_of(piece.start)
    return None


def _refuse_copy(relpath, statement, node):
    copy = node.get("CopyStmt")
    if copy is None or copy.get("filename") or copy.get("is_program"):
        return
    if copy.get("is_from"):
        raise SqlParseError("%s line %d: %s" % (relpath, statement.line, COPY_STDIN))
    raise SqlParseError("%s line %d: COPY ... TO STDOUT sends rows to a client that is not listening: "
                        "the engine runs statements only" % (relpath, statement.line))


def _transaction_control(node):
    """The name of the transaction control a statement is, or None."""
    stmt = node.get("TransactionStmt")
    if stmt is not None:
        return TRANSACTION_KINDS.get(stmt.get("kind"), "transaction control")
    stmt = node.get("VariableSetStmt")
    if stmt is not None and stmt.get("name") in TRANSACTION_SETTINGS:
        return TRANSACTION_SETTINGS[stmt["name"]]
    return None


def _outside_transaction(node):
    """The name of a statement PostgreSQL cannot run inside a transaction block, or None."""
    for kind, label in OUTSIDE_TRANSACTION.items():
        if kind in node:
            return label
    if node.get("VacuumStmt", {}).get("is_vacuumcmd"):  # ANALYZE alone may run in a transaction
        return "VACUUM"
    if node.get("IndexStmt", {}).get("concurrent"):
        return "CREATE INDEX CONCURRENTLY"
    if node.get("DropStmt", {}).get("concurrent"):
        return "DROP INDEX CONCURRENTLY"
    reindex = node.get("ReindexStmt")
    if reindex and any(p.get("DefElem", {}).get("defname") == "concurrently" for p in reindex.get("params", [])):
        return "REINDEX CONCURRENTLY"
    return None


def _is_plain(node, kinds):
    stmt = node.get("TransactionStmt")
    return bool(stmt) and stmt.get("kind") in kinds and not stmt.get("options") and not stmt.get("chain")


def _drop_wrapper(relpath, statements, nodes):
    """Drop a plain BEGIN ... COMMIT around the whole file, with a warning."""
    if (len(statements) > 2 and _is_plain(nodes[0], ("TRANS_STMT_BEGIN", "TRANS_STMT_START"))
            and _is_plain(nodes[-1], ("TRANS_STMT_COMMIT",))):
        warning = ("%s: dropped its BEGIN (line %d) and COMMIT (line %d) wrapper: the engine runs the file in its "
                   "own transaction, with its verification and history row"
                   % (relpath, statements[0].line, statements[-1].line))
        kept = [Statement(s.sql, index, s.line) for index, s in enumerate(statements[1:-1], 1)]
        return kept, nodes[1:-1], [warning]
    return statements, nodes, []


def _refuse_transaction_control(relpath, statement, node):
    control = _transaction_control(node)
    if control is not None:
        raise SqlParseError("%s line %d: %s controls the transaction the engine runs this file in; %s"
                            % (relpath, statement.line, control, NO_TRANSACTION_HINT))
    outside = _outside_transaction(node)
    if outside is not None:
        raise SqlParseError("%s line %d: %s cannot run inside a transaction block; mark the file "
                            "'-- rollout: no-transaction' in its leading comment" % (relpath, statement.line, outside))


def parse_tree(name, tree):
    """Check and parse {relative path: bytes} (see migration_set.read_tree) into a MigrationSet."""
    return parse_set(name, tree, parse_script)


def load_set(path, name=None):
    """Read, check and parse the migration set directory at path."""
    return parse_tree(name or os.path.basename(os.path.normpath(path)), read_tree(path))
