#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_review
short_description: Review the pending migrations of a set against the live PostgreSQL database they will run on
version_added: 0.2.0
description:
  - Reads the migration set on the controller and parses every migration with pglast; for each statement, the
    tables it touches, the lock mode it takes on each (the collection's one lock-level table, after PostgreSQL's
    documentation), whether it scans or rewrites the whole table under that lock, and the tables it creates.
  - Runs the pinned C(squawk) linter on the controller with its JSON reporter and the server's C(--pg-version),
    and keeps its findings as they are.
  - Reads from the live database, on a read-only session, each touched table's row estimate, total and index
    sizes, and the sessions holding locks on it with the age of their open transaction.
  - Drops findings on tables that the reviewed migrations create, and grades the rest V(info), V(low) or V(high)
    by the lock, the work done under it and the table's size against O(thresholds).
  - With O(rehearse), restores a dump (the backup the run just took, or a named one) into a scratch database,
    applies the pending migrations there statement by statement and reports each statement's duration and the
    table locks it held; their sum is the predicted maintenance window. The scratch database is dropped also
    when the rehearsal fails.
  - Applies the policy, O(accept) and O(stop_at), and returns C(stop). The reviewed database is never changed.
options:
  path:
    description:
      - The migration set directory, on the controller. A relative path is looked up like a C(files) path.
    type: path
    required: true
  history_table:
    description: The history table that records applied versions, C([schema.]table).
    type: str
    default: public.schema_migrations
  thresholds:
    description:
      - Sizes from which a table scanned or rewritten under a lock that blocks writes grades V(low) and V(high),
        and the age of an open transaction on a touched table from which its C(table-in-use) finding grades
        V(high) rather than V(low).
    type: dict
    default: {}
    suboptions:
      low_rows:
        description: Row estimate from which the finding grades V(low).
        type: int
        default: 10000
      high_rows:
        description: Row estimate from which the finding grades V(high).
        type: int
        default: 1000000
      low_bytes:
        description: Total size (table, TOAST and indexes) in bytes from which the finding grades V(low).
        type: int
        default: 67108864
      high_bytes:
        description: Total size in bytes from which the finding grades V(high).
        type: int
        default: 1073741824
      in_use_high_seconds:
        description: Age in seconds of an open transaction on a touched table from which C(table-in-use) is V(high).
        type: int
        default: 60
  stop_at:
    description: The grade of an open (not accepted) finding at which C(stop) is true; V(never) never stops.
    type: str
    choices: [info, low, high, never]
    default: high
  accept:
    description:
      - Accepted findings, each C(rule) and C(table) (and optionally C(version)) with the C(reason) it is
        acceptable. An accepted finding does not stop the run and is listed in C(accepted) with its reason.
    type: list
    elements: dict
    default: []
  squawk_path:
    description: The C(squawk) binary on the controller; by default found on C(PATH) or beside Ansible's Python.
    type: path
  squawk_exclude:
    description: squawk rules not to report (passed to squawk's C(--exclude)).
    type: list
    elements: str
    default: []
  squawk_grade:
    description: The grade of squawk's findings on existing tables (the size-aware grade is the review's own finding).
    type: str
    choices: [info, low, high]
    default: info
  rehearse:
    description: Rehearse the pending migrations on a scratch copy restored from O(rehearse_from).
    type: bool
    default: false
  rehearse_from:
    description:
      - The dump to restore, on the host the module runs on - a C(pg_dump -Fc) file, a C(pg_dump -Fd) directory
        or a plain SQL file. Required with O(rehearse).
    type: path
  scratch_db:
    description: Name of the scratch database; generated (C(review_scratch_...)) when omitted. It must not exist.
    type: str
  pg_bindir:
    description: Directory of C(pg_restore) and C(psql) on the module's host; by default they are looked up on C(PATH).
    type: path
  lock_timeout:
    description: How long a catalog read may wait for a lock on a touched table, in PostgreSQL syntax.
    type: str
    default: 2s
  login_db:
    description: Name of the database to review.
    type: str
    required: true
  _review_plan:
    description: Set by the module's action plugin (the set's statements and the tables they touch). Setting it is an error.
    type: dict
