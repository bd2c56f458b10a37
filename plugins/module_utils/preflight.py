# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's pre-migration checklist, one box per item, in plain Python.

A box is a dict ``{name, ok, msg, details}``. The database-side boxes
(blocking_sessions, backup_space) are measured by teei.db_rollout.pg_preflight
with the functions below; ``checklist`` ticks every box of the preflight role
from what the role's tasks returned and builds its one result fact. Nothing
here imports Ansible or a database driver: the measuring functions take a
DB-API cursor.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.teei.db_rollout.plugins.module_utils.executor import duration_ms

BOX_ORDER = ("credentials", "server_version", "migration_set", "rollback_scripts", "preconditions",
             "blocking_sessions", "backup_space", "change_ticket", "nothing_pending")
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
QUERY_CHARS = 300

# Every granted relation lock another session holds on one of the tables, with the
# session, when its transaction is older than the threshold or it sits idle in a
# transaction longer than the other threshold. Any lock matters: the migrations'
# ALTER TABLE and foreign keys need locks that conflict with all of them.
BLOCKING_SESSIONS_SQL = """
SELECT a.pid,
       coalesce(a.usename, '') AS usename,
       coalesce(a.application_name, '') AS application_name,
       coalesce(host(a.client_addr), 'local') AS client,
       coalesce(a.state, '') AS state,
       floor(extract(epoch FROM now() - a.xact_start))::bigint AS transaction_age_s,
       floor(extract(epoch FROM now() - a.state_change))::bigint AS state_age_s,
       left(coalesce(a.query, ''), %(query_chars)s) AS query,
       string_agg(DISTINCT format('%%s %%s', l.relation::regclass, l.mode), ', ') AS locks
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (%(any_table)s OR l.relation = ANY(%(oids)s::oid[]))
  AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = l.relation
                    AND (n.nspname IN ('pg_catalog', 'information_schema') OR n.nspname LIKE 'pg\\_toast%%'))
  AND a.pid <> pg_backend_pid()
  AND a.xact_start IS NOT NULL
  AND (now() - a.xact_start >= make_interval(secs => %(old_s)s)
       OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
           AND now() - a.state_change >= make_interval(secs => %(idle_s)s)))
GROUP BY a.pid, a.usename, a.application_name, a.client_addr, a.state, a.xact_start,
         a.state_change, a.query
ORDER BY a.xact_start, a.pid
"""


class PreflightError(ValueError):
    """A bad input to a check; the message names it."""


def box(name, ok, msg, details=None):
    return dict(name=name, ok=bool(ok), msg=msg, details=details if details is not None else {})


def threshold_seconds(value, option):
    """A PostgreSQL duration ('30s', '5min') in seconds; PreflightError naming the option otherwise."""
    try:
        ms = duration_ms(value, option)
    except ValueError as exc:
        raise PreflightError(str(exc))
    return ms / 1000.0


# ---------------------------------------------------------------- blocking sessions
def resolve_tables(cur, tables):
    """Map each table name to its oid; tables that do not exist yet (a migration creates them) map to None."""
    if not tables:
        return {}
    cur.execute("SELECT t, to_regclass(t)::oid FROM unnest(%s::text[]) AS t", (list(tables),))
    return dict((name, oid) for name, oid in cur.fetchall())


def find_blocking_sessions(cur, tables, old_transaction_s, idle_in_transaction_s, any_table=False):
    """Sessions holding a lock on one of ``tables`` (or, with ``any_table``, on any table of the database
    outside the system catalogs) with an old transaction or idle in one.

    Returns (existing tables, tables not found, sessions as dicts).
    """
    oids = resolve_tables(cur, tables)
    existing = sorted(name for name, oid in oids.items() if oid is not None)
    absent = sorted(name for name, oid in oids.items() if oid is None)
    sessions = []
    if existing or any_table:
        cur.execute(BLOCKING_SESSIONS_SQL, dict(query_chars=QUERY_CHARS, old_s=old_transaction_s,
                                                idle_s=idle_in_transaction_s, any_table=bool(any_table),
                                                oids=[oids[name] for name in existing]))
        for row in cur.fetchall():
            sessions.append(dict(pid=row[0], user=row[1], application=row[2], client=row[3], state=row[4],
                                 transaction_age_s=row[5], state_age_s=row[6], query=row[7], locks=row[8]))
    return existing, absent, sessions


def describe_session(session):
    if session["state"] in IDLE_IN_TRANSACTION:
        doing = "%s for %ss" % (session["state"], session["state_age_s"])
    else:
        doing = session["state"] or "state unknown"
    return ("pid %s (user %s, application %s, client %s, %s, transaction open for %ss) holds %s; "
            "last query: %s" % (session["pid"], session["user"] or "?", session["application"] or "''",
                                session["client"], doing, session["transaction_age_s"], session["locks"],
                                " ".join(session["query"].split())))


