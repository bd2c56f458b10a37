# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance mode through the PgBouncers in front of the application (method ``pgbouncer``).

``on`` sends ``PAUSE <db>`` to every PgBouncer's admin console: each waits for the
transactions running through it to end, closes its server connections and holds new
queries until ``RESUME``; the application sees a delay, no error. All or none: if one
PgBouncer cannot be paused within the (shared) pause timeout, or refuses, every PgBouncer
this run paused is resumed and the error names what blocked. Mode ``disable`` sends
``DISABLE`` and ``KILL`` instead, for windows longer than the application can wait.
``off`` sends ``RESUME`` and ``ENABLE`` where SHOW DATABASES says they are needed, so it
is idempotent and needs no record: the state lives in the PgBouncers.

The coordination is plain Python over "console" objects (``execute(sql, timeout)``
returning rows as dicts, and ``close()``); :class:`Console` is the real one, over a
psycopg2 connection in asynchronous mode so that a PAUSE can be given up on.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import select
import time

MODES = ("pause", "disable")
_DBNAME = re.compile(r"^[A-Za-z0-9_.$-]{1,63}$")


class PgBouncerError(Exception):
    """A refused or failed change; ``result`` holds the PgBouncers' state when it failed."""

    def __init__(self, msg, result=None):
        super(PgBouncerError, self).__init__(msg)
        self.msg = msg
        self.result = result or {}


class ConsoleTimeout(Exception):
    """A console command that did not finish in time."""


class ConsoleError(Exception):
    """A PgBouncer that could not be reached or refused a command."""


def parse_bouncers(bouncers, default_database):
    """Validate the PgBouncer list: each ``{host, port, database}``; return it cleaned and named."""
    if not bouncers:
        raise PgBouncerError("pgbouncers: method pgbouncer needs at least one PgBouncer (host and port of its "
                             "admin console)")
    cleaned = []
    for n, entry in enumerate(bouncers):
        if isinstance(entry, str):
            host, sep, port = entry.rpartition(":")
            entry = dict(host=host, port=port) if sep else dict(host=entry)
        if not isinstance(entry, dict) or not entry.get("host"):
            raise PgBouncerError("pgbouncers[%d]: %r needs a host" % (n, entry))
        try:
            port = int(entry.get("port") or 6432)
        except (TypeError, ValueError):
            raise PgBouncerError("pgbouncers[%d]: port %r of %s is not a number" % (n, entry.get("port"), entry["host"]))
        if not 0 < port < 65536:
            raise PgBouncerError("pgbouncers[%d]: port %d of %s is out of range" % (n, port, entry["host"]))
        database = entry.get("database") or default_database
        if not database or not _DBNAME.match(database):
            raise PgBouncerError("pgbouncers[%d]: %r is not a PgBouncer database name" % (n, database))
        name = "%s:%d" % (entry["host"], port)
        if any(b["name"] == name for b in cleaned):
            raise PgBouncerError("pgbouncers: %s is listed twice" % name)
        cleaned.append(dict(name=name, host=entry["host"], port=port, database=database))
    return cleaned


def seconds(value, option):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PgBouncerError("%s: %r is not a number of seconds" % (option, value))
    if number < 0:
        raise PgBouncerError("%s: %r must be 0 or more seconds" % (option, value))
    return number