attributes:
  check_mode:
    support: full
    details: The review changes nothing on the reviewed database in any mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
notes:
  - The rehearsal needs the CREATEDB privilege and C(pg_restore) (or C(psql) for a plain dump) where the module runs.
  - Supports PostgreSQL 14 and newer (tested against PostgreSQL 15).
requirements:
  - psycopg2
  - pglast and squawk-cli on the controller
author:
  - teei.db_rollout maintainers (@teei)
extends_documentation_fragment:
  - community.postgresql.postgres
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
"""

EXAMPLES = r"""
- name: Review the pending Phase C migrations against this database
  teei.db_rollout.pg_review:
    path: "{{ playbook_dir }}/../migrations/phase_c"
    login_host: db1.example.com
    login_user: teei_admin
    login_password: "{{ vault_db_password }}"
    login_db: teei_cockpit
    stop_at: high
    accept:
      - rule: table-scan-under-lock
        table: public.companies
        reason: CHG-1234 - maintenance window booked, companies has 40k rows
  register: review

- name: Rehearse on a copy restored from the backup just taken, to measure the window
  teei.db_rollout.pg_review:
    path: migrations/phase_c
    login_db: teei_cockpit
    rehearse: true
    rehearse_from: "{{ backup_result.path }}"
"""

RETURN = r"""
findings:
  description: The graded findings, highest grade first.
  returned: always
  type: list
  elements: dict
  contains:
    rule:
      description: The review's rule (V(table-rewrite), V(table-scan-under-lock), V(writes-every-row), V(exclusive-lock),
        V(table-in-use), V(online-scan), V(table-missing), V(not-reviewed), V(rehearsal-failed)) or squawk's.
      type: str
    source:
      description: V(review), V(squawk) or V(rehearsal).
      type: str
    grade:
      description: V(info), V(low) or V(high).
      type: str
    version:
      description: The migration.
      type: str
    line:
      description: Line of the migration file.
      type: int
    table:
      description: The table, schema-qualified as the database names it.
      type: str
    lock:
      description: The lock mode the statement takes on it.
      type: str
    rows:
      description: The table's row estimate.
      type: int
    total_bytes:
      description: The table's total size.
      type: int
    message:
      description: The finding in words.
      type: str
    accepted:
      description: Whether an O(accept) entry accepted it.
      type: bool
    reason:
      description: The acceptance's reason.
      type: str
max_grade:
  description: Highest grade of all findings, V(none) without findings.
  returned: always
  type: str
max_open_grade:
  description: Highest grade of the findings not accepted.
  returned: always
  type: str
stop:
  description: Whether an open finding is graded at or above O(stop_at).
  returned: always
  type: bool
accepted:
  description: The accepted findings with their reasons.
  returned: always
  type: list
  elements: dict
unused_accepts:
  description: O(accept) entries that matched no finding.
  returned: always
  type: list
  elements: dict
dropped:
  description: Findings left out because their table is created by the reviewed migrations.
  returned: always
  type: list
  elements: dict
predicted_window_seconds:
  description: Sum of the statements' durations in the rehearsal, or null without a successful one.
  returned: always
  type: float
pending:
  description: The versions reviewed (not recorded as applied).
  returned: always
  type: list
  elements: str
statements:
  description: Every pending statement with the tables it touches, the lock on each and whether the table is new.
  returned: always
  type: list
  elements: dict
tables:
  description: What the database says of each touched table (rows, sizes, indexes, sessions, oldest transaction).
  returned: always
  type: list
  elements: dict
rehearsal:
  description: The rehearsal's report (per statement C(duration_ms) and C(locks)), or null.
  returned: always
  type: dict
server_version_num:
  description: The server's version number.
  returned: always
  type: int