def blocking_sessions_box(existing, absent, sessions, old_transaction_threshold, idle_in_transaction_threshold,
                          any_table=False):
    details = dict(tables=existing, tables_not_yet_created=absent, sessions=sessions, any_table=bool(any_table),
                   old_transaction_threshold=old_transaction_threshold,
                   idle_in_transaction_threshold=idle_in_transaction_threshold)
    if sessions:
        return box("blocking_sessions", False,
                   "%d session%s would block the migrations: %s" % (
                       len(sessions), "" if len(sessions) == 1 else "s",
                       "; ".join(describe_session(s) for s in sessions)), details)
    if not existing and not any_table:
        return box("blocking_sessions", True, "no existing table to check", details)
    return box("blocking_sessions", True,
               "no transaction older than %s and no session idle in transaction for %s holds a lock on %s"
               % (old_transaction_threshold, idle_in_transaction_threshold,
                  "any table" if any_table else ", ".join(existing)), details)


# ---------------------------------------------------------------- backup space
def nearest_existing(path):
    """``path`` or its nearest existing parent (the backup folder may not exist yet)."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def free_bytes(path):
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def human(size):
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024.0


def backup_space_box(backup_dir, checked, free, database_size, margin):
    required = int(database_size * margin)
    details = dict(backup_dir=backup_dir, checked_path=checked, free_bytes=free,
                   database_size_bytes=database_size, margin=margin, required_bytes=required)
    where = backup_dir if checked == os.path.abspath(backup_dir) else "%s (checked at %s)" % (backup_dir, checked)
    if free < required:
        return box("backup_space", False,
                   "not enough room for the backup in %s: %s free, need %s (database %s x margin %s)"
                   % (where, human(free), human(required), human(database_size), margin), details)
    return box("backup_space", True, "%s free in %s, need %s (database %s x margin %s)"
               % (human(free), where, human(required), human(database_size), margin), details)


def check_margin(margin):
    if margin <= 0:
        raise PreflightError("backup_space_margin must be more than 0, not %s" % margin)
    return margin


def measure_backup_space(backup_dir, database_size, margin):
    """The backup_space box for a backup of ``database_size`` bytes written to ``backup_dir`` on this host."""
    checked = nearest_existing(backup_dir)
    return backup_space_box(backup_dir, checked, free_bytes(checked), database_size, check_margin(margin))


# ---------------------------------------------------------------- the checklist
def _not_checked(name, why):
    return box(name, False, "not checked: %s" % why)


def _failed_task(result):
    return bool(result) and bool(result.get("failed")) and not result.get("skipped")


def _ran(result):
    return bool(result) and not result.get("skipped")


def credentials_box(ping, where):
    if not _ran(ping):
        return _not_checked("credentials", "the connection was not tried")
    details = dict(where=where)
    if _failed_task(ping) or not ping.get("is_available"):
        reason = ping.get("conn_err_msg") or ping.get("msg") or "server not available"
        return box("credentials", False, "cannot connect to %s: %s" % (where, " ".join(str(reason).split())),
                   details)
    return box("credentials", True, "connected to %s" % where, details)


def server_version_box(ping, accepted):
    accepted = [int(v) for v in accepted]
    version = (ping or {}).get("server_version") or {}
    if not version:
        return _not_checked("server_version", "no connection")
    details = dict(major=version.get("major"), full=version.get("full"), accepted=accepted)
    if version.get("major") not in accepted:
        names = ", ".join(str(v) for v in accepted) or "none"
        return box("server_version", False, "server is PostgreSQL %s; this rollout accepts major version%s %s "
                   "(preflight_accepted_major_versions)"
                   % (version.get("full"), "" if len(accepted) == 1 else "s", names), details)
    return box("server_version", True, "server is PostgreSQL %s" % version.get("full"), details)


def _status_ok(status):
    return _ran(status) and not _failed_task(status)


def migration_set_box(status, set_path):
    if not _ran(status):
        return _not_checked("migration_set", "no connection")
    if _failed_task(status):
        return box("migration_set", False, "the migration set %s cannot be read: %s" % (set_path, status.get("msg")),
                   dict(path=set_path))
    problems = list(status.get("problems") or [])
    details = dict(path=set_path, migration_set=status.get("migration_set"),
                   applied=list(status.get("applied_versions") or []), pending=list(status.get("pending") or []),
                   problems=problems, current_version=status.get("current_version"),
                   last_run=status.get("last_run"))
    if problems:
        return box("migration_set", False, "the migration set %s disagrees with the history table: %s"
                   % (status.get("migration_set"), "; ".join(problems)), details)
    return box("migration_set", True, "set %s is valid: %d applied, %d pending"
               % (status.get("migration_set"), len(details["applied"]), len(details["pending"])), details)


def rollback_scripts_box(status):
    if not _status_ok(status):
        return _not_checked("rollback_scripts", "the migration set's status is unknown")
    if "missing_rollbacks" not in status:
        return box("rollback_scripts", False, "the engine did not report missing_rollbacks (pg_migrate state: status)")
    missing = list(status["missing_rollbacks"] or [])
    pending = list(status.get("pending") or [])
    details = dict(pending=pending, missing_rollbacks=missing)
    if missing:
        return box("rollback_scripts", False, "pending migration%s without a rollback script: %s"
                   % ("" if len(missing) == 1 else "s", ", ".join("rollback/%s.sql" % v for v in missing)), details)
    if not pending:
        return box("rollback_scripts", True, "nothing pending", details)
    return box("rollback_scripts", True, "every pending migration has a rollback script", details)


def rollback_plan_box(status, rollback, target):
    """rollback_scripts for a rollback: the engine's own plan (check mode) of rolling back to ``target``."""
    if not _status_ok(status):
        return _not_checked("rollback_scripts", "the migration set's status is unknown")
    if not target:
        return box("rollback_scripts", False, "a rollback needs a target version (migrate_target, or none for "
                   "the whole set)", dict(target=None))
    if not _ran(rollback):
        return _not_checked("rollback_scripts", "the rollback was not planned")
    details = dict(target=target, to_roll_back=list(rollback.get("rolled_back") or []))
    if _failed_task(rollback):
        return box("rollback_scripts", False, "the rollback to %s cannot run: %s" % (target, rollback.get("msg")),
                   details)
    if not details["to_roll_back"]:
        return box("rollback_scripts", True, "nothing to roll back to %s" % target, details)
    return box("rollback_scripts", True, "every migration to roll back has a rollback script: %s"
               % ", ".join(details["to_roll_back"]), details)