class Console(object):
    """One connection to a PgBouncer's admin console (psycopg2, asynchronous)."""

    def __init__(self, psycopg2, params, connect_timeout=10):
        self._ext = psycopg2.extensions
        self._error = psycopg2.Error
        self.conn = None
        try:
            self.conn = psycopg2.connect(async_=1, dbname="pgbouncer", connect_timeout=connect_timeout, **params)
            self._wait(time.monotonic() + connect_timeout)
        except psycopg2.Error as exc:
            self.close()
            raise ConsoleError(str(exc).strip())
        except ConsoleTimeout:
            self.close()
            raise ConsoleError("no answer within %ds" % connect_timeout)

    def _wait(self, deadline):
        fileno = self.conn.fileno()
        while True:
            state = self.conn.poll()
            if state == self._ext.POLL_OK:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ConsoleTimeout()
            if state == self._ext.POLL_READ:
                select.select([fileno], [], [], remaining)
            elif state == self._ext.POLL_WRITE:
                select.select([], [fileno], [], remaining)

    def execute(self, sql, timeout=None):
        try:
            cur = self.conn.cursor()
            cur.execute(sql)
            self._wait(None if timeout is None else time.monotonic() + timeout)
            if cur.description is None:
                return []
            names = [col[0] for col in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        except self._error as exc:
            raise ConsoleError(str(exc).strip())

    def close(self):
        if self.conn is not None:
            self.conn.close()


def utc_now():
    """Now in UTC, in the form the connections method reads from PostgreSQL (YYYY-MM-DDTHH:MM:SSZ)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Coordinator(object):
    """Pause or disable one database on several PgBouncers, all or none; resume them.

    PgBouncer keeps no time of a PAUSE, so enabled_at and disabled_at are the times this run switched
    (None when it found maintenance already so, or in check mode)."""

    def __init__(self, open_console, bouncers, mode="pause", pause_timeout=60, planned_window=0,
                 check_mode=False, describe_backends=None, clock=time.monotonic, now=utc_now):
        if mode not in MODES:
            raise PgBouncerError("pgbouncer_mode: %r is not one of %s" % (mode, ", ".join(MODES)))
        self.open_console = open_console
        self.bouncers = bouncers
        self.mode = mode
        self.pause_timeout = seconds(pause_timeout, "pause_timeout")
        self.planned_window = seconds(planned_window, "planned_window")
        self.check_mode = check_mode
        self.describe_backends = describe_backends
        self.clock = clock
        self.now = now

    # -- the result ------------------------------------------------------------
    def _result(self, state, entries, **fields):
        result = dict(method="pgbouncer", state=state, mode=self.mode, enabled_at=None, disabled_at=None,
                      sessions_waited=0, sessions_terminated=0, changed=False, check_mode=self.check_mode,
                      pgbouncers=[dict(e) for e in entries])
        result.update(fields)
        return result

    def _entry(self, bouncer):
        return dict(name=bouncer["name"], host=bouncer["host"], port=bouncer["port"], database=bouncer["database"],
                    paused=None, disabled=None, action="none")

    # -- reading ---------------------------------------------------------------
    @staticmethod
    def _database_row(console, bouncer):
        for row in console.execute("SHOW DATABASES"):
            if row["name"] == bouncer["database"]:
                return row
        raise PgBouncerError("PgBouncer %s has no database %s (see its [databases] section)"
                             % (bouncer["name"], bouncer["database"]))

    def _state(self, console, bouncer, entry):
        row = self._database_row(console, bouncer)
        entry["paused"] = bool(int(row.get("paused") or 0))
        entry["disabled"] = bool(int(row.get("disabled") or 0))
        return row

    def _preflight(self, console, bouncer, entry):
        row = self._state(console, bouncer, entry)
        config = dict((r["key"], r["value"]) for r in console.execute("SHOW CONFIG"))
        entry["pool_mode"] = row.get("pool_mode") or config.get("pool_mode")
        entry["query_wait_timeout"] = float(config.get("query_wait_timeout") or 0)
        if self.mode != "pause" or entry["paused"]:
            return
        if entry["pool_mode"] == "session":
            raise PgBouncerError(
                "PgBouncer %s pools %s in session mode: PAUSE would wait for every client to disconnect; use "
                "transaction pooling or pgbouncer_mode=disable" % (bouncer["name"], bouncer["database"]))
        wait = entry["query_wait_timeout"]
        if self.planned_window and wait and self.planned_window >= wait:
            raise PgBouncerError(
                "PgBouncer %s gives up on a waiting query after query_wait_timeout=%ds, but the planned window is "
                "%ds: the application would get errors; raise query_wait_timeout or use pgbouncer_mode=disable"
                % (bouncer["name"], wait, self.planned_window))

    def _blockers(self, bouncer):
        """What holds a PAUSE up: the PgBouncer's active server connections for the database."""
        try:
            console = self.open_console(bouncer)
            try:
                servers = [s for s in console.execute("SHOW SERVERS")
                           if s["database"] == bouncer["database"] and s["state"] == "active"]
            finally:
                console.close()
        except ConsoleError as exc:
            return "(could not look: %s)" % exc
        if not servers:
            return "no active server connection left"
        pids = [int(s["remote_pid"]) for s in servers if s.get("remote_pid")]
        described = self.describe_backends(pids) if self.describe_backends and pids else {}
        parts = []
        for server in servers:
            pid = int(server.get("remote_pid") or 0)
            detail = " (%s)" % described[pid] if pid in described else ""
            parts.append("user %s on PostgreSQL pid %s%s" % (server["user"], pid or "?", detail))
        return "; ".join(parts)

    # -- actions ---------------------------------------------------------------
    def status(self):
        entries = []
        for bouncer in self.bouncers:
            entry = self._entry(bouncer)
            console = self.open_console(bouncer)
            try:
                self._state(console, bouncer, entry)
            finally:
                console.close()
            entries.append(entry)
        on = [e for e in entries if e["paused"] or e["disabled"]]
        state = "on" if on else "off"
        return self._result(state, entries, msg="maintenance is %s: %s" % (
            state, ", ".join("%s %s" % (e["name"], "paused" if e["paused"] else "disabled" if e["disabled"] else
                                        "running") for e in entries)))

    def on(self):
        entries = [self._entry(b) for b in self.bouncers]
        consoles = []
        try:
            for bouncer in self.bouncers:
                try:
                    consoles.append(self.open_console(bouncer))
                except ConsoleError as exc:
                    raise PgBouncerError("PgBouncer %s: cannot reach its admin console as the admin user: %s; "
                                         "nothing was paused" % (bouncer["name"], exc),
                                         self._result("off", entries, failed=True))
            for bouncer, console, entry in zip(self.bouncers, consoles, entries):
                try:
                    self._preflight(console, bouncer, entry)
                except ConsoleError as exc:
                    raise PgBouncerError("PgBouncer %s: %s; nothing was paused" % (bouncer["name"], exc),
                                         self._result("off", entries, failed=True))
            todo = [(b, c, e) for b, c, e in zip(self.bouncers, consoles, entries)
                    if not (e["paused"] if self.mode == "pause" else e["disabled"])]
            if self.check_mode or not todo:
                for _b, _c, entry in todo:
                    entry["action"] = "would pause" if self.mode == "pause" else "would disable"
                return self._result("on", entries, changed=bool(todo), msg=self._on_msg(entries, bool(todo)))
            return self._switch_on(todo, entries)
        except PgBouncerError as exc:
            if not exc.result:
                exc.result = self._result("off", entries, failed=True)
            raise
        finally:
            for console in consoles:
                console.close()

    def _on_msg(self, entries, changes):
        verb = {"pause": "paused", "disable": "disabled"}[self.mode]
        if not changes:
            return "maintenance was already on: %s already %s" % (", ".join(e["name"] for e in entries), verb)
        return "maintenance %s on: %s %s" % ("would be turned" if self.check_mode else "turned",
                                             ", ".join(e["name"] for e in entries), verb)

    def _switch_on(self, todo, entries):
        deadline = self.clock() + self.pause_timeout
        touched = []
        waited = terminated = 0
        for bouncer, console, entry in todo:
            touched.append((bouncer, entry))
            database = bouncer["database"]
            try:
                if self.mode == "pause":
                    waited += sum(1 for s in console.execute("SHOW SERVERS")
                                  if s["database"] == database and s["state"] == "active")
                    console.execute("PAUSE %s" % database, timeout=max(0.0, deadline - self.clock()))
                    entry["action"] = "paused"
                else:
                    terminated += sum(1 for c in console.execute("SHOW CLIENTS") if c["database"] == database)
                    console.execute("DISABLE %s" % database)
                    console.execute("KILL %s" % database)
                    entry["action"] = "disabled"
                self._state(console, bouncer, entry)
            except ConsoleTimeout:
                why = ("PAUSE %s did not finish within pause_timeout=%gs; blocked by %s"
                       % (database, self.pause_timeout, self._blockers(bouncer)))
            except ConsoleError as exc:
                why = "%s refused: %s" % ("PAUSE" if self.mode == "pause" else "DISABLE/KILL", exc)
            except BaseException:
                self._undo(touched)
                raise
            else:
                continue
            undone, failed = self._undo(touched)
            raise PgBouncerError("PgBouncer %s: %s; %s" % (
                bouncer["name"], why,
                "could NOT resume %s: run maintenance_state=off" % "; ".join(failed) if failed else
                "resumed %s, so nothing is paused" % ", ".join(undone)),
                self._result("on" if failed else "off", entries, failed=True))
        return self._result("on", entries, changed=True, sessions_waited=waited, sessions_terminated=terminated,
                            enabled_at=self.now(), msg=self._on_msg(entries, True))

    def _undo(self, touched):
        """Resume (and enable) what this run touched; return (names resumed, failures)."""
        undone, failed = [], []
        for bouncer, entry in touched:
            try:
                console = self.open_console(bouncer)
                try:
                    self._release(console, bouncer, entry)
                finally:
                    console.close()
            except ConsoleError as exc:
                failed.append("%s (%s)" % (bouncer["name"], exc))
                continue
            entry["action"] = "resumed after failure"
            undone.append(bouncer["name"])
        return undone, failed

    def _release(self, console, bouncer, entry):
        self._state(console, bouncer, entry)
        done = []
        if entry["disabled"]:
            console.execute("ENABLE %s" % bouncer["database"])
            done.append("enabled")
        if entry["paused"]:
            console.execute("RESUME %s" % bouncer["database"])
            done.append("resumed")
        self._state(console, bouncer, entry)
        return done

    def off(self):
        entries = [self._entry(b) for b in self.bouncers]
        failures = []
        changed = False
        for bouncer, entry in zip(self.bouncers, entries):
            try:
                console = self.open_console(bouncer)
            except ConsoleError as exc:
                failures.append("%s: cannot reach its admin console: %s" % (bouncer["name"], exc))
                continue
            try:
                if self.check_mode:
                    self._state(console, bouncer, entry)
                    needed = entry["paused"] or entry["disabled"]
                    entry["action"] = "would resume" if needed else "none"
                else:
                    done = self._release(console, bouncer, entry)
                    needed = bool(done)
                    entry["action"] = " and ".join(done) or "none"
                changed = changed or needed
            except (ConsoleError, PgBouncerError) as exc:
                failures.append("%s: %s" % (bouncer["name"], exc))
            finally:
                console.close()
        if failures:
            raise PgBouncerError("maintenance could not be turned off on every PgBouncer (the others were): %s"
                                 % "; ".join(failures), self._result("on", entries, failed=True, changed=changed))
        if not changed:
            msg = "maintenance was not on: %s already running" % ", ".join(e["name"] for e in entries)
        else:
            msg = "maintenance %s off: %s running" % ("would be turned" if self.check_mode else "turned",
                                                      ", ".join(e["name"] for e in entries))
        return self._result("off", entries, changed=changed, msg=msg,
                            disabled_at=self.now() if changed and not self.check_mode else None)


def describe_backends(connect, pids):
    """{pid: 'idle in transaction for 12s: SELECT ...'} from pg_stat_activity, for error messages."""
    conn = connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT pid, state, extract(epoch FROM now() - xact_start)::int, left(query, 80) "
                    "FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),))
        described = {}
        for pid, state, age, query in cur.fetchall():
            described[pid] = "%s%s: %s" % (state or "?", " for %ss" % age if age is not None else "", query or "")
        conn.rollback()
        return described
    finally:
        conn.close()
