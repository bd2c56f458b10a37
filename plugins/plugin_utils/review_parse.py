# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each statement of a migration locks, read from pglast's parse tree.

``analyse_migration(version, text)`` returns one entry per statement: its line, its kind and the
tables it touches, each with the lock mode it takes there (from ``locklevels``), whether that
lock is held over a scan or a rewrite of the whole table, and the tables the statement creates.
The SQL statements inside a ``DO`` block (PL/pgSQL) are read too; dynamic ``EXECUTE`` cannot be,
and is said so.

Controller-side, plain Python: pglast, no Ansible, no database.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.teei.db_rollout.plugins.plugin_utils import locklevels as ll

try:
    import pglast
    from pglast import ast as pg_ast
    from pglast.enums.parsenodes import ConstrType, ObjectType
    HAS_PGLAST = True
except ImportError:  # the action plugin reports it
    HAS_PGLAST = False

EFFECT_ORDER = (ll.BRIEF, ll.SCAN, ll.REWRITE)
# Functions whose DEFAULT makes ADD COLUMN fill every row one by one (volatile ones).
VOLATILE_FUNCTIONS = frozenset(("random", "clock_timestamp", "timeofday", "gen_random_uuid", "uuid_generate_v1",
                                "uuid_generate_v1mc", "uuid_generate_v4", "nextval", "txid_current",
                                "statement_timestamp", "random_normal", "uuidv4", "uuidv7"))
SUBCOMMAND_WORDS = {"AT_ColumnDefault": "SET/DROP DEFAULT of", "AT_SetNotNull": "SET NOT NULL on (checks every row)",
                    "AT_DropNotNull": "DROP NOT NULL on", "AT_DropColumn": "DROP COLUMN",
                    "AT_DropConstraint": "DROP CONSTRAINT", "AT_ValidateConstraint": "VALIDATE CONSTRAINT",
                    "AT_SetStatistics": "SET STATISTICS on", "AT_ChangeOwner": "OWNER TO"}
SERIAL_TYPES = frozenset(("serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"))


class ReviewParseError(ValueError):
    """A migration pglast cannot parse; the message names the file and PostgreSQL's error."""


def rel_name(rangevar):
    """``schema.table`` as written (pglast folds unquoted names to lower case), else ``table``."""
    if rangevar.schemaname:
        return "%s.%s" % (rangevar.schemaname, rangevar.relname)
    return rangevar.relname


def _names(strings):
    return ".".join(s.sval for s in strings)


def _walk(node):
    """Every pglast node below (and including) node."""
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item)
        return
    if not isinstance(node, pg_ast.Node):
        return
    yield node
    for attr in node.__slots__:
        value = getattr(node, attr, None)
        if isinstance(value, (pg_ast.Node, list, tuple)):
            yield from _walk(value)


def _reads(node, exclude=()):
    """Tables a query reads: the RangeVars below node that are not CTE names."""
    ctes = set(exclude)
    for sub in _walk(node):
        if isinstance(sub, pg_ast.CommonTableExpr):
            ctes.add(sub.ctename)
    names = []
    for sub in _walk(node):
        if isinstance(sub, pg_ast.RangeVar) and not (sub.schemaname is None and sub.relname in ctes):
            name = rel_name(sub)
            if name not in names:
                names.append(name)
    return names


def _touch(table, entry, action, line, kind="table"):
    mode, effect, doc = entry
    return {"table": table, "lock": mode, "effect": effect, "action": action, "doc": doc, "line": line,
            "relation_kind": kind}