def to_roll_back(rollback):
    if not _ran(rollback) or _failed_task(rollback):
        return None
    return list(rollback.get("rolled_back") or [])


def preconditions_box(status):
    if not _status_ok(status):
        return _not_checked("preconditions", "the migration set's status is unknown")
    if "preconditions" not in status:
        return box("preconditions", False, "the engine did not report preconditions (pg_migrate check_preconditions)")
    results = list(status["preconditions"] or [])
    failed = [r for r in results if not r.get("ok")]
    details = dict(preconditions=results)
    if failed:
        return box("preconditions", False, "precondition%s failed: %s" % (
            "" if len(failed) == 1 else "s", "; ".join("%s: %s" % (r.get("version"), r.get("msg")) for r in failed)),
            details)
    if not results:
        return box("preconditions", True, "no pending migration has a precondition", details)
    return box("preconditions", True, "%d precondition%s hold: %s" % (
        len(results), "" if len(results) == 1 else "s", ", ".join(r.get("version") for r in results)), details)


def _session_boxes(sessions, status, nothing_to_do, purpose="rollout"):
    """The blocking_sessions and backup_space boxes from pg_preflight's result."""
    if nothing_to_do:
        what = "nothing pending" if purpose == "rollout" else "nothing to roll back"
        return [box("blocking_sessions", True, "%s: no migration takes a lock" % what),
                box("backup_space", True, "%s: no backup is taken" % what)]
    if not _status_ok(status):
        return [_not_checked("blocking_sessions", "the migration set's status is unknown"),
                _not_checked("backup_space", "the migration set's status is unknown")]
    if not _ran(sessions):
        return [_not_checked("blocking_sessions", "pg_preflight did not run"),
                _not_checked("backup_space", "pg_preflight did not run")]
    if _failed_task(sessions):
        why = "pg_preflight failed: %s" % sessions.get("msg")
        return [box("blocking_sessions", False, why), box("backup_space", False, why)]
    by_name = dict((b["name"], b) for b in sessions.get("boxes") or [])
    return [by_name.get("blocking_sessions") or _not_checked("blocking_sessions", "pg_preflight did not report it"),
            by_name.get("backup_space") or _not_checked("backup_space", "no backup_dir was given")]


def change_ticket_box(ticket, required, pattern, environment):
    ticket = (ticket or "").strip()
    details = dict(change_ticket=ticket or None, required=bool(required), pattern=pattern, environment=environment)
    if not required:
        return box("change_ticket", True, "not required in environment %s%s"
                   % (environment, " (ticket %s)" % ticket if ticket else ""), details)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        return box("change_ticket", False, "preflight_change_ticket_pattern %r is not a regular expression: %s"
                   % (pattern, exc), details)
    if not ticket:
        return box("change_ticket", False, "a %s run needs a change ticket matching %s: pass -e change_ticket=..."
                   % (environment, pattern), details)
    if not regex.search(ticket):
        return box("change_ticket", False, "change ticket %r does not match %s (preflight_change_ticket_pattern)"
                   % (ticket, pattern), details)
    return box("change_ticket", True, "change ticket %s" % ticket, details)


