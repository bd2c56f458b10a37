# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The review in words: a fixed-width table for a terminal and the Markdown a ticket cites.

Plain Python: no Ansible, no database.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_grade import human_bytes

COLUMNS = (("grade", 5), ("rule", 34), ("table", 24), ("where", 34), ("lock", 22), ("rows", 10), ("size", 10))


def _row(finding):
    where = "%s:%s" % (finding.get("version") or "-", finding.get("line") or "-")
    grade = finding["grade"] + ("*" if finding.get("accepted") else "")
    rows = finding.get("rows")
    return {"grade": grade, "rule": finding["rule"], "table": finding.get("table") or "-", "where": where,
            "lock": finding.get("lock") or "-", "rows": "-" if rows is None else "%d" % max(rows, 0),
            "size": "-" if finding.get("total_bytes") is None else human_bytes(finding["total_bytes"])}


def _cut(text, width):
    text = str(text)
    return text if len(text) <= width else text[:width - 1] + "~"


def text_table(database, findings, verdict, window):
    """A fixed-width table of the findings (accepted ones marked *), and the verdict."""
    lines = ["Review of %s: %d finding(s), highest %s%s" % (
        database, len(findings), verdict["max_grade"],
        "; predicted window %.3f s (rehearsed on a copy)" % window if window is not None else "")]
    if findings:
        lines.append("  ".join(name.ljust(width) for name, width in COLUMNS).rstrip())
        for finding in findings:
            row = _row(finding)
            lines.append("  ".join(_cut(row[name], width).ljust(width) for name, width in COLUMNS).rstrip())
    for item in verdict["accepted"]:
        lines.append("* accepted %s on %s: %s" % (item["rule"], item["table"], item["reason"]))
    if verdict["stop"]:
        lines.append("STOP: an open finding is graded %s, at or above the stop grade %s"
                     % (verdict["max_open_grade"], verdict["stop_at"]))
    return "\n".join(lines)


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(database, findings, verdict, window, rehearsal=None):
    """The review as Markdown: verdict, window, findings, acceptances."""
    out = ["### Review of `%s`" % database, ""]
    out.append("- Highest grade: **%s**; stop grade: %s; %s" % (
        verdict["max_grade"], verdict["stop_at"], "**the run stops**" if verdict["stop"] else "the run may go on"))
    if window is not None:
        out.append("- Predicted maintenance window: **%.3f s**, measured by a rehearsal on a copy of this database"
                   % window)
    elif rehearsal and not rehearsal.get("ok", True):
        out.append("- Rehearsal on a copy failed: %s" % _md((rehearsal.get("error") or {}).get("msg", "")))
    else:
        out.append("- Predicted maintenance window: not measured (no rehearsal)")
    out.append("")
    if findings:
        out.append("| Grade | Rule | Table | Where | Lock | Rows | Size | Finding |")
        out.append("|---|---|---|---|---|---|---|---|")
        for finding in findings:
            row = _row(finding)
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % tuple(_md(v) for v in (
                row["grade"], row["rule"], row["table"], row["where"], row["lock"], row["rows"], row["size"],
                finding["message"])))
    else:
        out.append("No findings.")
    if verdict["accepted"]:
        out += ["", "Accepted findings:", ""]
        for item in verdict["accepted"]:
            out.append("- `%s` on `%s` (%s, %s:%s): %s"
                       % (item["rule"], item["table"], item["grade"], item["version"], item["line"], _md(item["reason"])))
    return "\n".join(out) + "\n"