def _merge(touches):
    """One touch per table and line: the strongest lock and the longest effect, actions joined."""
    merged = {}
    order = []
    for touch in touches:
        key = (touch["table"], touch["relation_kind"], touch["line"])
        if key not in merged:
            merged[key] = dict(touch)
            order.append(key)
            continue
        cur = merged[key]
        cur["lock"] = ll.strongest([cur["lock"], touch["lock"]])
        if EFFECT_ORDER.index(touch["effect"]) > EFFECT_ORDER.index(cur["effect"]):
            cur["effect"] = touch["effect"]
            cur["doc"] = touch["doc"]
        if touch["action"] not in cur["action"]:
            cur["action"] = cur["action"] + ", " + touch["action"]
    return [merged[key] for key in order]


def _is_volatile(expr):
    for sub in _walk(expr):
        if isinstance(sub, pg_ast.FuncCall) and sub.funcname[-1].sval.lower() in VOLATILE_FUNCTIONS:
            return sub.funcname[-1].sval.lower()
    return None


def _add_column(table, cmd, line):
    col = cmd.def_
    what = "ADD COLUMN %s" % col.colname
    key = "AT_AddColumn"
    reasons = []
    touches = []
    type_name = col.typeName.names[-1].sval.lower() if col.typeName else ""
    if type_name in SERIAL_TYPES:
        key, reasons = "AT_AddColumn:rewrite", reasons + ["%s fills every row from a sequence" % type_name]
    for con in col.constraints or ():
        if con.contype == ConstrType.CONSTR_DEFAULT:
            volatile = _is_volatile(con.raw_expr)
            if volatile:
                key = "AT_AddColumn:rewrite"
                reasons.append("volatile DEFAULT %s() rewrites every row" % volatile)
        elif con.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED):
            key = "AT_AddColumn:rewrite"
            reasons.append("%s column fills every row"
                           % ("identity" if con.contype == ConstrType.CONSTR_IDENTITY else "generated"))
        elif con.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_EXCLUSION):
            if key == "AT_AddColumn":
                key = "AT_AddColumn:scan"
            reasons.append("%s builds an index over every row" % con.contype.name[len("CONSTR_"):].replace(
                "PRIMARY", "PRIMARY KEY").replace("EXCLUSION", "EXCLUDE"))
        elif con.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_NOTNULL):
            if key == "AT_AddColumn":
                key = "AT_AddColumn:scan"
            reasons.append("%s is checked on every row" % ("CHECK" if con.contype == ConstrType.CONSTR_CHECK
                                                           else "NOT NULL"))
        elif con.contype == ConstrType.CONSTR_FOREIGN:
            if key == "AT_AddColumn":
                key = "AT_AddColumn:scan"
            reasons.append("REFERENCES %s is checked on every row" % rel_name(con.pktable))
            touches.append(_touch(rel_name(con.pktable), ll.alter_table_lock("AT_AddConstraint:referenced"),
                                  "referenced by new foreign key %s.%s" % (table, col.colname), line))
    action = what + (" (%s)" % ", ".join(reasons) if reasons else "")
    return [_touch(table, ll.alter_table_lock(key), action, line)] + touches


def _add_constraint(table, cmd, line):
    con = cmd.def_
    name = " %s" % con.conname if con.conname else ""
    kind = con.contype.name[len("CONSTR_"):]
    if con.contype == ConstrType.CONSTR_FOREIGN:
        key = "AT_AddConstraint:foreign" + (":not_valid" if con.skip_validation else "")
        what = "ADD CONSTRAINT%s FOREIGN KEY%s" % (name, " NOT VALID" if con.skip_validation else "")
        return [_touch(table, ll.alter_table_lock(key), what, line),
                _touch(rel_name(con.pktable), ll.alter_table_lock("AT_AddConstraint:referenced"),
                       "referenced by foreign key%s of %s" % (name, table), line)]
    if con.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) and con.indexname:
        return [_touch(table, ll.alter_table_lock("AT_AddIndexConstraint"),
                       "ADD CONSTRAINT%s %s USING INDEX %s" % (name, kind, con.indexname), line)]
    key = "AT_AddConstraint" + (":not_valid" if con.skip_validation else "")
    what = {"CHECK": "checked on every row", "PRIMARY": "builds an index over every row",
            "UNIQUE": "builds an index over every row", "EXCLUSION": "builds an index over every row"}
    reason = "" if con.skip_validation else " (%s)" % what.get(kind, "checked on every row")
    return [_touch(table, ll.alter_table_lock(key), "ADD CONSTRAINT%s %s%s%s" % (
        name, kind.replace("PRIMARY", "PRIMARY KEY"), " NOT VALID" if con.skip_validation else "", reason), line)]


