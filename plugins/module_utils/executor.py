# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carry a plan out against one PostgreSQL database.

The Runner takes a function that opens a DB-API connection (psycopg2's), a
MigrationSet, a HistoryTable and RunOptions, and returns the run's result as a
dict, or raises MigrationError carrying the partial result. It imports neither
Ansible nor psycopg2.

Guarantees it keeps:
- one run at a time per database and history table (a session advisory lock,
  waited for by PostgreSQL itself up to ``run_lock_timeout``; the error names
  who holds it);
- PostgreSQL 14 or newer (the session settings below need it), said clearly;
- every precondition runs, read-only, before the first change;
- a migration, its verification and its history row commit together or not at
  all; a failure names the script, the statement, its line and PostgreSQL's
  message;
- a migration, no-transaction statement or rollback that cannot get its locks
  within ``lock_timeout`` is retried with backoff (one retry helper for every
  path), then fails naming the blocking pid and query; blockers are looked up
  only while the run's session is really waiting on a lock;
- a statement that ends the engine's transaction itself fails the run, saying
  so (the controller's parser refuses such statements first);
- the server abandons the run's transaction and lock within seconds of the
  client dying (client_connection_check_interval and TCP keepalives);
- a no-transaction migration never leaves an INVALID index of its own behind
  (it checks and drops only the indexes its statements name, never an
  application's build in progress) and is recorded only after its last
  statement and its verification succeed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import re
import threading
import time

from ansible_collections.teei.db_rollout.plugins.module_utils.planning import REPORTS, plan as make_plan

LOCK_NOT_AVAILABLE = "55P03"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")
_UNIT_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000, None: 1}
SESSION_SETTINGS = (
    # The server checks every 2 s that the client is still there while a statement
    # runs, and TCP keepalives find a lost host: a dead controller's transaction and
    # run lock are abandoned within seconds, not when the running statement ends.
    ("client_connection_check_interval", "2s"),
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
)
MAX_BACKOFF_MS = 30000
MIN_SERVER_VERSION = 140000
# libpq's PQtransactionStatus (psycopg2 and psycopg 3 report the same numbers): inside a transaction.
TRANSACTION_INTRANS = 2


def duration_ms(text, option="duration"):
    """Parse a PostgreSQL duration ('2s', '500ms', '1min', '0') into milliseconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError("%s %r is not a PostgreSQL duration such as 500ms, 2s or 1min" % (option, text))
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


class MigrationError(Exception):
    """A run that failed; ``result`` holds what the run did before it failed."""

    def __init__(self, msg, result=None):
        super(MigrationError, self).__init__(msg)
        self.msg = msg
        self.result = result or {}
        self.transaction_ended = False  # a script ended the engine's transaction itself


class LockTimeout(Exception):
    pass


class RunOptions(object):
    def __init__(self, state="applied", target=None, transaction="per_migration", verify=True,
                 check_mode=False, rehearse=False, lock_timeout="5s", statement_timeout="0",
                 lock_retries=3, lock_retry_delay="1s", run_lock_timeout="60s",
                 allow_out_of_order=False, run_id=None, change_ticket=None, applied_by=None,
                 engine="teei.db_rollout", check_preconditions=True):
        self.state = state
        self.target = target
        self.transaction = transaction
        self.verify = verify
        self.check_mode = check_mode
        self.rehearse = rehearse
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        self.lock_retries = lock_retries
        self.run_lock_timeout = run_lock_timeout
        self.allow_out_of_order = allow_out_of_order
        self.check_preconditions = check_preconditions
        self.run = dict(run_id=run_id, change_ticket=change_ticket, applied_by=applied_by, engine=engine)
        # Validate every duration before anything connects.
        self.lock_timeout_ms = duration_ms(lock_timeout, "lock_timeout")
        duration_ms(statement_timeout, "statement_timeout")
        self.lock_retry_delay_ms = duration_ms(lock_retry_delay, "lock_retry_delay")
        self.run_lock_timeout_ms = duration_ms(run_lock_timeout, "run_lock_timeout")
        if lock_retries < 0:
            raise ValueError("lock_retries must be 0 or more, not %d" % lock_retries)


def describe_db_error(exc):
    """PostgreSQL's message with its detail, hint and context, on one line each."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    if not primary:
        return str(exc).strip()
    parts = ["%s: %s" % (getattr(diag, "severity", None) or "ERROR", primary)]
    for label, attr in (("DETAIL", "message_detail"), ("HINT", "message_hint"), ("CONTEXT", "context")):
        value = getattr(diag, attr, None)
        if value:
            parts.append("%s: %s" % (label, value.strip()))
    sqlstate = getattr(diag, "sqlstate", None)
    if sqlstate:
        parts.append("SQLSTATE %s" % sqlstate)
    return "; ".join(parts)


def _sqlstate(exc):
    return (getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
            or getattr(getattr(exc, "diag", None), "sqlstate", None))


class ScriptFailed(Exception):
    """A statement of a script failed; message names script, statement and line."""

    def __init__(self, script, statement, exc):
        line = statement.line
        position = getattr(getattr(exc, "diag", None), "statement_position", None)
        if position:
            line += statement.sql[:int(position) - 1].count("\n")
        self.sqlstate = _sqlstate(exc)
        self.cause = exc
        super(ScriptFailed, self).__init__(
            "%s failed at statement %d (line %d): %s"
            % (script.relpath, statement.index, line, describe_db_error(exc)))


class TransactionEnded(Exception):
    """A statement ended the transaction the engine ran it in (a second line of defence: the
    controller's parser refuses transaction control in transactional scripts)."""

    def __init__(self, script, statement):
        self.sqlstate = None
        super(TransactionEnded, self).__init__(
            "%s statement %d (line %d) ended the transaction the engine ran it in: what ran in that transaction "
            "before it was committed or rolled back by it, outside the engine's control, and no history row was "
            "written for it; check the database by hand before the next run" % (script.relpath, statement.index,
                                                                                statement.line))


class BlockerMonitor(object):
    """Watches, from a second session, who blocks the run's session while it waits for a lock.

    pg_blocking_pids() takes the lock manager's locks, so it is called only while
    pg_stat_activity shows the run's session waiting on a lock (wait_event_type
    'Lock'); otherwise the monitor reads only that session's activity row."""

    def __init__(self, connect, interval=0.1):
        self.connect = connect
        self.interval = interval
        self.pid = None
        self.blockers = []
        self.error = None
        self.armed = threading.Event()
        self._stop = threading.Event()
        self._thread = None

    def start(self, pid):
        self.pid = pid
        self._thread = threading.Thread(target=self._watch, name="pg_migrate-blocker-monitor")
        self._thread.daemon = True
        self._thread.start()

    def arm(self):
        """Start watching afresh (a new attempt begins)."""
        self.blockers = []
        self.armed.set()

    def disarm(self):
        self.armed.clear()

    def _watch(self):
        try:
            conn = self.connect()
            conn.autocommit = True
        except Exception as exc:  # the run goes on; describe() says the monitor never watched
            self.error = "the blocker monitor could not connect (%s)" % getattr(exc, "msg", exc)
            return
        try:
            cur = conn.cursor()
            cur.execute("SET application_name = 'teei.db_rollout blocker monitor'")
            while not self._stop.wait(self.interval):
                if not self.armed.is_set():
                    continue
                cur.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (self.pid,))
                row = cur.fetchone()
                if not (row and row[0]):
                    continue
                cur.execute(
                    "SELECT a.pid, coalesce(a.usename, '') || coalesce(', application ' || "
                    "nullif(a.application_name, ''), ''), coalesce(a.state, ''), "
                    "left(coalesce(a.query, ''), 300) FROM pg_stat_activity a "
                    "WHERE a.pid = ANY(pg_blocking_pids(%s)) ORDER BY a.pid", (self.pid,))
                rows = cur.fetchall()
                if rows:
                    self.blockers = rows
        except Exception as exc:
            self.error = "the blocker monitor failed (%s)" % describe_db_error(exc)
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def describe(self):
        if self.blockers:
            return "; ".join("blocked by pid %s (user %s, %s): %s" % row for row in self.blockers)
        if self.error:
            return "blockers unknown: %s" % self.error
        return "no blocking session was seen"

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)


