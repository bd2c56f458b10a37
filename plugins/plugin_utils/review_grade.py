# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings, grades and policy of the review, from what the parse tree, squawk, the catalog and
a rehearsal said.

- ``findings(...)``: one finding per (statement, existing table) whose lock is worth saying,
  graded by the lock mode, whether the table is scanned or rewritten under it, and the table's
  size on this database against the thresholds; one ``table-in-use`` finding per table that an
  open transaction holds with a lock the migration's lock waits for; squawk's findings; a failed
  rehearsal. Findings on tables that the reviewed migrations create are dropped (and listed).
- ``apply_policy(...)``: accepted findings, the grade at which the run stops, and ``stop``.

Plain Python: no Ansible, no database, no parser.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.teei.db_rollout.plugins.plugin_utils import locklevels as ll

GRADES = ("info", "low", "high")
STOP_AT = ("info", "low", "high", "never")
THRESHOLDS = ("low_rows", "high_rows", "low_bytes", "high_bytes", "in_use_high_seconds")

RULE_REWRITE = "table-rewrite"
RULE_SCAN = "table-scan-under-lock"
RULE_EVERY_ROW = "writes-every-row"
RULE_ONLINE_SCAN = "online-scan"
RULE_EXCLUSIVE = "exclusive-lock"
RULE_IN_USE = "table-in-use"
RULE_MISSING = "table-missing"
RULE_REHEARSAL = "rehearsal-failed"
RULE_NOT_REVIEWED = "not-reviewed"


class ReviewPolicyError(ValueError):
    """A bad threshold, stop grade or acceptance; the message names the knob."""


def grade_rank(grade):
    return GRADES.index(grade) if grade in GRADES else -1


def max_grade(grades):
    """The highest of some grades, or ``none`` when there are none."""
    grades = [g for g in grades if g in GRADES]
    return max(grades, key=grade_rank) if grades else "none"


class Thresholds(object):
    """Sizes from which a table scanned or rewritten under a lock that blocks writes grades
    ``low`` and ``high``, and the age from which an open transaction on a table grades ``high``."""

    def __init__(self, low_rows=10000, high_rows=1000000, low_bytes=64 * 1024 ** 2, high_bytes=1024 ** 3,
                 in_use_high_seconds=60):
        values = dict(low_rows=low_rows, high_rows=high_rows, low_bytes=low_bytes, high_bytes=high_bytes,
                      in_use_high_seconds=in_use_high_seconds)
        for name, value in values.items():
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ReviewPolicyError("review threshold %s must be a whole number, not %r" % (name, value))
            if number < 0:
                raise ReviewPolicyError("review threshold %s must not be negative (%d)" % (name, number))
            setattr(self, name, number)
        if self.low_rows > self.high_rows:
            raise ReviewPolicyError("review threshold low_rows (%d) is above high_rows (%d)"
                                    % (self.low_rows, self.high_rows))
        if self.low_bytes > self.high_bytes:
            raise ReviewPolicyError("review threshold low_bytes (%d) is above high_bytes (%d)"
                                    % (self.low_bytes, self.high_bytes))

    def size_grade(self, rows, total_bytes):
        rows = max(rows or 0, 0)
        total_bytes = total_bytes or 0
        if rows >= self.high_rows or total_bytes >= self.high_bytes:
            return "high"
        if rows >= self.low_rows or total_bytes >= self.low_bytes:
            return "low"
        return "info"

    def as_dict(self):
        return dict(low_rows=self.low_rows, high_rows=self.high_rows, low_bytes=self.low_bytes,
                    high_bytes=self.high_bytes, in_use_high_seconds=self.in_use_high_seconds)