def _alter_table(node, line):
    if node.objtype not in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_FOREIGN_TABLE):
        return []
    table = rel_name(node.relation)
    touches = []
    for cmd in node.cmds:
        sub = cmd.subtype.name
        if sub == "AT_AddColumn":
            touches.extend(_add_column(table, cmd, line))
        elif sub == "AT_AddConstraint":
            touches.extend(_add_constraint(table, cmd, line))
        elif sub == "AT_AlterColumnType":
            using = cmd.def_ is not None and cmd.def_.raw_default is not None
            touches.append(_touch(table, ll.alter_table_lock(sub), "ALTER COLUMN %s TYPE (%s)" % (
                cmd.name, "USING rewrites every row" if using
                else "rewrites every row unless the new type is binary coercible"), line))
        elif sub == "AT_DetachPartition" and getattr(cmd.def_, "concurrent", False):
            touches.append(_touch(table, ll.alter_table_lock(sub + ":concurrent"), "DETACH PARTITION CONCURRENTLY",
                                  line))
        else:
            label = SUBCOMMAND_WORDS.get(sub, sub[len("AT_"):]) + (" %s" % cmd.name if cmd.name else "")
            touches.append(_touch(table, ll.alter_table_lock(sub), label, line))
    merged = _merge(touches)
    for touch in merged:
        if touch["table"] == table:
            touch["action"] = "ALTER TABLE %s %s" % (table, touch["action"])
    return merged


