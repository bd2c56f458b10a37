#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_maintenance
short_description: Keep the application out of a PostgreSQL database, or make it wait at its PgBouncers, and let it back in
version_added: 0.2.0
description:
  - With O(method=connections), O(state=on) revokes CONNECT on the database from PUBLIC and from the application
    roles, grants it explicitly to every other login role that could connect (the migration's own user among them;
    superusers need none), records the ACL it found in C(teei_maintenance.access_state) in the same database, in
    the same transaction, then waits up to O(grace_period) for the application's sessions to end and terminates
    the rest.
  - With O(method=connections), O(state=off) undoes what the record says, puts the ACL's items back in their
    order, deletes the record and drops the C(teei_maintenance) schema. Without a record it changes nothing.
    O(state=on) when a record exists keeps it (it holds the ACL from before the first O(state=on)).
  - With O(method=pgbouncer), O(state=on) sends C(PAUSE) (or, with O(pgbouncer_mode=disable), C(DISABLE) and
    C(KILL)) for the database to every PgBouncer in O(pgbouncers), all or none, within O(pause_timeout).
    O(state=off) sends C(RESUME) and C(ENABLE) where C(SHOW DATABASES) says they are needed.
  - O(state=status) reports whether maintenance is on and changes nothing.
options:
  state:
    description: Turn maintenance V(on) or V(off), or only report its V(status).
    type: str
    choices: ['on', 'off', status]
    required: true
  method:
    description:
      - V(connections) uses the database's CONNECT privilege; the application gets an error while it is on.
      - V(pgbouncer) pauses the database on the PgBouncers the application goes through; its queries wait.
    type: str
    choices: [connections, pgbouncer]
    default: connections
  login_db:
    description: The database to put in maintenance (and, with O(method=pgbouncer), its default name in PgBouncer).
    type: str
    required: true
  app_roles:
    description: The application's roles (and, through membership, their members) to keep out; method V(connections).
    type: list
    elements: str
    default: [cockpit_app]
  grace_period:
    description: Seconds to wait for the application's sessions to end before terminating them; method V(connections).
    type: int
    default: 30
  run_id:
    description: The rollout run's id, kept in the record.
    type: str
  operator:
    description: Who turned maintenance on, kept in the record. Defaults to the database user.
    type: str
  pgbouncers:
    description: The PgBouncers' admin consoles; method V(pgbouncer).
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Address of the PgBouncer.
        type: str
        required: true
      port:
        description: Its port.
        type: int
        default: 6432
      database:
        description: The database's name in this PgBouncer's C([databases]); defaults to O(login_db).
        type: str
  pgbouncer_admin_user:
    description: A user listed in the PgBouncers' C(admin_users).
    type: str
    default: pgbouncer
  pgbouncer_admin_password:
    description: Its password; never logged.
    type: str
  pgbouncer_mode:
    description:
      - V(pause) holds the application's queries until O(state=off) (up to PgBouncer's C(query_wait_timeout)).
      - V(disable) refuses new clients and drops the connected ones, for windows longer than the application can wait.
    type: str
    choices: [pause, disable]
    default: pause
  pause_timeout:
    description:
      - Seconds all PgBouncers together may take to pause (each waits for the transactions running through it).
        On timeout every PgBouncer this run paused is resumed and the module fails naming what blocked.
    type: int
    default: 60
  planned_window:
    description:
      - Seconds the window is expected to last; with O(pgbouncer_mode=pause) the module refuses to pause a PgBouncer
        whose C(query_wait_timeout) is not longer. V(0) skips the check.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    details:
      - Method V(connections) runs the change in a transaction that is rolled back and reports what it would do.
      - Method V(pgbouncer) reads the PgBouncers' state and reports what it would change.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The user connecting with O(method=connections) must own the database or be a superuser, and needs
    C(pg_signal_backend) (or superuser) to terminate the application's sessions.
  - With O(method=pgbouncer) the migration must connect to PostgreSQL directly, not through a paused PgBouncer.
  - Passwords go in O(login_password), O(pgbouncer_admin_password) (no_log) or the environment, never on a command line.
seealso:
  - module: community.postgresql.postgresql_privs
    description: Grants and revokes privileges, but keeps no record to undo them from.
requirements:
  - psycopg2
author:
  - teei.db_rollout maintainers (@teei)
extends_documentation_fragment:
  - community.postgresql.postgres
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Keep the application out of the database
  teei.db_rollout.pg_maintenance:
    state: "on"
    login_host: db1.example.com
    login_user: teei_admin
    login_password: "{{ vault_db_password }}"
    login_db: teei_cockpit
    app_roles: [cockpit_app]
    grace_period: 30
  register: maintenance

- name: Let it back in
  teei.db_rollout.pg_maintenance:
    state: "off"
    login_host: db1.example.com
    login_user: teei_admin
    login_password: "{{ vault_db_password }}"
    login_db: teei_cockpit

