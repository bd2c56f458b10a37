# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance mode with the database's own access control (method ``connections``).

``on`` keeps the application roles out of one database and ``off`` lets them back in,
exactly as they were. It imports neither Ansible nor psycopg2: the caller passes a
function that opens a DB-API connection (psycopg2's).

How ``on`` keeps the application out, in one transaction that also writes the record:
- PostgreSQL grants CONNECT on every database to PUBLIC by default, so revoking it from
  the application roles alone would not stop them. ``on`` revokes CONNECT from PUBLIC and
  from each application role, then grants CONNECT explicitly to every other login role
  that could connect before (the migration's own user among them), except superusers, who
  need none, and members of an application role, who are the application too.
- It then checks that no application role can still connect (for example through a role
  it is a member of) and that the migration's user can; otherwise it rolls back and fails.
- The record (the ACL before, what was revoked and granted) is a row of
  ``teei_maintenance.access_state`` in the target database: it commits with the change,
  so it exists exactly when maintenance is on, and any later run from any controller
  finds it.
After the commit it waits up to the grace period for the application's sessions to end
and terminates the rest.

``off`` undoes what the record says ``on`` did, puts the ACL's items back in their order,
deletes the record and drops the schema when nothing else is in it. Without a record it
changes nothing. Check mode runs the same transaction and rolls it back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time

from ansible_collections.teei.db_rollout.plugins.module_utils.history import quote_ident

RECORD_SCHEMA = "teei_maintenance"
RECORD_TABLE = "access_state"
PUBLIC = "PUBLIC"
# Advisory lock class 'tm': one maintenance change at a time per database.
LOCK_CLASS = 0x746D
_ROLE_NAME = re.compile(r"^[^\x00]{1,63}$")


class MaintenanceError(Exception):
    """A refused or failed change; ``result`` holds what was done before it failed."""

    def __init__(self, msg, result=None):
        super(MaintenanceError, self).__init__(msg)
        self.msg = msg
        self.result = result or {}


def grantee_sql(name):
    return PUBLIC if name == PUBLIC else quote_ident(name)


def validate_options(app_roles, grace_period, database):
    """Refuse bad input before anything connects; return the cleaned role list."""
    if not database:
        raise MaintenanceError("login_db: the database to put in maintenance is required")
    if not app_roles:
        raise MaintenanceError("app_roles: name at least one application role to keep out")
    cleaned = []
    for role in app_roles:
        if not isinstance(role, str) or not _ROLE_NAME.match(role):
            raise MaintenanceError("app_roles: %r is not a role name" % (role,))
        if role.upper() == PUBLIC:
            raise MaintenanceError("app_roles: PUBLIC is not a role; name the application's login roles")
        if role not in cleaned:
            cleaned.append(role)
    try:
        grace = float(grace_period)
    except (TypeError, ValueError):
        raise MaintenanceError("grace_period: %r is not a number of seconds" % (grace_period,))
    if grace < 0:
        raise MaintenanceError("grace_period: %r must be 0 or more seconds" % (grace_period,))
    return cleaned, grace


def privileges_of(items, grantee):
    """{privilege: grantable} that ``grantee``'s own ACL items hold (any grantor)."""
    privs = {}
    for item in items:
        if item["grantee"] == grantee:
            for priv, grantable in item["privileges"].items():
                privs[priv] = privs.get(priv, False) or grantable
    return privs


def plan_revokes(items, app_roles):
    """Grantees whose CONNECT ``on`` revokes: PUBLIC and the application roles that hold it."""
    revokes = []
    for grantee in [PUBLIC] + list(app_roles):
        privs = privileges_of(items, grantee)
        if "CONNECT" in privs:
            revokes.append({"grantee": grantee, "grantable": privs["CONNECT"]})
    return revokes


def restore_statements(database, record):
    """The GRANT/REVOKE statements that undo what ``on`` recorded, in order."""
    db = quote_ident(database)
    statements = []
    for grantee in record["granted"]:
        statements.append("REVOKE CONNECT ON DATABASE %s FROM %s" % (db, grantee_sql(grantee)))
    for revoke in record["revoked"]:
        statements.append("GRANT CONNECT ON DATABASE %s TO %s%s" % (
            db, grantee_sql(revoke["grantee"]), " WITH GRANT OPTION" if revoke["grantable"] else ""))
    return statements


def reorder_statements(database, owner, recorded, current):
    """Statements that put ``current``'s items in ``recorded``'s order.

    Both are lists of items ``{text, grantee, grantor, privileges}``. PostgreSQL appends
    an item that a GRANT creates, so one that REVOKE removed comes back at the end: every
    item from the first one out of place on is revoked and granted again, in the recorded
    order. Returns None when the two hold different items (someone else changed the ACL),
    or when an item to rebuild was granted by a role other than the owner (only the owner
    can grant it back as it was).
    """
    rec_texts = [i["text"] for i in recorded]
    cur_texts = [i["text"] for i in current]
    if rec_texts == cur_texts:
        return []
    if sorted(rec_texts) != sorted(cur_texts):
        return None
    first = next(n for n, (a, b) in enumerate(zip(rec_texts, cur_texts)) if a != b)
    tail = recorded[first:]
    if any(item["grantor"] != owner for item in tail):
        return None
    db = quote_ident(database)
    statements = ["REVOKE ALL ON DATABASE %s FROM %s" % (db, grantee_sql(i["grantee"])) for i in tail]
    for item in tail:
        plain = sorted(p for p, g in item["privileges"].items() if not g)
        grantable = sorted(p for p, g in item["privileges"].items() if g)
        if plain:
            statements.append("GRANT %s ON DATABASE %s TO %s" % (", ".join(plain), db, grantee_sql(item["grantee"])))
        if grantable:
            statements.append("GRANT %s ON DATABASE %s TO %s WITH GRANT OPTION"
                              % (", ".join(grantable), db, grantee_sql(item["grantee"])))
    return statements


def _rows(cur):
    names = [col[0] for col in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _now_iso(cur):
    cur.execute("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
    return cur.fetchone()[0]


ACL_ITEMS = """
SELECT i.ord, i.item::text AS text,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
       pg_get_userbyid(a.grantor) AS grantor, a.privilege_type, a.is_grantable
FROM pg_database d,
     unnest(coalesce(d.datacl, acldefault('d', d.datdba))) WITH ORDINALITY AS i(item, ord),
     aclexplode(ARRAY[i.item]) AS a
WHERE d.datname = %s
ORDER BY i.ord, a.privilege_type
"""

CAN_CONNECT = """
SELECT r.rolname FROM pg_roles r
WHERE r.rolcanlogin AND NOT r.rolsuper AND has_database_privilege(r.oid, %s, 'CONNECT')
ORDER BY r.rolname
"""


class AccessControl(object):
    """Maintenance on and off for one database through its CONNECT privilege."""

    def __init__(self, connect, database, app_roles, grace_period=30, check_mode=False, run_id=None,
                 operator=None, poll_interval=0.5, sleep=time.sleep, clock=time.monotonic):
        self.connect = connect
        self.database = database
        self.app_roles, self.grace_period = validate_options(app_roles, grace_period, database)
        self.check_mode = check_mode
        self.run_id = run_id
        self.operator = operator
        self.poll_interval = poll_interval
        self.sleep = sleep
        self.clock = clock
        self.table = "%s.%s" % (quote_ident(RECORD_SCHEMA), quote_ident(RECORD_TABLE))

    # -- the result ----------------------------------------------------------
    def _result(self, state, **fields):
        result = dict(method="connections", state=state, database=self.database, app_roles=self.app_roles,
                      enabled_at=None, disabled_at=None, sessions_waited=0, sessions_terminated=0,
                      pgbouncers=[], changed=False, check_mode=self.check_mode, revoked=[], granted=[],
                      acl_before=None, acl_after=None, record="%s.%s" % (RECORD_SCHEMA, RECORD_TABLE),
                      warnings=[])
        result.update(fields)
        return result

    # -- reading -------------------------------------------------------------
    def _database(self, cur):
        cur.execute("SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, d.datacl::text[] AS datacl, "
                    "d.datconnlimit FROM pg_database d WHERE d.datname = %s", (self.database,))
        rows = _rows(cur)
        if not rows:
            raise MaintenanceError("database %s does not exist" % self.database)
        return rows[0]

    def _items(self, cur):
        cur.execute(ACL_ITEMS, (self.database,))
        items = []
        for row in _rows(cur):
            if not items or items[-1]["ord"] != row["ord"]:
                items.append(dict(ord=row["ord"], text=row["text"], grantee=row["grantee"],
                                  grantor=row["grantor"], privileges={}))
            items[-1]["privileges"][row["privilege_type"]] = bool(row["is_grantable"])
        for item in items:
            del item["ord"]
        return items

    def _can_connect(self, cur):
        cur.execute(CAN_CONNECT, (self.database,))
        return [row[0] for row in cur.fetchall()]

    def _record_exists(self, cur):
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", ("%s.%s" % (RECORD_SCHEMA, RECORD_TABLE),))
        return cur.fetchone()[0]

    def _read_record(self, cur, lock=False):
        if not self._record_exists(cur):
            return None
        cur.execute("SELECT enabled_at_text, record FROM %s WHERE id = 1%s"
                    % (self.table, " FOR UPDATE" if lock else ""))
        row = cur.fetchone()
        if row is None:
            return None
        record = row[1] if isinstance(row[1], dict) else json.loads(row[1])
        record["enabled_at"] = row[0]
        return record

    def _check_login_user(self, cur, owner):
        cur.execute("SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
                    "pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = %s), 'USAGE')",
                    (self.database,))
        user, is_super, owns = cur.fetchone()
        if not (is_super or owns):
            raise MaintenanceError(
                "user %s may not change who connects to database %s: connect as its owner (%s) or a superuser"
                % (user, self.database, owner))
        return user, is_super

    def _check_app_roles(self, cur, login_user):
        cur.execute("SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY(%s)", (self.app_roles,))
        found = dict(cur.fetchall())
        missing = [r for r in self.app_roles if r not in found]
        if missing:
            raise MaintenanceError("app_roles: role %s does not exist" % ", ".join(missing))
        supers = [r for r in self.app_roles if found[r]]
        if supers:
            raise MaintenanceError("app_roles: %s is a superuser; the database's access control cannot keep a "
                                   "superuser out" % ", ".join(supers))
        # A superuser is a member of every role, and needs no CONNECT: only others can be locked out.
        cur.execute("SELECT r.rolname FROM pg_roles r, pg_roles u WHERE r.rolname = ANY(%s) AND u.rolname = %s "
                    "AND NOT u.rolsuper AND pg_has_role(u.oid, r.oid, 'MEMBER')", (self.app_roles, login_user))
        own = [row[0] for row in cur.fetchall()]
        if own:
            raise MaintenanceError("app_roles: the migration's own user %s is (a member of) application role %s; "
                                   "maintenance would lock the migration out" % (login_user, ", ".join(own)))

    def _app_members(self, cur, candidates):
        """Those of ``candidates`` that are members of an application role."""
        if not candidates:
            return []
        cur.execute("SELECT DISTINCT m.rolname FROM pg_roles m, pg_roles a WHERE m.rolname = ANY(%s) "
                    "AND NOT m.rolsuper AND a.rolname = ANY(%s) AND pg_has_role(m.oid, a.oid, 'MEMBER')",
                    (list(candidates), self.app_roles))
        return [row[0] for row in cur.fetchall()]

    def _sessions(self, cur):
        cur.execute("SELECT a.pid, a.usename, a.state FROM pg_stat_activity a "
                    "WHERE a.datname = %s AND a.pid <> pg_backend_pid() AND a.usesysid IN ("
                    "  SELECT m.oid FROM pg_roles m, pg_roles r WHERE r.rolname = ANY(%s) AND NOT m.rolsuper "
                    "  AND pg_has_role(m.oid, r.oid, 'MEMBER')) ORDER BY a.pid",
                    (self.database, self.app_roles))
        return _rows(cur)

    # -- actions -------------------------------------------------------------
    def status(self):
        conn = self.connect()
        try:
            cur = conn.cursor()
            db = self._database(cur)
            record = self._read_record(cur)
            conn.rollback()
        finally:
            conn.close()
        if record is None:
            return self._result("off", acl_after=db["datacl"], msg="maintenance is off for %s" % self.database)
        return self._result("on", enabled_at=record["enabled_at"], revoked=record["revoked"],
                            granted=record["granted"], acl_before=record["datacl"], acl_after=db["datacl"],
                            msg="maintenance is on for %s since %s" % (self.database, record["enabled_at"]))

    def on(self):
        conn = self.connect()
        try:
            result = self._on_transaction(conn)
            self._drain_sessions(conn, result)
        finally:
            conn.close()
        return result

    def _lock(self, cur):
        cur.execute("SELECT pg_advisory_xact_lock(%s, (SELECT oid::int FROM pg_database WHERE datname = %s))",
                    (LOCK_CLASS, self.database))

    def _on_transaction(self, conn):
        cur = conn.cursor()
        try:
            db = self._database(cur)
            user, _is_super = self._check_login_user(cur, db["owner"])
            self._check_app_roles(cur, user)
            self._lock(cur)
            record = self._read_record(cur, lock=True)
            if record is not None:
                conn.rollback()
                return self._result("on", enabled_at=record["enabled_at"], revoked=record["revoked"],
                                    granted=record["granted"], acl_before=record["datacl"],
                                    acl_after=db["datacl"], already_on=True,
                                    msg="maintenance was already on for %s since %s; its record is kept"
                                        % (self.database, record["enabled_at"]))
            items = self._items(cur)
            before = self._can_connect(cur)
            dbq = quote_ident(self.database)
            revokes = plan_revokes(items, self.app_roles)
            for revoke in revokes:
                cur.execute("REVOKE CONNECT ON DATABASE %s FROM %s" % (dbq, grantee_sql(revoke["grantee"])))
            after = self._can_connect(cur)
            lost = [r for r in before if r not in after and r not in self.app_roles]
            members = self._app_members(cur, lost)
            granted = [r for r in lost if r not in members]
            for role in granted:
                cur.execute("GRANT CONNECT ON DATABASE %s TO %s" % (dbq, quote_ident(role)))
            now = self._can_connect(cur)
            still = [r for r in now if r in self.app_roles]
            still += self._app_members(cur, [r for r in now if r not in self.app_roles])
            if still:
                raise MaintenanceError(
                    "%s can still connect to %s after CONNECT was revoked from PUBLIC and the application roles "
                    "(through a role it is a member of, or a grant by another grantor); nothing was changed"
                    % (", ".join(still), self.database))
            cur.execute("CREATE SCHEMA IF NOT EXISTS %s" % quote_ident(RECORD_SCHEMA))
            cur.execute("COMMENT ON SCHEMA %s IS %%s" % quote_ident(RECORD_SCHEMA),
                        ("teei.db_rollout maintenance mode: what maintenance_state=off restores",))
            cur.execute("CREATE TABLE IF NOT EXISTS %s (id int PRIMARY KEY CHECK (id = 1), "
                        "enabled_at timestamptz NOT NULL DEFAULT now(), enabled_at_text text NOT NULL, "
                        "run_id text, enabled_by text, record jsonb NOT NULL)" % self.table)
            record = dict(datacl=db["datacl"], items=items, owner=db["owner"], connlimit=db["datconnlimit"],
                          revoked=revokes, granted=granted, app_roles=self.app_roles, locked_out=members)
            enabled_at = _now_iso(cur)
            cur.execute("INSERT INTO %s (id, enabled_at_text, run_id, enabled_by, record) VALUES (1, %%s, %%s, %%s, %%s)"
                        % self.table, (enabled_at, self.run_id, self.operator or user, json.dumps(record)))
            acl_after = self._database(cur)["datacl"]
            if self.check_mode:
                conn.rollback()
            else:
                conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return self._result(
            "on", changed=True, enabled_at=enabled_at, revoked=revokes, granted=granted, acl_before=db["datacl"],
            acl_after=acl_after, already_on=False,
            msg="maintenance %s on for %s: CONNECT revoked from %s%s" % (
                "would be turned" if self.check_mode else "turned", self.database,
                ", ".join(r["grantee"] for r in revokes) or "nobody (it was not granted)",
                "; granted explicitly to %s" % ", ".join(granted) if granted else ""))

    def _drain_sessions(self, conn, result):
        """Wait up to the grace period for the application's sessions, then terminate the rest."""
        cur = conn.cursor()
        first = self._sessions(cur)
        conn.rollback()
        result["sessions"] = [dict(pid=s["pid"], user=s["usename"], state=s["state"]) for s in first]
        if self.check_mode or not first:
            result["sessions_waited"] = len(first) if self.check_mode else 0
            return
        deadline = self.clock() + self.grace_period
        remaining = first
        while remaining and self.clock() < deadline:
            self.sleep(min(self.poll_interval, max(0.0, deadline - self.clock())))
            remaining = self._sessions(cur)
            conn.rollback()
        result["sessions_waited"] = len(first) - len(remaining)
        if not remaining:
            return
        cur.execute("SELECT pid, pg_terminate_backend(pid, 10000) FROM unnest(%s::int[]) AS pid",
                    ([s["pid"] for s in remaining],))
        outcome = dict(cur.fetchall())
        conn.rollback()
        result["sessions_terminated"] = sum(1 for ok in outcome.values() if ok)
        left = [s for s in self._sessions(cur) if s["pid"] in outcome]
        conn.rollback()
        if left:
            raise MaintenanceError(
                "maintenance is on for %s but %d application session(s) could not be terminated (pid %s): the "
                "migration's user needs the pg_signal_backend role or superuser; run maintenance_state=off to "
                "let the application back in" % (self.database, len(left), ", ".join(str(s["pid"]) for s in left)),
                result)
        result["changed"] = True

    def off(self):
        conn = self.connect()
        try:
            cur = conn.cursor()
            try:
                db = self._database(cur)
                if not self._record_exists(cur):
                    conn.rollback()
                    return self._result("off", acl_after=db["datacl"],
                                        msg="maintenance was not on for %s (nothing recorded): nothing to do"
                                            % self.database)
                self._check_login_user(cur, db["owner"])
                self._lock(cur)
                record = self._read_record(cur, lock=True)
                if record is None:
                    conn.rollback()
                    return self._result("off", acl_after=db["datacl"],
                                        msg="maintenance was not on for %s (nothing recorded): nothing to do"
                                            % self.database)
                result = self._restore(cur, db, record)
                self._drop_record(cur)
                if self.check_mode:
                    conn.rollback()
                else:
                    conn.commit()
            except BaseException:
                conn.rollback()
                raise
        finally:
            conn.close()
        return result

    def _restore(self, cur, db, record):
        warnings = []
        cur.execute("SELECT rolname FROM pg_roles")
        roles = set(row[0] for row in cur.fetchall()) | {PUBLIC}
        dropped = [r for r in record["granted"] + [x["grantee"] for x in record["revoked"]] if r not in roles]
        if dropped:
            warnings.append("role %s was dropped during the window; its CONNECT is not restored" % ", ".join(dropped))
        live = dict(record, granted=[r for r in record["granted"] if r in roles],
                    revoked=[x for x in record["revoked"] if x["grantee"] in roles])
        for statement in restore_statements(self.database, live):
            cur.execute(statement)
        reorder = reorder_statements(self.database, db["owner"], record["items"], self._items(cur))
        if reorder is None:
            warnings.append("the ACL of %s was changed by someone else during the window; those changes are kept"
                            % self.database)
        else:
            for statement in reorder:
                cur.execute(statement)
        after = self._database(cur)["datacl"]
        restored = [i["text"] for i in self._items(cur)] == [i["text"] for i in record["items"]]
        if record["datacl"] is None:
            warnings.append("the ACL of %s was PostgreSQL's default (NULL); it is restored as the same privileges "
                            "written out" % self.database)
        disabled_at = _now_iso(cur)
        return self._result(
            "off", changed=True, enabled_at=record["enabled_at"], disabled_at=disabled_at,
            revoked=record["revoked"], granted=record["granted"], acl_before=record["datacl"], acl_after=after,
            acl_restored=restored, warnings=warnings,
            msg="maintenance %s off for %s (on since %s): CONNECT granted back to %s" % (
                "would be turned" if self.check_mode else "turned", self.database, record["enabled_at"],
                ", ".join(x["grantee"] for x in live["revoked"]) or "nobody"))

    def _drop_record(self, cur):
        cur.execute("DROP TABLE IF EXISTS %s" % self.table)
        cur.execute("SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid) + "
                    "(SELECT count(*) FROM pg_proc WHERE pronamespace = n.oid) + "
                    "(SELECT count(*) FROM pg_type WHERE typnamespace = n.oid) FROM pg_namespace n "
                    "WHERE n.nspname = %s", (RECORD_SCHEMA,))
        row = cur.fetchone()
        if row is not None and row[0] == 0:
            cur.execute("DROP SCHEMA %s" % quote_ident(RECORD_SCHEMA))