def _statement_touches(node, line, created):
    """(touches, created tables) of one statement node."""
    tag = type(node).__name__
    lock = ll.statement_lock
    if tag == "AlterTableStmt":
        return _alter_table(node, line), []
    if tag == "IndexStmt":
        key = "IndexStmt:concurrent" if node.concurrent else "IndexStmt"
        what = "CREATE %sINDEX%s %s" % ("UNIQUE " if node.unique else "", " CONCURRENTLY" if node.concurrent else "",
                                        node.idxname or "")
        return [_touch(rel_name(node.relation), lock(key), what.strip() + " (builds it over every row)", line)], []
    if tag == "CreateStmt":
        table = rel_name(node.relation)
        touches = []
        for sub in _walk(node.tableElts or ()):
            if isinstance(sub, pg_ast.Constraint) and sub.contype == ConstrType.CONSTR_FOREIGN:
                touches.append(_touch(rel_name(sub.pktable), lock("CreateStmt:references"),
                                      "referenced by a foreign key of new table %s" % table, line))
        for parent in node.inhRelations or ():
            touches.append(_touch(rel_name(parent), (ll.ACCESS_EXCLUSIVE if node.partbound else ll.SHARE_UPDATE_EXCLUSIVE,
                                                     ll.BRIEF, ll.DOC_TABLE_LOCKS),
                                  "parent of new table %s" % table, line))
        return _merge(touches), [table]
    if tag == "CreateTableAsStmt":
        table = rel_name(node.into.rel)
        return [_touch(t, lock("SelectStmt"), "read to fill new table %s" % table, line)
                for t in _reads(node.query)], [table]
    if tag == "DropStmt":
        touches = []
        for obj in node.objects or ():
            if node.removeType == ObjectType.OBJECT_TABLE:
                touches.append(_touch(_names(obj), lock("DropStmt:table"), "DROP TABLE", line))
            elif node.removeType == ObjectType.OBJECT_INDEX:
                key = "DropStmt:index:concurrent" if node.concurrent else "DropStmt:index"
                touches.append(_touch(_names(obj), lock(key), "DROP INDEX%s %s" % (
                    " CONCURRENTLY" if node.concurrent else "", _names(obj)), line, kind="index"))
            elif node.removeType == ObjectType.OBJECT_TRIGGER:
                touches.append(_touch(_names(obj[:-1]), lock("DropStmt:trigger"), "DROP TRIGGER %s" % obj[-1].sval,
                                      line))
        return touches, []
    if tag == "TruncateStmt":
        return [_touch(rel_name(r), lock("TruncateStmt"), "TRUNCATE", line) for r in node.relations], []
    if tag == "ReindexStmt":
        concurrent = any(p.defname == "concurrently" for p in node.params or ())
        key = "ReindexStmt:concurrent" if concurrent else "ReindexStmt"
        if node.relation is None:
            return [], []
        kind = "index" if node.kind.name == "REINDEX_OBJECT_INDEX" else "table"
        return [_touch(rel_name(node.relation), lock(key), "REINDEX%s (rebuilds every index over every row)" % (
            " CONCURRENTLY" if concurrent else ""), line, kind=kind)], []
    if tag == "ClusterStmt":
        return ([_touch(rel_name(node.relation), lock("ClusterStmt"), "CLUSTER (rewrites every row)", line)]
                if node.relation else []), []
    if tag == "VacuumStmt":
        full = any(o.defname == "full" for o in node.options or ())
        key = "VacuumStmt:full" if full and node.is_vacuumcmd else "VacuumStmt"
        what = ("VACUUM FULL (rewrites every row)" if key == "VacuumStmt:full"
                else "VACUUM" if node.is_vacuumcmd else "ANALYZE")
        return [_touch(rel_name(r.relation), lock(key), what, line) for r in node.rels or ()], []
    if tag == "RefreshMatViewStmt":
        key = "RefreshMatViewStmt:concurrent" if node.concurrent else "RefreshMatViewStmt"
        return [_touch(rel_name(node.relation), lock(key), "REFRESH MATERIALIZED VIEW", line)], []
    if tag == "CreateTrigStmt":
        return [_touch(rel_name(node.relation), lock("CreateTrigStmt"), "CREATE TRIGGER %s" % node.trigname, line)], []
    if tag == "RuleStmt":
        return [_touch(rel_name(node.relation), lock("RuleStmt"), "CREATE RULE %s" % node.rulename, line)], []
    if tag == "CreateStatsStmt":
        return [_touch(rel_name(r), lock("CreateStatsStmt"), "CREATE STATISTICS", line)
                for r in node.relations if isinstance(r, pg_ast.RangeVar)], []
    if tag == "RenameStmt" and node.relation is not None:
        return [_touch(rel_name(node.relation), lock("RenameStmt"), "RENAME", line)], []
    if tag == "AlterObjectSchemaStmt" and node.relation is not None:
        return [_touch(rel_name(node.relation), lock("AlterObjectSchemaStmt"), "SET SCHEMA", line)], []
    if tag == "LockStmt":
        mode = ll.LOCK_STATEMENT_MODES.get(node.mode, ll.ACCESS_EXCLUSIVE)
        return [_touch(rel_name(r), (mode, ll.BRIEF, ll.DOC_LOCK), "LOCK TABLE IN %s MODE" % mode, line)
                for r in node.relations], []
    if tag in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
        target = rel_name(node.relation)
        all_rows = tag in ("UpdateStmt", "DeleteStmt") and node.whereClause is None
        key = tag + (":all_rows" if all_rows else "")
        verb = tag[:-len("Stmt")].upper()
        what = verb + (" of every row" if all_rows else "")
        touches = [_touch(target, lock(key), what, line)]
        reads = [t for t in _reads(node) if t != target]
        touches += [_touch(t, lock("SelectStmt"), "read by %s" % verb, line) for t in reads]
        return touches, []
    if tag == "SelectStmt":
        key = "SelectStmt:locking" if node.lockingClause else "SelectStmt"
        return [_touch(t, lock(key), "read", line) for t in _reads(node)], []
    return [], []