- name: Make the application wait at its PgBouncers
  teei.db_rollout.pg_maintenance:
    state: "on"
    method: pgbouncer
    login_db: teei_cockpit
    pgbouncers:
      - host: pgb1.example.com
      - host: pgb2.example.com
        port: 6433
    pgbouncer_admin_user: pgbouncer_admin
    pgbouncer_admin_password: "{{ vault_pgbouncer_admin_password }}"
    pause_timeout: 30
"""

RETURN = r"""
method:
  description: The method used.
  returned: always
  type: str
  sample: connections
state:
  description: Whether maintenance is V(on) or V(off) after the run (in check mode, would be).
  returned: always
  type: str
  sample: "on"
enabled_at:
  description: When maintenance was turned on (ISO 8601 UTC), from the record with O(method=connections); null when unknown.
  returned: always
  type: str
  sample: "2026-12-02T22:10:04Z"
disabled_at:
  description: When this run turned maintenance off (ISO 8601 UTC), or null.
  returned: always
  type: str
sessions_waited:
  description:
    - V(connections) - application sessions that ended on their own within O(grace_period) (in check mode, those
      that would be waited for).
    - V(pgbouncer) - transactions PAUSE waited for.
  returned: always
  type: int
sessions_terminated:
  description: Application sessions terminated after O(grace_period), or clients PgBouncer's KILL dropped.
  returned: always
  type: int
pgbouncers:
  description: One entry per PgBouncer with its name, database, C(paused), C(disabled) and the C(action) taken.
  returned: always
  type: list
  elements: dict
revoked:
  description: Grantees whose CONNECT was revoked (V(PUBLIC) and application roles); method V(connections).
  returned: when O(method=connections)
  type: list
  elements: dict
granted:
  description: Roles granted CONNECT explicitly for the window, so that they keep connecting; method V(connections).
  returned: when O(method=connections)
  type: list
  elements: str
acl_before:
  description: The database's ACL (C(pg_database.datacl)) before maintenance was turned on.
  returned: when O(method=connections)
  type: list
  elements: str
acl_after:
  description: The database's ACL after the run.
  returned: when O(method=connections)
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
    get_conn_params,
    postgres_common_argument_spec,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.driver import psycopg2, require_psycopg2
from ansible_collections.teei.db_rollout.plugins.module_utils.maintenance import AccessControl, MaintenanceError
from ansible_collections.teei.db_rollout.plugins.module_utils.pgbouncer import (
    Console,
    ConsoleError,
    Coordinator,
    PgBouncerError,
    describe_backends,
    parse_bouncers,
)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        state=dict(type="str", required=True, choices=["on", "off", "status"]),
        method=dict(type="str", default="connections", choices=["connections", "pgbouncer"]),
        login_db=dict(type="str", required=True),
        app_roles=dict(type="list", elements="str", default=["cockpit_app"]),
        grace_period=dict(type="int", default=30),
        run_id=dict(type="str"),
        operator=dict(type="str"),
        pgbouncers=dict(type="list", elements="dict", default=[], options=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", default=6432),
            database=dict(type="str"),
        )),
        pgbouncer_admin_user=dict(type="str", default="pgbouncer"),
        pgbouncer_admin_password=dict(type="str", no_log=True),
        pgbouncer_mode=dict(type="str", default="pause", choices=["pause", "disable"]),
        pause_timeout=dict(type="int", default=60),
        planned_window=dict(type="int", default=0),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_psycopg2(module)
    params = module.params
    conn_params = dict(connect_timeout=10, application_name="teei.db_rollout pg_maintenance")
    conn_params.update(get_conn_params(module, params, warn_db_default=False))

    def connect():
        try:
            return psycopg2.connect(**conn_params)
        except psycopg2.Error as exc:
            raise MaintenanceError("unable to connect to database %s as %s: %s"
                                   % (params["login_db"], params["login_user"], str(exc).strip()))

    def open_console(bouncer):
        return Console(psycopg2, dict(host=bouncer["host"], port=bouncer["port"], user=params["pgbouncer_admin_user"],
                                      password=params["pgbouncer_admin_password"] or None))

    def describe(pids):
        try:
            return describe_backends(connect, pids)
        except (MaintenanceError, psycopg2.Error):
            return {}

    try:
        if params["method"] == "connections":
            worker = AccessControl(connect, params["login_db"], params["app_roles"], params["grace_period"],
                                   check_mode=module.check_mode, run_id=params["run_id"], operator=params["operator"])
        else:
            worker = Coordinator(open_console, parse_bouncers(params["pgbouncers"], params["login_db"]),
                                 mode=params["pgbouncer_mode"], pause_timeout=params["pause_timeout"],
                                 planned_window=params["planned_window"], check_mode=module.check_mode,
                                 describe_backends=describe)
        result = getattr(worker, params["state"])()
    except (MaintenanceError, PgBouncerError) as exc:
        module.fail_json(msg=exc.msg, **_module_result(module, exc.result))
    except (ConsoleError, psycopg2.Error) as exc:
        module.fail_json(msg="%s maintenance %s failed: %s" % (params["method"], params["state"], str(exc).strip()))
    module.exit_json(**_module_result(module, result))


def _module_result(module, result):
    result = dict(result)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    result.pop("failed", None)
    return result


if __name__ == "__main__":
    main()