def nothing_to_roll_back_box(status, doomed, target):
    if doomed is None:
        return _not_checked("nothing_pending", "the rollback could not be planned")
    details = dict(to_roll_back=doomed, target=target, current_version=status.get("current_version"))
    if not doomed:
        return box("nothing_pending", True, "nothing to roll back: %s is at %s" % (
            status.get("migration_set"), status.get("current_version") or "no version"), details)
    return box("nothing_pending", True, "%d to roll back to %s: %s" % (len(doomed), target, ", ".join(doomed)),
               details)


def nothing_pending_box(status):
    if not _status_ok(status):
        return _not_checked("nothing_pending", "the migration set's status is unknown")
    pending = list(status.get("pending") or [])
    details = dict(pending=pending, current_version=status.get("current_version"))
    if not pending:
        return box("nothing_pending", True, "nothing is pending at %s: the rollout changes nothing"
                   % (status.get("current_version") or "no version"), details)
    return box("nothing_pending", True, "%d pending: %s" % (len(pending), ", ".join(pending)), details)


def checklist(ping=None, status=None, sessions=None, accepted_major_versions=(15,), change_ticket=None,
              require_change_ticket=False, change_ticket_pattern="^CHG[0-9]+$", environment="local",
              where="", migration_path="", purpose="rollout", rollback=None, rollback_target=""):
    """Every box of the preflight checklist and the role's result fact (``preflight_result``).

    ``purpose`` rollout checks what applying the pending migrations needs; rollback checks what rolling
    back to ``rollback_target`` needs (``rollback`` is pg_migrate's plan of it, in check mode): its
    rollback scripts, and locks on any table. ``nothing_pending`` is then "nothing to roll back".
    """
    if purpose not in ("rollout", "rollback"):
        raise PreflightError("preflight_purpose must be rollout or rollback, not %s" % purpose)
    boxes = [credentials_box(ping, where),
             server_version_box(ping, accepted_major_versions),
             migration_set_box(status, migration_path)]
    doomed = None
    if purpose == "rollout":
        nothing_to_do = _status_ok(status) and not (status.get("pending") or [])
        boxes.append(rollback_scripts_box(status))
        boxes.append(preconditions_box(status))
    else:
        doomed = to_roll_back(rollback) if _status_ok(status) and rollback_target else None
        nothing_to_do = doomed == []
        boxes.append(rollback_plan_box(status, rollback, rollback_target))
        boxes.append(box("preconditions", True, "a rollback runs no precondition"))
    boxes.extend(_session_boxes(sessions, status, nothing_to_do, purpose))
    boxes.append(change_ticket_box(change_ticket, require_change_ticket, change_ticket_pattern, environment))
    if purpose == "rollout":
        boxes.append(nothing_pending_box(status))
    else:
        boxes.append(nothing_to_roll_back_box(status, doomed, rollback_target))
    failed = [b for b in boxes if not b["ok"]]
    if failed:
        msg = "preflight: %d of %d checklist boxes do not hold: %s" % (
            len(failed), len(boxes), "; ".join("[%s] %s" % (b["name"], b["msg"]) for b in failed))
    elif purpose == "rollback":
        msg = "preflight: every box holds; %s" % boxes[-1]["msg"]
    elif nothing_to_do:
        msg = "preflight: every box holds; nothing is pending, the rest of the rollout is skipped"
    else:
        msg = "preflight: every box holds; %d migration%s pending" % (
            len(status.get("pending")), "" if len(status.get("pending")) == 1 else "s")
    version = ((ping or {}).get("server_version") or {}).get("full")
    result = dict(changed=False, failed=bool(failed), msg=msg, boxes=boxes, nothing_pending=bool(nothing_to_do),
                  server_version=version, pending=list((status or {}).get("pending") or []),
                  current_version=(status or {}).get("current_version") if _status_ok(status) else None,
                  failed_boxes=[b["name"] for b in failed], report=report(boxes), purpose=purpose)
    if purpose == "rollback":
        result["to_roll_back"] = doomed
    return result


def report(boxes):
    """One line per box, for people: ``[ok] name: msg`` or ``[FAILED] name: msg``."""
    return ["[%s] %s: %s" % ("ok" if b["ok"] else "FAILED", b["name"], b["msg"]) for b in boxes]