def _plpgsql_sql(node):
    """(lineno, query) of each SQL statement in a PL/pgSQL parse tree, and the lines of dynamic EXECUTEs."""
    found, dynamic = [], []

    def visit(value):
        if isinstance(value, dict):
            for key, sub in value.items():
                if key == "PLpgSQL_stmt_execsql":
                    found.append((sub.get("lineno", 1), sub["sqlstmt"]["PLpgSQL_expr"]["query"]))
                elif key == "PLpgSQL_stmt_dynexecute":
                    dynamic.append(sub.get("lineno", 1))
                visit(sub)
        elif isinstance(value, list):
            for sub in value:
                visit(sub)

    visit(node)
    return found, dynamic


def _do_block(node, sql, first_line):
    """(touches, created, notes) of the statements inside a DO block."""
    body = None
    language = "plpgsql"
    for arg in node.args:
        if arg.defname == "as":
            body = arg
        elif arg.defname == "language":
            language = arg.arg.sval
    if body is None or language != "plpgsql":
        return [], [], ["DO block in %s: its statements are not reviewed" % language]
    body_line = first_line + sql.count("\n", 0, body.arg_location or 0)
    try:
        tree = pglast.parse_plpgsql(sql)
    except pglast.parser.ParseError as exc:
        return [], [], ["DO block not parsed as PL/pgSQL (%s): its statements are not reviewed" % exc]
    queries, dynamic = _plpgsql_sql(tree)
    touches, created, notes = [], [], []
    for lineno, query in queries:
        line = body_line + lineno - 1
        try:
            inner = pglast.parse_sql(query)
        except pglast.parser.ParseError:
            notes.append("line %d: statement in the DO block not parsed: not reviewed" % line)
            continue
        for raw in inner:
            t, c = _statement_touches(raw.stmt, line, created)
            touches.extend(t)
            created.extend(c)
    for lineno in dynamic:
        notes.append("line %d: EXECUTE of dynamic SQL in the DO block: not reviewed" % (body_line + lineno - 1))
    return touches, created, notes


def summary(sql, width=100):
    """The statement's first line, cut to width."""
    first = sql.strip().splitlines()[0] if sql.strip() else ""
    return first if len(first) <= width else first[:width - 3] + "..."


def analyse_statement(statement):
    """The review entry of one statement (an object with sql, index and line, as the engine's
    parser splits a file), parsed on its own with pglast."""
    if not HAS_PGLAST:
        raise ReviewParseError("pglast is not installed on the controller (pip install pglast)")
    sql, line = statement.sql, statement.line
    try:
        raws = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise ReviewParseError("line %d: %s" % (line, exc.args[0] if exc.args else exc))
    touches, created, notes = [], [], []
    kinds = []
    for raw in raws:
        node = raw.stmt
        kinds.append(type(node).__name__)
        if isinstance(node, pg_ast.DoStmt):
            t, c, n = _do_block(node, sql, line)
        else:
            t, c = _statement_touches(node, line, created)
            n = []
        touches.extend(t)
        created.extend(c)
        notes.extend(n)
    return {"index": statement.index, "line": line, "kind": "/".join(kinds), "sql": summary(sql), "text": sql,
            "touches": _merge(touches), "creates": created, "notes": notes}


def analyse_migration(version, statements, relpath=None):
    """The statements of one migration with what each touches and creates."""
    out = []
    for statement in statements:
        try:
            out.append(analyse_statement(statement))
        except ReviewParseError as exc:
            raise ReviewParseError("%s %s" % (relpath or version + ".sql", exc))
    return {"version": version, "statements": out}