class Runner(object):
    def __init__(self, connect, mset, history, options, sleep=time.sleep, clock=time.monotonic):
        self.connect = connect
        self.mset = mset
        self.history = history
        self.opts = options
        self.sleep = sleep
        self.clock = clock
        self.conn = None
        self.cur = None
        self.monitor = None
        self.locked = False
        self.plan = None
        self.warned = set()
        self.result = dict(changed=False, applied=[], rolled_back=[], pending=[], migrations=[],
                           current_version=None, previous_version=None, history_changes=[],
                           warnings=[], migration_set=mset.name, history_table=history.name,
                           run_id=options.run.get("run_id"), state=options.state,
                           rehearsed=False, notices=[])

    # ------------------------------------------------------------------ entry
    def run(self):
        try:
            self._open()
            return self._run()
        except MigrationError as exc:
            exc.result = self._finish()
            raise
        except Exception as exc:  # a lost connection and the like
            raise MigrationError("%s: %s" % (self._where(), describe_db_error(exc)), self._finish())
        finally:
            self._close()

    def _where(self):
        return "set %s on history table %s" % (self.mset.name, self.history.name)

    def _open(self):
        self.conn = self.connect()
        self.conn.autocommit = True
        version = getattr(self.conn, "server_version", None) or self.conn.info.server_version
        self.result["server_version"] = "%d.%d" % (version // 10000, version % 100)
        if version < MIN_SERVER_VERSION:
            raise MigrationError("PostgreSQL %s is too old for pg_migrate: it needs 14 or newer (the session setting "
                                 "client_connection_check_interval, which lets the server abandon a dead run)"
                                 % self.result["server_version"])
        self.cur = self.conn.cursor()
        app = ("teei.db_rollout %s" % (self.opts.run.get("run_id") or ""))[:63]
        settings = (("application_name", app),) + SESSION_SETTINGS
        self.cur.execute("SELECT " + ", ".join(["set_config(%s, %s, false)"] * len(settings)),
                         [value for setting in settings for value in setting])

    def _close(self):
        if self.monitor is not None:
            self.monitor.stop()
        if self.conn is not None:
            try:
                if self.locked:
                    self.history.unlock(self.cur)
            except Exception:
                pass
            try:
                self.conn.close()
            except Exception:
                pass

    def _finish(self):
        result = self.result
        if self.plan is not None and not self.opts.check_mode and self.opts.state not in REPORTS:
            self._refresh_versions(self.plan)
        if self.conn is not None:
            result["notices"] = [n.strip() for n in getattr(self.conn, "notices", [])]
        return result

    # ------------------------------------------------------------------ flow
    def _run(self):
        opts = self.opts
        writes = not opts.check_mode or opts.rehearse
        if opts.state not in REPORTS and writes:
            self._take_run_lock()
        rows = self.history.read(self.cur)
        try:
            plan = make_plan(self.mset, rows, opts.state, opts.target, opts.allow_out_of_order, opts.transaction)
        except ValueError as exc:
            raise MigrationError(str(exc))
        self.plan = plan
        result = self.result
        result["pending"] = list(plan.pending)
        result["previous_version"] = plan.current_version
        result["current_version"] = plan.current_version
        result["warnings"].extend(plan.warnings)
        result["problems"] = list(plan.problems)
        result["diff"] = dict(before=dict(versions=list(plan.applied)),
                              after=dict(versions=plan.versions_after()))
        result["planned"] = [m.version for m in plan.to_apply] or [m.version for m in plan.to_rollback]
        if opts.state == "status":
            self._status(plan)
            return self._finish()
        if opts.state == "verified":
            self._verified(plan)
            return self._finish()
        if opts.check_mode:
            result["changed"] = bool(plan.to_apply or plan.to_rollback)
            if opts.rehearse and (plan.to_apply or plan.to_rollback):
                self._run_checks(plan.to_apply)
                self._rehearse(plan)
            else:
                key = "applied" if opts.state == "applied" else "rolled_back"
                result[key] = list(result["planned"])
            return self._finish()
        if plan.to_apply:
            self._run_checks(plan.to_apply)
        if not (opts.state == "applied" and opts.transaction == "all"):
            self._ensure_history()  # with transaction: all, inside the batch's transaction
        if opts.state == "applied":
            self._apply(plan)
        else:
            self._roll_back(plan)
        return self._finish()

    # ------------------------------------------------------------------ reports
    def _status(self, plan):
        """What is applied and pending, what a rollout would need, and what the last run did."""
        result = self.result
        result["applied_versions"] = list(plan.applied)
        result["missing_rollbacks"] = [v for v in plan.pending if self.mset.get(v).rollback is None]
        result["preconditions"] = []
        if self.opts.check_preconditions:
            for version in plan.pending:
                check = self.mset.get(version).check
                if check is None:
                    continue
                try:
                    self._transaction("precondition %s" % check.relpath,
                                      lambda cur, c=check: self._exec_script(c, cur), read_only=True, commit=False)
                    result["preconditions"].append(dict(version=version, ok=True, msg="%s holds" % check.relpath))
                except MigrationError as exc:
                    result["preconditions"].append(dict(version=version, ok=False, msg=exc.msg))
        result["last_run"] = self.history.last_run(self.cur, self.mset.name)
        run_id = self.opts.run.get("run_id")
        if run_id:
            result["run_changes"] = self.history.run_changes(self.cur, run_id)

    def _verified(self, plan):
        """Run every applied migration's verification, and the set's when the set is complete, each in a
        transaction that is always rolled back; fail naming every verification that failed."""
        checks = [self.mset.get(v).verify for v in plan.applied if self.mset.get(v).verify is not None]
        if self.mset.verify is not None:
            if plan.pending:
                self.result["warnings"].append("%s not run: %d migration%s of the set %s pending"
                                               % (self.mset.verify.relpath, len(plan.pending),
                                                  "" if len(plan.pending) == 1 else "s",
                                                  "is" if len(plan.pending) == 1 else "are"))
            else:
                checks.append(self.mset.verify)
        verifications = []
        for script in checks:
            try:
                self._transaction("verification %s" % script.relpath,
                                  lambda cur, s=script: self._exec_script(s, cur), commit=False)
                verifications.append(dict(name=script.relpath, ok=True, msg="%s passed" % script.relpath))
            except MigrationError as exc:
                verifications.append(dict(name=script.relpath, ok=False, msg=exc.msg))
        self.result["verifications"] = verifications
        failed = [v for v in verifications if not v["ok"]]
        if failed:
            raise MigrationError("%d verification%s of set %s failed: %s" % (
                len(failed), "" if len(failed) == 1 else "s", self.mset.name, "; ".join(v["msg"] for v in failed)))

    def _refresh_versions(self, plan):
        done = set(self.result["applied"])
        gone = set(self.result["rolled_back"])
        applied = set(plan.applied)
        versions = [v for v in self.mset.versions if (v in applied and v not in gone) or v in done]
        self.result["current_version"] = versions[-1] if versions else None
        self.result["diff"]["after"] = dict(versions=versions)
        kept = set(versions)
        self.result["pending"] = [v for v in self.mset.versions if v not in kept]

    # ------------------------------------------------------------------ run lock
    def _take_run_lock(self):
        """Wait for the run lock in PostgreSQL itself (pg_advisory_lock under lock_timeout)."""
        self.cur.execute("SELECT set_config('lock_timeout', %s, false)", (self.opts.run_lock_timeout,))
        try:
            self.history.lock(self.cur)
        except Exception as exc:
            if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
                raise
            holders = self.history.lock_holders(self.cur) or ["a session that has since ended"]
            raise MigrationError(
                "another run holds the migration lock for %s on this database; waited %s: held by %s"
                % (self.history.name, self.opts.run_lock_timeout, "; ".join(holders)))
        finally:
            self.cur.execute("RESET lock_timeout")
        self.locked = True

    def _ensure_history(self):
        def work(cur):
            self.result["history_changes"].extend(self.history.ensure(cur))
        self._transaction("history table %s" % self.history.name, work)
        if self.result["history_changes"]:
            self.result["changed"] = True

    # ------------------------------------------------------------------ scripts
    def _exec_script(self, script, cur):
        """Run a transactional script's statements in cur's open transaction."""
        if script.warnings and script.relpath not in self.warned:
            self.warned.add(script.relpath)
            self.result["warnings"].extend(script.warnings)
        info = getattr(self.conn, "info", None)
        for statement in script.statements:
            try:
                cur.execute(statement.sql)
            except Exception as exc:
                if _sqlstate(exc) is None:
                    raise
                raise ScriptFailed(script, statement, exc)
            if info is not None and info.transaction_status != TRANSACTION_INTRANS:
                raise TransactionEnded(script, statement)

    _timeouts_sql = "SELECT set_config('lock_timeout', %s, %s), set_config('statement_timeout', %s, %s)"

    def _timeouts_args(self, local):
        return (str(self.opts.lock_timeout), local, str(self.opts.statement_timeout), local)

    def _transaction(self, label, work, read_only=False, commit=True):
        """Run work(cur) in one transaction, retried on lock timeout; raise MigrationError on failure.

        With commit=False the transaction is always rolled back (a rehearsal, a report)."""
        def attempt():
            # One round trip opens the transaction and sets its timeouts.
            self.cur.execute(("BEGIN READ ONLY" if read_only else "BEGIN") + "; " + self._timeouts_sql,
                             self._timeouts_args(True))
            try:
                outcome = work(self.cur)
                self.cur.execute("COMMIT" if commit else "ROLLBACK")
                return outcome
            except Exception:
                self._rollback_quietly()
                raise
        return self._with_lock_retries(label, attempt)

    def _with_lock_retries(self, label, attempt):
        """Call attempt() until it does not hit lock_timeout, at most lock_retries more times, with a doubling
        backoff; return (its outcome, attempts). Every path (transaction, no-transaction statement, rollback)
        retries through here; attempt() undoes its own try before raising."""
        attempts = 0
        while True:
            attempts += 1
            try:
                with self._watched():
                    return attempt(), attempts
            except Exception as exc:
                if _sqlstate(exc) == LOCK_NOT_AVAILABLE and attempts <= self.opts.lock_retries:
                    self._backoff(attempts)
                    continue
                raise self._failure(label, exc, attempts)

    @contextlib.contextmanager
    def _watched(self):
        """Watch for blocking sessions while the block runs (a new attempt starts afresh)."""
        if self.monitor is not None:
            self.monitor.arm()
        try:
            yield
        finally:
            if self.monitor is not None:
                self.monitor.disarm()

    @contextlib.contextmanager
    def _session_timeouts(self):
        """lock_timeout and statement_timeout for the session, outside a transaction, reset afterwards."""
        self.cur.execute(self._timeouts_sql, self._timeouts_args(False))
        try:
            yield
        finally:
            self.cur.execute("RESET lock_timeout; RESET statement_timeout")

    def _rollback_quietly(self):
        try:
            self.cur.execute("ROLLBACK")
        except Exception:
            pass

    def _backoff(self, attempts):
        delay = min(self.opts.lock_retry_delay_ms * (2 ** (attempts - 1)), MAX_BACKOFF_MS)
        self.sleep(delay / 1000.0)

    def _failure(self, label, exc, attempts):
        if isinstance(exc, MigrationError):
            return exc
        if isinstance(exc, TransactionEnded):
            error = MigrationError(str(exc))
            error.transaction_ended = True
            return error
        text = str(exc) if isinstance(exc, ScriptFailed) else "%s: %s" % (label, describe_db_error(exc))
        if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
            blockers = self.monitor.describe() if self.monitor is not None else "blockers unknown: no monitor ran"
            text = ("%s could not get its locks within lock_timeout %s after %d attempt%s; %s. (%s)"
                    % (label, self.opts.lock_timeout, attempts, "" if attempts == 1 else "s", blockers, text))
        return MigrationError(text)

    def _start_monitor(self):
        if self.monitor is None:
            self.cur.execute("SELECT pg_backend_pid()")
            self.monitor = BlockerMonitor(self.connect)
            self.monitor.start(self.cur.fetchone()[0])

    # ------------------------------------------------------------------ checks
    def _run_checks(self, migrations):
        failures = []
        for migration in migrations:
            if migration.check is None:
                continue
            try:
                self._transaction("precondition %s" % migration.check.relpath,
                                  lambda cur, m=migration: self._exec_script(m.check, cur), read_only=True)
            except MigrationError as exc:
                failures.append("precondition %s" % exc.msg)
        if failures:
            raise MigrationError("; ".join(failures) + "; nothing was changed")

    # ------------------------------------------------------------------ apply
    def _completes_set(self, plan, migration):
        """True when applying migration brings every migration of the set in (it is the last one the plan
        applies, and the plan applies every pending one)."""
        return (migration is plan.to_apply[-1]
                and len(plan.applied) + len(plan.to_apply) == len(self.mset.migrations))

    def _apply_and_record(self, plan, migration, started, cur):
        self._apply_body(plan, migration, cur)
        return self._record(migration, started, 0, cur)

    def _apply_body(self, plan, migration, cur):
        self._exec_script(migration.script, cur)
        self._verify(plan, migration, cur)

    def _verify(self, plan, migration, cur):
        if not self.opts.verify:
            return
        if migration.verify is not None:
            self._exec_script(migration.verify, cur)
        if self.mset.verify is not None and self._completes_set(plan, migration):
            self._exec_script(self.mset.verify, cur)

    def _record(self, migration, started, attempts, cur):
        """Write the applied migration's history row; return its result entry."""
        entry = self._entry(migration, started, attempts, "applied")
        self.history.record(cur, migration, self.mset.name, entry["duration_ms"], self.opts.run)
        return entry

    def _entry(self, migration, started, attempts, action):
        """The result entry of a migration applied or rolled back now."""
        return dict(version=migration.version, action=action, duration_ms=int(round((self.clock() - started) * 1000)),
                    checksum=migration.checksum, statements=len(migration.script.statements),
                    attempts=attempts, no_transaction=migration.no_transaction)

    def _apply(self, plan):
        self._start_monitor()
        if self.opts.transaction == "all":
            entries = []

            def batch(cur):
                del entries[:]
                self.result["history_changes"] = self.history.ensure(cur)
                for migration in plan.to_apply:
                    started = self.clock()
                    self._apply_body(plan, migration, cur)
                    entries.append(self._record(migration, started, 1, cur))
            try:
                dummy, attempts = self._transaction("the batch of %d migrations" % len(plan.to_apply), batch)
            except MigrationError as exc:
                raise MigrationError("%s; transaction: all rolled the whole batch back, nothing was applied"
                                     % exc.msg)
            if self.result["history_changes"]:
                self.result["changed"] = True
            for entry in entries:
                entry["attempts"] = attempts
                self._committed(entry, "applied")
            return
        for migration in plan.to_apply:
            if migration.no_transaction:
                self._apply_no_transaction(plan, migration)
                continue
            started = self.clock()
            try:
                entry, attempts = self._transaction(
                    migration.version, lambda cur, m=migration, t0=started: self._apply_and_record(plan, m, t0, cur))
            except MigrationError as exc:
                left = self.result["current_version"] or "the state before this run"
                if exc.transaction_ended:
                    raise MigrationError("%s; the database is left at %s plus whatever that statement committed"
                                         % (exc.msg, left))
                raise MigrationError("%s; the database is left at %s" % (exc.msg, left))
            entry["attempts"] = attempts
            self._committed(entry, "applied")

    def _committed(self, entry, action):
        self.result["migrations"].append(entry)
        self.result[action].append(entry["version"])
        self.result["changed"] = True
        if action == "applied":
            self.result["current_version"] = entry["version"]

    # ------------------------------------------------------------------ no-transaction
    def _invalid_named_indexes(self, script):
        """The INVALID indexes among those the script's statements name (as the parser read them)."""
        if not script.indexes:
            return []
        self.cur.execute("SELECT i.indexrelid::regclass::text FROM unnest(%s::text[]) AS n(name) "
                         "JOIN pg_index i ON i.indexrelid = to_regclass(n.name) WHERE NOT i.indisvalid ORDER BY 1",
                         (list(script.indexes),))
        return [row[0] for row in self.cur.fetchall()]

    def _drop_indexes(self, names):
        for name in names:
            self.cur.execute("DROP INDEX CONCURRENTLY IF EXISTS %s" % name)

    def _run_no_transaction(self, label, script):
        """Run a no-transaction script statement by statement in autocommit, each with lock retries; drop any
        INVALID index the script names when a statement fails. Returns the attempts made."""
        # An INVALID index left by an earlier, interrupted build would be skipped by
        # CREATE INDEX CONCURRENTLY IF NOT EXISTS and taken as done: drop it first.
        leftovers = self._invalid_named_indexes(script)
        if leftovers:
            self._drop_indexes(leftovers)
            self.result["warnings"].append("%s: dropped INVALID index %s left by an interrupted build"
                                           % (label, ", ".join(leftovers)))
        dropped = []

        def attempt(statement):
            try:
                self.cur.execute(statement.sql)
            except Exception as exc:
                if _sqlstate(exc) is None:
                    raise
                invalid = self._invalid_named_indexes(script)
                self._drop_indexes(invalid)
                dropped[:] = invalid
                raise ScriptFailed(script, statement, exc)

        attempts_total = 0
        with self._session_timeouts():
            for statement in script.statements:
                try:
                    dummy, attempts = self._with_lock_retries(label, lambda st=statement: attempt(st))
                except MigrationError as exc:
                    note = (" (dropped the INVALID index %s it left)" % ", ".join(dropped)) if dropped else ""
                    raise MigrationError("%s%s; %s is a no-transaction script: the statements before statement %d "
                                         "stay applied" % (exc.msg, note, script.relpath, statement.index))
                attempts_total += attempts
            invalid = self._invalid_named_indexes(script)
            if invalid:
                self._drop_indexes(invalid)
                raise MigrationError("%s left INVALID index %s (dropped)" % (script.relpath, ", ".join(invalid)))
        return attempts_total

    def _apply_no_transaction(self, plan, migration):
        started = self.clock()
        try:
            attempts = self._run_no_transaction(migration.version, migration.script)
        except MigrationError as exc:
            raise MigrationError("%s; it is not recorded as applied" % exc.msg)
        try:
            entry, dummy = self._transaction(
                "%s (verification and history row)" % migration.version,
                lambda cur: self._verify_and_record(plan, migration, started, attempts, cur))
        except MigrationError as exc:
            raise MigrationError("%s; %s is a no-transaction migration: its statements stay applied and it is not "
                                 "recorded as applied" % (exc.msg, migration.version))
        entry["attempts"] = attempts
        self._committed(entry, "applied")

    def _verify_and_record(self, plan, migration, started, attempts, cur):
        self._verify(plan, migration, cur)
        return self._record(migration, started, attempts, cur)

    # ------------------------------------------------------------------ rehearse
    def _rehearse(self, plan):
        """Apply pending migrations and their verifications in one transaction, then roll it back."""
        self._start_monitor()

        def work(cur):
            rehearsed = []
            self.history.ensure(cur)
            for migration in plan.to_rollback:
                if migration.rollback.no_transaction:
                    self.result["warnings"].append(
                        "rollback/%s is a no-transaction script and cannot be rehearsed in a transaction; the "
                        "rehearsal stopped before it" % migration.script.relpath)
                    break
                rehearsed.append(self._rollback_body(migration, cur))
            for migration in plan.to_apply:
                if migration.no_transaction:
                    self.result["warnings"].append(
                        "%s is a no-transaction migration and cannot be rehearsed in a transaction; the "
                        "rehearsal stopped before it" % migration.version)
                    break
                started = self.clock()
                self._apply_body(plan, migration, cur)
                rehearsed.append(self._record(migration, started, 1, cur))
            return rehearsed

        try:
            rehearsed, dummy = self._transaction("rehearsal", work, commit=False)
        except MigrationError as exc:
            raise MigrationError("rehearsal failed, nothing was changed: %s" % exc.msg)
        key = "applied" if plan.to_apply else "rolled_back"
        for entry in rehearsed:
            entry["action"] = "rehearsed"
        self.result["rehearsed"] = True
        self.result["migrations"] = rehearsed
        self.result[key] = [e["version"] for e in rehearsed]

    # ------------------------------------------------------------------ roll back
    def _roll_back(self, plan):
        self._start_monitor()
        if self.opts.transaction == "all":
            entries = []

            def batch(cur):
                del entries[:]
                for migration in plan.to_rollback:
                    entries.append(self._rollback_body(migration, cur))
            try:
                dummy, attempts = self._transaction("the rollback batch", batch)
            except MigrationError as exc:
                raise MigrationError("%s; transaction: all kept the whole batch, nothing was rolled back" % exc.msg)
            for entry in entries:
                entry["attempts"] = attempts
                self._committed(entry, "rolled_back")
            return
        for migration in plan.to_rollback:
            try:
                if migration.rollback.no_transaction:
                    started = self.clock()
                    attempts = self._run_no_transaction(migration.rollback.relpath, migration.rollback)
                    entry, dummy = self._transaction(
                        migration.version, lambda cur, m=migration: self._forget(m, cur, started))
                else:
                    entry, attempts = self._transaction(
                        migration.version, lambda cur, m=migration: self._rollback_body(m, cur))
            except MigrationError as exc:
                self._refresh_versions(plan)
                left = "the database is left at %s" % self.result["current_version"]
                if migration.rollback.no_transaction:
                    left = ("%s stays recorded as applied; %s, plus what the script's statements before the "
                            "failing one did" % (migration.version, left))
                elif exc.transaction_ended:
                    left += " plus whatever that statement committed"
                raise MigrationError("%s; %s" % (exc.msg, left))
            entry["attempts"] = attempts
            self._committed(entry, "rolled_back")

    def _rollback_body(self, migration, cur):
        started = self.clock()
        self._exec_script(migration.rollback, cur)
        return self._forget(migration, cur, started)

    def _forget(self, migration, cur, started):
        entry = self._entry(migration, started, 1, "rolled_back")
        self.history.forget(cur, migration.version, self.mset.name, migration.rollback.checksum,
                            entry["duration_ms"], self.opts.run)
        entry["checksum"] = migration.rollback.checksum
        entry["statements"] = len(migration.rollback.statements)
        return entry
