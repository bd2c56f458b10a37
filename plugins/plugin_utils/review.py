# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The review, put together: plan what the database side must read, then judge what it read.

``plan(mset)`` reads every statement of a set's migrations (review_parse) and lists the tables they touch and
the statements a rehearsal would run; ``judge(...)`` takes what the module read from the
database (and the rehearsal), runs squawk on the pending files, and returns the result the
action plugin hands back: findings, grades, policy, predicted window, table and Markdown.

Plain Python: no Ansible, no database.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.teei.db_rollout.plugins.plugin_utils import locklevels as ll
from ansible_collections.teei.db_rollout.plugins.plugin_utils import review_grade as grading
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_parse import analyse_migration
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_report import markdown, text_table
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_squawk import (
    find_squawk,
    pg_version_arg,
    run_squawk,
)


def plan(mset):
    """(analyses, module plan) of a migration set as the engine's parser read it (sqlparse).

    The module plan holds what the database side needs: every table name as written, the set's
    versions, and each migration's statements (for a rehearsal).
    """
    analyses = []
    tables = []
    migrations = []
    for migration in mset.migrations:
        analysis = analyse_migration(migration.version, migration.script.statements, migration.script.relpath)
        analysis["no_transaction"] = migration.no_transaction
        analyses.append(analysis)
        statements = []
        for statement in analysis["statements"]:
            for name in [t["table"] for t in statement["touches"]] + statement["creates"]:
                if name not in tables:
                    tables.append(name)
            statements.append({"index": statement["index"], "line": statement["line"], "sql": statement["text"]})
        migrations.append({"version": migration.version, "no_transaction": migration.no_transaction,
                           "statements": statements})
    return analyses, {"tables": tables, "versions": mset.versions, "migrations": migrations}


def _catalog(tables):
    """The module's table stats with lock modes in the documentation's words."""
    out = {}
    for name, stats in tables.items():
        stats = dict(stats)
        sessions = []
        for session in stats.get("sessions") or ():
            session = dict(session, modes=[ll.from_pg_locks(m) for m in session.get("modes") or ()])
            sessions.append(session)
        stats["sessions"] = sessions
        out[name] = stats
    return out


def rehearsal_locks(rehearsal):
    """The rehearsal with, per statement, the table locks it took or strengthened (``locks``) and the
    strongest (``strongest_lock``), from the locks its transaction held after each statement."""
    if not rehearsal:
        return rehearsal
    rehearsal = dict(rehearsal)
    statements = []
    held_before = {}
    version = None
    for statement in rehearsal.get("statements") or ():
        if statement["version"] != version:
            held_before, version = {}, statement["version"]
        held = {}
        for relation, mode in statement.get("held") or ():
            held[relation] = ll.strongest([held.get(relation), ll.from_pg_locks(mode)])
        locks = [{"table": rel, "lock": mode} for rel, mode in sorted(held.items())
                 if held_before.get(rel) is None or ll.rank(mode) > ll.rank(held_before[rel])]
        if statement.get("in_transaction"):
            held_before = held
        entry = dict((k, v) for k, v in statement.items() if k != "held")
        entry["locks"] = locks
        entry["strongest_lock"] = ll.strongest([lock["lock"] for lock in locks])
        statements.append(entry)
    rehearsal["statements"] = statements
    return rehearsal


def _statements(analyses, catalog, dropped):
    new = set((d["version"], d["line"], d["table"]) for d in dropped if d["rule"] == "lock")
    out = []
    for analysis in analyses:
        for statement in analysis["statements"]:
            out.append({"version": analysis["version"], "index": statement["index"], "line": statement["line"],
                        "kind": statement["kind"], "sql": statement["sql"], "notes": statement["notes"],
                        "locks": [{"table": (catalog.get(t["table"]) or {}).get("table") or t["table"],
                                   "lock": t["lock"], "effect": t["effect"], "line": t["line"], "action": t["action"],
                                   "doc": t["doc"],
                                   "new": (analysis["version"], t["line"], t["table"]) in new}
                                  for t in statement["touches"]]})
    return out


def judge(set_path, analyses, read, database, policy, squawk_path=None):
    """The review's result from the parsed set and what the module read from the database.

    read: the module's result (server_version_num, applied, tables, rehearsal). policy: dict of
    thresholds (a Thresholds), stop_at, accept, squawk_exclude, squawk_grade.
    """
    applied = set(read.get("applied") or ())
    pending = [a for a in analyses if a["version"] not in applied]
    catalog = _catalog(read.get("tables") or {})
    squawk = {}
    if pending:
        binary = find_squawk(squawk_path)
        pg_version = pg_version_arg(read["server_version_num"])
        for analysis in pending:
            squawk[analysis["version"]] = run_squawk(
                binary, os.path.join(set_path, analysis["version"] + ".sql"), pg_version,
                in_transaction=not analysis.get("no_transaction"), exclude=policy.get("squawk_exclude") or ())
    rehearsal = rehearsal_locks(read.get("rehearsal"))
    found, dropped = grading.findings(pending, catalog, squawk, policy["thresholds"],
                                      policy.get("squawk_grade", "info"), rehearsal)
    verdict = grading.apply_policy(found, policy.get("accept"), policy.get("stop_at", "high"))
    window = grading.predicted_window(rehearsal)
    tables = sorted((dict(s, name=s.get("table")) for s in catalog.values() if s.get("exists")),
                    key=lambda s: s["name"])
    unique_tables = []
    for stats in tables:
        if not unique_tables or unique_tables[-1]["name"] != stats["name"]:
            unique_tables.append(stats)
    msg = "review of %s: %d pending migration(s), %d finding(s), highest %s%s%s" % (
        database, len(pending), len(found), verdict["max_grade"],
        ", %d accepted" % len(verdict["accepted"]) if verdict["accepted"] else "",
        "; STOP: an open finding is graded %s (stop grade %s)" % (verdict["max_open_grade"], verdict["stop_at"])
        if verdict["stop"] else "")
    result = dict(verdict)
    result.update(
        changed=False, failed=False, msg=msg, database=database, findings=found, dropped=dropped,
        pending=[a["version"] for a in pending], statements=_statements(pending, catalog, dropped),
        tables=unique_tables, rehearsal=rehearsal, predicted_window_seconds=window,
        server_version_num=read.get("server_version_num"), thresholds=policy["thresholds"].as_dict(),
        table=text_table(database, found, verdict, window),
        summary_markdown=markdown(database, found, verdict, window, rehearsal))
    return result
