#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_preflight
short_description: Find sessions that would block a migration, and check there is room for the backup
version_added: 0.2.0
description:
  - Two boxes of the pre-migration checklist that no other module measures, each reported as
    C({name, ok, msg, details}) in RV(boxes).
  - C(blocking_sessions) lists every other session holding a lock on one of O(tables) whose transaction is
    older than O(old_transaction_threshold), or which has been idle in a transaction for
    O(idle_in_transaction_threshold) or longer, with its pid, user, application, client, age, locks and query.
  - C(backup_space) compares the free space of the filesystem holding O(backup_dir) (its nearest existing
    parent when the folder does not exist yet) on the host the module runs on with the database's size times
    O(backup_space_margin). Run the module where the backup will be written.
  - Read-only (the session is read-only); it never fails because a box does not hold, it reports it.
    Used by the C(teei.db_rollout.preflight) role, which fails once for every box that does not hold.
options:
  tables:
    description:
      - Tables the pending migrations touch, schema-qualified (C(public.companies)). Tables that do not exist
        yet are reported in C(details.tables_not_yet_created) and not checked.
    type: list
    elements: str
    default: []
  any_table:
    description:
      - Check locks on every table of the database (outside the system catalogs) instead of O(tables), as
        before a rollback, whose scripts' tables are not known in advance.
    type: bool
    default: false
  old_transaction_threshold:
    description: A transaction at least this old (PostgreSQL duration) holding a lock on one of O(tables) blocks.
    type: str
    default: 5min
  idle_in_transaction_threshold:
    description: A session idle in a transaction at least this long holding a lock on one of O(tables) blocks.
    type: str
    default: 10s
  backup_dir:
    description: Where the backup will be written, on the host the module runs on. Omit to skip C(backup_space).
    type: path
  backup_space_margin:
    description: The free space needed is the database's size (C(pg_database_size)) times this.
    type: float
    default: 1.5
  login_db:
    description: The database to check.
    type: str
    required: true
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - psycopg2
author:
  - teei.db_rollout maintainers (@teei)
extends_documentation_fragment:
  - community.postgresql.postgres
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Look for sessions that would block Phase C and check room for the backup
  teei.db_rollout.pg_preflight:
    login_host: db1.example.com
    login_user: teei_admin
    login_password: "{{ vault_db_password }}"
    login_db: teei_cockpit
    tables: [public.companies, public.users, public.sessions]
    idle_in_transaction_threshold: 5s
    backup_dir: /var/backups/teei_db_rollout
  register: checks
"""

RETURN = r"""
boxes:
  description: The C(blocking_sessions) box, and the C(backup_space) box when O(backup_dir) is set.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: V(blocking_sessions) or V(backup_space).
      type: str
    ok:
      description: Whether the box holds.
      type: bool
    msg:
      description: What was found, in words (every blocking session's pid, user, application, age and query).
      type: str
    details:
      description: The measurements (sessions, tables, free and required bytes).
      type: dict
  sample:
    - name: blocking_sessions
      ok: false
      msg: "1 session would block the migrations: pid 4242 (user app, application billing, client local,
        idle in transaction for 63s, transaction open for 64s) holds companies RowExclusiveLock; last query: UPDATE companies ..."
      details: {sessions: [{pid: 4242, user: app, application: billing, state: idle in transaction}]}
blocking_sessions:
  description: The sessions that would block (also in the box's details).
  returned: always
  type: list
  elements: dict
database_size_bytes:
  description: The database's size.
  returned: always
  type: int
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
    get_conn_params,
    postgres_common_argument_spec,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.driver import psycopg2, require_psycopg2
from ansible_collections.teei.db_rollout.plugins.module_utils.preflight import (
    PreflightError,
    blocking_sessions_box,
    check_margin,
    find_blocking_sessions,
    measure_backup_space,
    threshold_seconds,
)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        tables=dict(type="list", elements="str", default=[]),
        any_table=dict(type="bool", default=False),
        old_transaction_threshold=dict(type="str", default="5min"),
        idle_in_transaction_threshold=dict(type="str", default="10s"),
        backup_dir=dict(type="path"),
        backup_space_margin=dict(type="float", default=1.5),
        login_db=dict(type="str", required=True),
    )
    return spec


def thresholds(params):
    """Validate every input before connecting: (old transaction seconds, idle in transaction seconds)."""
    check_margin(params["backup_space_margin"])
    return (threshold_seconds(params["old_transaction_threshold"], "old_transaction_threshold"),
            threshold_seconds(params["idle_in_transaction_threshold"], "idle_in_transaction_threshold"))


def run(cur, params, old_s, idle_s):
    existing, absent, sessions = find_blocking_sessions(cur, params["tables"], old_s, idle_s, params["any_table"])
    boxes = [blocking_sessions_box(existing, absent, sessions, params["old_transaction_threshold"],
                                   params["idle_in_transaction_threshold"], params["any_table"])]
    cur.execute("SELECT pg_database_size(current_database())")
    size = cur.fetchone()[0]
    if params["backup_dir"]:
        boxes.append(measure_backup_space(params["backup_dir"], size, params["backup_space_margin"]))
    return dict(changed=False, boxes=boxes, blocking_sessions=sessions, database_size_bytes=size)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_psycopg2(module)
    params = module.params
    try:
        old_s, idle_s = thresholds(params)
    except PreflightError as exc:
        module.fail_json(msg=str(exc))
    where = "%s@%s:%s/%s" % (params["login_user"], params["login_host"] or params["login_unix_socket"] or "local",
                             params["login_port"], params["login_db"])
    try:
        conn_params = dict(connect_timeout=10)
        conn_params.update(get_conn_params(module, params, warn_db_default=False))
        conn = psycopg2.connect(**conn_params)
    except psycopg2.Error as exc:
        module.fail_json(msg="unable to connect to database %s: %s" % (where, str(exc).strip()))
    try:
        conn.set_session(readonly=True, autocommit=True)
        result = run(conn.cursor(), params, old_s, idle_s)
    except psycopg2.Error as exc:
        module.fail_json(msg="preflight checks on %s failed: %s" % (where, str(exc).strip()))
    finally:
        conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