def human_bytes(number):
    number = float(number or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return ("%d %s" % (number, unit)) if unit == "B" else ("%.1f %s" % (number, unit))
        number /= 1024.0
    return "%.1f TB" % number


def name_key(name):
    """Compare table names as written: ``public.x`` and ``x`` are the same table."""
    name = (name or "").lower()
    return name[len("public."):] if name.startswith("public.") else name


def _size_words(stats):
    return "about %d rows (%s)" % (max(stats.get("rows") or 0, 0), human_bytes(stats.get("total_bytes")))


def _finding(rule, grade, version, statement, touch, stats, message, source="review"):
    return {"rule": rule, "source": source, "grade": grade, "version": version,
            "line": touch["line"] if touch else statement["line"], "statement": statement["index"],
            "table": stats.get("table") if stats else (touch["table"] if touch else None),
            "lock": touch["lock"] if touch else None, "effect": touch["effect"] if touch else None,
            "doc": touch["doc"] if touch else None,
            "rows": stats.get("rows") if stats else None,
            "total_bytes": stats.get("total_bytes") if stats else None,
            "message": message, "accepted": False, "reason": None}


def _lock_finding(version, statement, touch, stats, thresholds):
    """The finding a touch of an existing table is worth, or None."""
    lock, effect = touch["lock"], touch["effect"]
    table = stats["table"]
    holds = "%s holds %s on %s (blocks %s)" % (touch["action"], lock, table, ll.blocked(lock))
    if effect in (ll.SCAN, ll.REWRITE) and ll.blocks_writes(lock):
        grade = thresholds.size_grade(stats.get("rows"), stats.get("total_bytes"))
        verb = "rewrites" if effect == ll.REWRITE else "scans"
        rule = RULE_REWRITE if effect == ll.REWRITE else RULE_SCAN
        return _finding(rule, grade, version, statement, touch, stats,
                        "%s while it %s %s" % (holds, verb, _size_words(stats)))
    if effect == ll.SCAN and lock == ll.ROW_EXCLUSIVE:
        grade = thresholds.size_grade(stats.get("rows"), stats.get("total_bytes"))
        return _finding(RULE_EVERY_ROW, grade, version, statement, touch, stats,
                        "%s on %s locks %s until its transaction commits: writers of those rows wait"
                        % (touch["action"], table, _size_words(stats)))
    if effect in (ll.SCAN, ll.REWRITE):
        return _finding(RULE_ONLINE_SCAN, "info", version, statement, touch, stats,
                        "%s reads %s under %s, which blocks %s"
                        % (touch["action"], _size_words(stats), lock, ll.blocked(lock)))
    if ll.blocks_writes(lock):
        return _finding(RULE_EXCLUSIVE, "info", version, statement, touch, stats,
                        "%s for an instant (a catalog change), but it waits for every open transaction on "
                        "%s and queues every later query behind it" % (holds, table))
    return None


def _in_use_findings(requested, catalog, thresholds):
    """One table-in-use finding per existing table an open transaction holds against the strongest
    lock the reviewed migrations ask there."""
    out = []
    for key in sorted(requested):
        version, statement, touch, stats = requested[key]
        sessions = [s for s in stats.get("sessions") or ()
                    if any(ll.conflicts(touch["lock"], mode) for mode in s.get("modes") or ())]
        if not sessions:
            continue
        sessions.sort(key=lambda s: -(s.get("xact_age_seconds") or 0))
        oldest = sessions[0].get("xact_age_seconds") or 0
        grade = "high" if oldest >= thresholds.in_use_high_seconds else "low"
        words = ", ".join("pid %s (%s, %s, transaction open %d s, holds %s)" % (
            s["pid"], s.get("user") or "?", s.get("application") or "no application", s.get("xact_age_seconds") or 0,
            "/".join(s.get("modes") or ())) for s in sessions)
        finding = _finding(RULE_IN_USE, grade, version, statement, touch, stats,
                           "%s on %s waits for %s; every later query on %s queues behind it"
                           % (touch["lock"], stats["table"], words, stats["table"]))
        finding["sessions"] = [dict(pid=s["pid"], xact_age_seconds=s.get("xact_age_seconds"), modes=s.get("modes"),
                                    user=s.get("user"), application=s.get("application"), state=s.get("state"))
                               for s in sessions]
        out.append(finding)
    return out


def _subject(statement, line):
    """The table a squawk finding at line of a statement is about."""
    if statement["kind"] in ("CreateStmt", "CreateTableAsStmt") and statement["creates"]:
        return statement["creates"][0]
    before = [t for t in statement["touches"] if t["line"] <= line] or statement["touches"]
    if not before:
        return None
    return max(before, key=lambda t: (t["line"], ll.rank(t["lock"])))["table"]


def findings(migrations, catalog, squawk=None, thresholds=None, squawk_grade="info", rehearsal=None):
    """(findings, dropped) for pending migrations in order.

    migrations: analyses from review_parse.analyse_migration; catalog: {table name as written:
    stats from the database}; squawk: {version: [squawk finding]}; rehearsal: the module's report.
    """
    thresholds = thresholds or Thresholds()
    if squawk_grade not in GRADES:
        raise ReviewPolicyError("review_squawk_grade must be one of %s, not %r" % (", ".join(GRADES), squawk_grade))
    squawk = squawk or {}
    found, dropped = [], []
    created = {}
    requested = {}
    for migration in migrations:
        version = migration["version"]
        new_here = {}
        for statement in migration["statements"]:
            for name in statement["creates"]:
                new_here.setdefault(name_key(name), version)

            def is_new(name):
                key = name_key(name)
                exists = (catalog.get(name) or {}).get("exists")
                return not exists and (key in created or key in new_here)

            for note in statement["notes"]:
                found.append(_finding(RULE_NOT_REVIEWED, "info", version, statement, None, None, note))
            for touch in statement["touches"]:
                stats = catalog.get(touch["table"]) or {}
                if is_new(touch["table"]):
                    dropped.append({"version": version, "line": touch["line"], "table": touch["table"],
                                    "rule": "lock", "why": "%s is created by %s" % (
                                        touch["table"], created.get(name_key(touch["table"]), version))})
                    continue
                if not stats.get("exists"):
                    found.append(_finding(RULE_MISSING, "info", version, statement, touch, None,
                                          "%s does not exist on this database and no reviewed migration creates it"
                                          % touch["table"]))
                    continue
                finding = _lock_finding(version, statement, touch, stats, thresholds)
                if finding:
                    found.append(finding)
                key = stats["table"]
                if key not in requested or ll.rank(touch["lock"]) > ll.rank(requested[key][2]["lock"]):
                    requested[key] = (version, statement, touch, stats)
            for item in squawk.get(version, ()):
                if not statement_holds(migration, statement, item["line"]):
                    continue
                subject = _subject(statement, item["line"])
                if subject and is_new(subject):
                    dropped.append({"version": version, "line": item["line"], "table": subject,
                                    "rule": item["rule"], "why": "%s is created by %s" % (
                                        subject, created.get(name_key(subject), version))})
                    continue
                stats = catalog.get(subject) or {} if subject else {}
                finding = _finding(item["rule"], squawk_grade, version, statement, None, None,
                                   item["message"] + (" " + item["help"] if item.get("help") else ""), source="squawk")
                finding.update(line=item["line"], table=stats.get("table") or subject,
                               rows=stats.get("rows"), total_bytes=stats.get("total_bytes"))
                found.append(finding)
        for key, where in new_here.items():
            created.setdefault(key, where)
    found.extend(_in_use_findings(requested, catalog, thresholds))
    if rehearsal and not rehearsal.get("ok", True):
        error = rehearsal.get("error") or {}
        found.append({"rule": RULE_REHEARSAL, "source": "rehearsal", "grade": "high",
                      "version": error.get("version"), "line": error.get("line"), "statement": error.get("statement"),
                      "table": None, "lock": None, "effect": None, "doc": None, "rows": None, "total_bytes": None,
                      "message": "the rehearsal on a copy failed: %s" % error.get("msg", "unknown error"),
                      "accepted": False, "reason": None})
    found.sort(key=lambda f: (-grade_rank(f["grade"]), f["version"] or "", f["line"] or 0, f["rule"]))
    return found, dropped


def statement_holds(migration, statement, line):
    """True when line falls in statement (from its first line to the next statement's)."""
    statements = migration["statements"]
    position = statements.index(statement)
    following = statements[position + 1]["line"] if position + 1 < len(statements) else None
    return statement["line"] <= line and (following is None or line < following)


def validate_accept(accept):
    """The accepted findings as a list of {rule, table, reason[, version]}; a bad entry is an error
    naming its position."""
    if accept is None:
        return []
    if not isinstance(accept, list):
        raise ReviewPolicyError("review_accept must be a list of {rule, table, reason}, not %s"
                                % type(accept).__name__)
    out = []
    for position, item in enumerate(accept):
        if not isinstance(item, dict):
            raise ReviewPolicyError("review_accept[%d] must be a mapping with rule, table and reason, not %r"
                                    % (position, item))
        unknown = sorted(set(item) - set(("rule", "table", "reason", "version")))
        if unknown:
            raise ReviewPolicyError("review_accept[%d] has unknown keys %s (allowed: rule, table, reason, version)"
                                    % (position, ", ".join(unknown)))
        for key in ("rule", "table", "reason"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ReviewPolicyError("review_accept[%d] needs a non-empty %s (a finding is accepted by rule and "
                                        "table, with the reason it is acceptable)" % (position, key))
        out.append(dict((k, str(v).strip()) for k, v in item.items()))
    return out


def _matches(entry, finding):
    if entry["rule"] != finding["rule"] or not finding.get("table"):
        return False
    if entry.get("version") and entry["version"] != finding.get("version"):
        return False
    return name_key(entry["table"]) == name_key(finding["table"])


def validate_policy(accept, stop_at):
    """The accepted findings, checked, or ReviewPolicyError naming the bad entry or stop grade."""
    if stop_at not in STOP_AT:
        raise ReviewPolicyError("the stop grade must be one of %s, not %r" % (", ".join(STOP_AT), stop_at))
    return validate_accept(accept)


def apply_policy(found, accept=None, stop_at="high"):
    """Mark accepted findings; return the policy's verdict.

    {accepted: [finding + reason], unused_accepts: [entry], max_grade, max_open_grade, stop, stop_at}
    """
    entries = validate_policy(accept, stop_at)
    used = set()
    accepted = []
    for finding in found:
        for position, entry in enumerate(entries):
            if _matches(entry, finding):
                finding["accepted"] = True
                finding["reason"] = entry["reason"]
                used.add(position)
                accepted.append(dict(rule=finding["rule"], table=finding["table"], version=finding["version"],
                                     line=finding["line"], grade=finding["grade"], reason=entry["reason"]))
                break
    open_grade = max_grade(f["grade"] for f in found if not f["accepted"])
    stop = stop_at != "never" and open_grade != "none" and grade_rank(open_grade) >= grade_rank(stop_at)
    return {"accepted": accepted, "unused_accepts": [e for i, e in enumerate(entries) if i not in used],
            "max_grade": max_grade(f["grade"] for f in found), "max_open_grade": open_grade,
            "stop": stop, "stop_at": stop_at}


def predicted_window(rehearsal):
    """Seconds the pending migrations took on the copy, or None without a successful rehearsal."""
    if not rehearsal or not rehearsal.get("ok"):
        return None
    return round(sum(s["duration_ms"] for s in rehearsal.get("statements") or ()) / 1000.0, 3)