table:
  description: The findings as a fixed-width table for a terminal.
  returned: always
  type: str
summary_markdown:
  description: The review as Markdown, for the run record and the ticket.
  returned: always
  type: str
"""

import os
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
    get_conn_params,
    postgres_common_argument_spec,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.driver import psycopg2, require_psycopg2
from ansible_collections.teei.db_rollout.plugins.module_utils.review_catalog import (
    ReviewCatalogError,
    read_catalog,
    rehearse,
)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        path=dict(type="path", required=True),
        history_table=dict(type="str", default="public.schema_migrations"),
        thresholds=dict(type="dict", default={}, options=dict(
            low_rows=dict(type="int", default=10000), high_rows=dict(type="int", default=1000000),
            low_bytes=dict(type="int", default=67108864), high_bytes=dict(type="int", default=1073741824),
            in_use_high_seconds=dict(type="int", default=60))),
        stop_at=dict(type="str", default="high", choices=["info", "low", "high", "never"]),
        accept=dict(type="list", elements="dict", default=[]),
        squawk_path=dict(type="path"),
        squawk_exclude=dict(type="list", elements="str", default=[]),
        squawk_grade=dict(type="str", default="info", choices=["info", "low", "high"]),
        rehearse=dict(type="bool", default=False),
        rehearse_from=dict(type="path"),
        scratch_db=dict(type="str"),
        pg_bindir=dict(type="path"),
        lock_timeout=dict(type="str", default="2s"),
        login_db=dict(type="str", required=True),
        _review_plan=dict(type="dict"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("rehearse", True, ("rehearse_from",))])
    require_psycopg2(module)
    params = module.params
    plan = params["_review_plan"]
    if not plan:
        module.fail_json(msg="pg_review runs through its action plugin, which parses the set on the controller")
    conn_params = get_conn_params(module, params, warn_db_default=False)
    where = "%s@%s:%s/%s" % (params["login_user"], params["login_host"] or params["login_unix_socket"] or "local",
                             params["login_port"], params["login_db"])

    def connect(dbname=None, readonly=False):
        args = dict(conn_params, connect_timeout=10)
        if dbname:
            args["dbname"] = dbname
        try:
            conn = psycopg2.connect(**args)
        except psycopg2.Error as exc:
            module.fail_json(msg="unable to connect to database %s: %s" % (dbname and dbname != params["login_db"]
                                                                           and dbname or where, str(exc).strip()))
        conn.set_session(readonly=readonly, autocommit=True)
        return conn

    live = connect(readonly=True)
    try:
        result = read_catalog(live, plan["tables"], params["history_table"], plan["versions"],
                              params["lock_timeout"])
    except (ReviewCatalogError, psycopg2.Error) as exc:
        module.fail_json(msg="reading the catalog of %s: %s" % (where, str(exc).strip()))
    finally:
        live.close()
    result["rehearsal"] = None
    if params["rehearse"]:
        pending = [m for m in plan["migrations"] if m["version"] not in result["applied"]]
        scratch = params["scratch_db"] or "review_scratch_" + uuid.uuid4().hex[:12]
        env = dict(PGHOST=str(conn_params.get("host") or ""), PGPORT=str(conn_params.get("port") or ""),
                   PGUSER=str(conn_params.get("user") or ""))
        if conn_params.get("password"):
            env["PGPASSWORD"] = conn_params["password"]
        if params["pg_bindir"]:
            env["PATH"] = params["pg_bindir"] + os.pathsep + os.environ.get("PATH", "")

        def run_restore(cmd):
            return module.run_command(cmd, environ_update=env)

        admin = connect()
        try:
            result["rehearsal"] = rehearse(admin, connect, run_restore, params["rehearse_from"],
                                           pending, scratch)
        except (ReviewCatalogError, psycopg2.Error) as exc:
            module.fail_json(msg="rehearsal on %s: %s" % (where, str(exc).strip()))
        finally:
            admin.close()
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
