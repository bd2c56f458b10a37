#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_migrate
short_description: Apply, roll back or report an ordered set of SQL migrations on one PostgreSQL database
version_added: 0.1.0
description:
  - Applies the pending migrations of a migration set (a directory of C(NNN_name.sql) files) to one
    PostgreSQL database, each in its own transaction together with its history row and its verification,
    and reports C(changed) only when it changed something.
  - Rolls applied migrations back newest first with their C(rollback/NNN_name.sql) scripts, or only reports
    what is applied and pending.
  - The migration set is read and parsed on the controller with PostgreSQL's own parser (pglast), so the module
    works unchanged when it runs on the database host over SSH and when it is delegated to the controller, and a
    file that cannot run as written fails the task before it connects, naming file and line.
  - Every precondition (C(check/NNN_name.sql)) of every pending migration runs, read-only, before the first
    change. A migration whose verification (C(verify/NNN_name.sql)) fails is never committed.
  - A run holds a PostgreSQL advisory lock keyed on the database and the history table, so no migration is
    applied twice by two concurrent runs.
  - If the process running the module dies, the server abandons the open transaction and releases the lock
    within seconds (the session sets C(client_connection_check_interval) and TCP keepalives).
  - The migration file convention and the history table are described in the collection's README.
options:
  path:
    description:
      - The migration set directory, on the controller. A relative path is looked up like a C(files) path
        (the role's or playbook's C(files/) folder, then relative to the playbook).
    type: path
    required: true
  set_name:
    description:
      - Name of the migration set, stored with each history row the module writes.
      - Defaults to the directory's base name.
    type: str
  state:
    description:
      - V(applied) applies pending migrations up to O(target).
      - V(rolled_back) runs rollback scripts newest first down to, but not including, O(target);
        O(target=none) rolls back the whole set.
      - V(status) only reports what is applied and pending, what a rollout of the pending migrations needs
        (rollback scripts, the tables they touch, their preconditions) and what the last run did.
      - V(verified) runs every applied migration's verification and the set's C(verify/set.sql) (when nothing is
        pending), each in a transaction that is always rolled back, and fails naming each one that failed.
        Nothing changes.
    type: str
    choices: [applied, rolled_back, status, verified]
    default: applied
  target:
    description:
      - A version of the set (a file name without C(.sql)). Defaults to the newest version of the set
        with O(state=applied).
      - Required with O(state=rolled_back), so that an omitted target never rolls a set back;
        V(none) rolls back every migration of the set.
    type: str
  transaction:
    description:
      - V(per_migration) commits each migration with its verification and history row on its own;
        a failure leaves the database at the last migration that succeeded.
      - V(all) runs the whole batch in one transaction, all or nothing.
    type: str
    choices: [per_migration, all]
    default: per_migration
  history_table:
    description:
      - The history table, C([schema.]table). Created when missing. An existing runbook table with the
        columns C(version) and C(applied_at) is kept as it is; the module adds its own nullable columns and
        never touches rows it did not write.
    type: str
    default: public.schema_migrations
  lock_timeout:
    description:
      - How long a migration statement may wait for a lock, in PostgreSQL syntax (V(500ms), V(2s)). While it
        waits, the application's queries queue behind it; this bounds that wait.
    type: str
    default: 5s
  lock_retries:
    description:
      - How many times a migration that hit O(lock_timeout) is rolled back and tried again, with a backoff
        that starts at O(lock_retry_delay) and doubles. After the last try the run fails naming the
        blocking process and its query.
    type: int
    default: 3
  lock_retry_delay:
    description: First backoff between lock retries, in PostgreSQL syntax.
    type: str
    default: 1s
  statement_timeout:
    description: Longest time one statement may run, in PostgreSQL syntax; V(0) means no limit.
    type: str
    default: '0'
  run_lock_timeout:
    description:
      - How long to wait for another run on the same database and history table to finish before failing
        with the name of the session holding the lock.
    type: str
    default: 60s
  allow_out_of_order:
    description: Apply a pending migration that is older than the newest applied one instead of failing.
    type: bool
    default: false
  verify:
    description: Run each migration's verification script inside its transaction, and the set's C(verify/set.sql) when the run completes the set.
    type: bool
    default: true
  rehearse:
    description:
      - In check mode, apply the pending migrations and their verifications (or, with O(state=rolled_back),
        run the rollback scripts) inside a transaction that is always rolled back, proving the rollout or the
        rollback against real data without changing it.
      - Ignored outside check mode.
    type: bool
    default: false
  check_preconditions:
    description:
      - With O(state=status), run each pending migration's precondition (C(check/NNN_name.sql)) read-only in a
        transaction that is rolled back, and report them in RV(preconditions).
      - V(state=applied) always runs them before the first change.
    type: bool
    default: true
  run_id:
    description:
      - Identifier of this rollout run, recorded on each history row. Generated when omitted with
        O(state=applied) or O(state=rolled_back).
      - With O(state=status), the run whose history changes to report in RV(run_changes).
    type: str
  change_ticket:
    description: The change ticket this run is done under, recorded on each history row.
    type: str
  applied_by:
    description: Who runs the rollout, recorded on each history row. Defaults to C(user@controller).
    type: str
  login_db:
    description: Name of the database to migrate.
    type: str
    required: true
  _migration_set:
    description:
      - Set by the module's action plugin to the set's statements as parsed on the controller, as one JSON
        text (a string costs Ansible nothing to copy and validate; a nested dict of thousands of migrations
        does). Setting it in a task is an error.
    type: str
attributes:
  check_mode:
    support: full
    details: Reports what would be applied or rolled back; with O(rehearse) also proves it in a rolled-back transaction.
  diff_mode:
    support: full
    details: Shows the set's applied versions before and after.
  platform:
    platforms: posix
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
notes:
  - Supports PostgreSQL 14 and newer (the collection is tested against PostgreSQL 15); an older server fails the
    run with a message saying so before anything changes.
  - Needs pglast on the controller (the action plugin parses the set there); the host the module runs on needs only
    psycopg2 or psycopg 3 (community.postgresql's helpers pick psycopg 3 where both are installed).
  - Passwords go in O(login_password) (no_log) or the environment (PGPASSWORD, PGPASSFILE), never in O(connect_params).
seealso:
  - module: community.postgresql.postgresql_script
    description: Runs a script in autocommit and always reports changed; this module exists because of that.
requirements:
  - psycopg2 or psycopg 3 (where the module runs)
  - pglast (on the controller)
author:
  - teei.db_rollout maintainers (@teei)
extends_documentation_fragment:
  - community.postgresql.postgres
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
"""

EXAMPLES = r"""
- name: Apply the Phase C migrations
  teei.db_rollout.pg_migrate:
    path: "{{ playbook_dir }}/../migrations/phase_c"
    login_host: db1.example.com
    login_user: teei_admin
    login_password: "{{ vault_db_password }}"
    login_db: teei_cockpit
    change_ticket: CHG-1234
    run_id: "{{ rollout_run_id }}"
  register: migration

- name: Prove the rollout against production data without changing it
  teei.db_rollout.pg_migrate:
    path: migrations/phase_c
    login_db: teei_cockpit
    rehearse: true
  check_mode: true

- name: Apply up to 003 only, all or nothing
  teei.db_rollout.pg_migrate:
    path: migrations/phase_c
    login_db: teei_cockpit
    target: 003_add_api_keys_table
    transaction: all

- name: Roll back everything after 003
  teei.db_rollout.pg_migrate:
    path: migrations/phase_c
    login_db: teei_cockpit
    state: rolled_back
    target: 003_add_api_keys_table

- name: Roll back the whole set
  teei.db_rollout.pg_migrate:
    path: migrations/phase_c
    login_db: teei_cockpit
    state: rolled_back
    target: none

- name: Report what is applied and pending
  teei.db_rollout.pg_migrate:
    path: migrations/phase_c
    login_db: teei_cockpit
    state: status
  register: migration_status
"""

RETURN = r"""
applied:
  description: Versions applied by this run, in order (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: [001_add_tenant_routing, 002_add_rbac_roles]
rolled_back:
  description: Versions rolled back by this run, newest first (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: [006_add_integration_configs_table]
pending:
  description: Versions of the set not applied after this run.
  returned: always
  type: list
  elements: str
current_version:
  description: Newest applied version of this set after the run, or null.
  returned: always
  type: str
  sample: 006_add_integration_configs_table
previous_version:
  description: Newest applied version of this set before the run, or null.
  returned: always
  type: str
migrations:
  description: One entry per migration this run applied, rehearsed or rolled back.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The migration's version.
      type: str
    action:
      description: V(applied), V(rehearsed) or V(rolled_back).
      type: str
    duration_ms:
      description: Time the migration (or its rollback) took, verification included, in milliseconds.
      type: int
    checksum:
      description: sha256 of the script that ran.
      type: str
    statements:
      description: Number of statements in the script.
      type: int
    attempts:
      description: Attempts needed (more than 1 after lock timeouts).
      type: int
    no_transaction:
      description: Whether the migration ran outside a transaction.
      type: bool
  sample: [{version: 001_add_tenant_routing, action: applied, duration_ms: 84, checksum: 5e8f..., statements: 9, attempts: 1}]
planned:
  description: Versions the plan held for this run, before anything ran.
  returned: always
  type: list
  elements: str
applied_versions:
  description: Versions of the set recorded as applied.
  returned: when O(state=status)
  type: list
  elements: str
problems:
  description: Disagreements between the set and the history table (changed or missing files, out-of-order).
  returned: always
  type: list
  elements: str
history_changes:
  description: What the run did to the history table (created it, added columns).
  returned: always
  type: list
  elements: str
rehearsed:
  description: Whether the migrations were rehearsed in a rolled-back transaction.
  returned: always
  type: bool
run_id:
  description: The run's identifier.
  returned: always
  type: str
migration_set:
  description: The set's name.
  returned: always
  type: str
history_table:
  description: The history table used.
  returned: always
  type: str
server_version:
  description: The server's PostgreSQL version (major.minor); a server older than 14 fails the run before it changes anything.
  returned: when the module connected
  type: str
  sample: "15.18"
notices:
  description: NOTICE messages PostgreSQL sent during the run.
  returned: always
  type: list
  elements: str
missing_rollbacks:
  description: Pending versions that have no rollback script.
  returned: when O(state=status)
  type: list
  elements: str
pending_tables:
  description:
    - For each pending version, the sorted schema-qualified relations its migration's statements name, as
      PostgreSQL's parser reads them on the controller. Unqualified names are taken to be in C(public); relations
      named only inside function bodies or DO blocks are not listed.
  returned: when O(state=status)
  type: dict
  sample: {"003_add_api_keys_table": ["public.api_key_usage", "public.api_keys", "public.companies"]}
preconditions:
  description: Each pending migration's precondition, run read-only and rolled back (empty without O(check_preconditions)).
  returned: when O(state=status)
  type: list
  elements: dict
  contains:
    version:
      description: The pending migration.
      type: str
    ok:
      description: Whether the precondition holds.
      type: bool
    msg:
      description: What failed (file, statement, line, PostgreSQL's message), or that it holds.
      type: str
last_run:
  description: The newest run that applied or rolled back migrations of this set, or null.
  returned: when O(state=status)
  type: dict
  contains:
    run_id:
      description: The run's identifier.
      type: str
    change_ticket:
      description: The change ticket it cited.
      type: str
    applied_by:
      description: Who ran it.
      type: str
    finished_at:
      description: When its last change was made, ISO 8601 UTC.
      type: str
    versions:
      description: The versions it applied or rolled back, in order.
      type: list
      elements: str
    actions:
      description: V(applied) or V(rolled_back) for each of RV(last_run.versions).
      type: list
      elements: str
run_changes:
  description: The history rows run O(run_id) added (V(applied)) or removed (V(rolled_back)), in order.
  returned: when O(state=status) and O(run_id) is set
  type: list
  elements: dict
  contains:
    version:
      description: The migration.
      type: str
    action:
      description: V(applied) or V(rolled_back).
      type: str
    at:
      description: When, ISO 8601 UTC.
      type: str
    checksum:
      description: sha256 of the script that ran (the rollback script's for V(rolled_back)).
      type: str
    migration_set:
      description: The set the migration belongs to.
      type: str
verifications:
  description: Each verification run by O(state=verified).
  returned: when O(state=verified)
  type: list
  elements: dict
  contains:
    name:
      description: The verification script, e.g. C(verify/001_add_tenant_routing.sql) or C(verify/set.sql).
      type: str
    ok:
      description: Whether it passed.
      type: bool
    msg:
      description: What failed (statement, line, PostgreSQL's message), or that it passed.
      type: str
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
    connect_to_db,
    ensure_required_libs,
    get_conn_params,
    postgres_common_argument_spec,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import (
    MigrationSetError,
    from_wire,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.history import HistoryTable, HistoryTableError
from ansible_collections.teei.db_rollout.plugins.module_utils.executor import (
    MigrationError,
    RunOptions,
    Runner,
)

# Client-side keepalives so a lost server is noticed too; connect_params may override them.
CLIENT_KEEPALIVES = dict(connect_timeout=10, keepalives=1, keepalives_idle=5,
                         keepalives_interval=2, keepalives_count=3)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        path=dict(type="path", required=True),
        set_name=dict(type="str"),
        state=dict(type="str", default="applied", choices=["applied", "rolled_back", "status", "verified"]),
        target=dict(type="str"),
        transaction=dict(type="str", default="per_migration", choices=["per_migration", "all"]),
        history_table=dict(type="str", default="public.schema_migrations"),
        lock_timeout=dict(type="str", default="5s"),
        lock_retries=dict(type="int", default=3),
        lock_retry_delay=dict(type="str", default="1s"),
        statement_timeout=dict(type="str", default="0"),
        run_lock_timeout=dict(type="str", default="60s"),
        allow_out_of_order=dict(type="bool", default=False),
        verify=dict(type="bool", default=True),
        rehearse=dict(type="bool", default=False),
        check_preconditions=dict(type="bool", default=True),
        run_id=dict(type="str"),
        change_ticket=dict(type="str"),
        applied_by=dict(type="str"),
        login_db=dict(type="str", required=True),
        # Set by the action plugin: the set's statements as parsed on the controller.
        _migration_set=dict(type="str"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    ensure_required_libs(module)
    params = module.params
    try:
        if params["_migration_set"] is None:
            module.fail_json(msg="teei.db_rollout.pg_migrate runs through its action plugin, which reads and parses "
                                 "the set on the controller; it cannot be run as a bare module")
        mset = from_wire(params["set_name"], json.loads(params["_migration_set"]))
        history = HistoryTable(params["history_table"])
        options = RunOptions(
            state=params["state"], target=params["target"], transaction=params["transaction"],
            verify=params["verify"], check_mode=module.check_mode, rehearse=params["rehearse"],
            lock_timeout=params["lock_timeout"], statement_timeout=params["statement_timeout"],
            lock_retries=params["lock_retries"], lock_retry_delay=params["lock_retry_delay"],
            run_lock_timeout=params["run_lock_timeout"], allow_out_of_order=params["allow_out_of_order"],
            run_id=params["run_id"], change_ticket=params["change_ticket"], applied_by=params["applied_by"],
            engine="teei.db_rollout.pg_migrate", check_preconditions=params["check_preconditions"])
    except (MigrationSetError, HistoryTableError, ValueError) as exc:
        module.fail_json(msg=str(exc))

    conn_params = dict(CLIENT_KEEPALIVES)
    conn_params.update(get_conn_params(module, params, warn_db_default=False))
    # community.postgresql names the port login_port from 4.1.0 on, port before (galaxy.yml's floor is tested).
    port = params.get("login_port", params.get("port"))
    where = "%s@%s:%s/%s" % (params["login_user"], params["login_host"] or params["login_unix_socket"] or "local",
                             port, params["login_db"])

    def connect():
        """A connection through community.postgresql's helper (psycopg 3 or 2, session_role), rows as tuples."""
        conn, error = connect_to_db(module, dict(conn_params), autocommit=True, fail_on_conn=False)
        if conn is None:
            raise MigrationError("unable to connect to database %s: %s" % (where, str(error).strip()))
        if getattr(conn, "row_factory", None) is not None:  # psycopg 3: the helper sets dict rows
            from psycopg.rows import tuple_row
            conn.row_factory = tuple_row
            # psycopg2 keeps the server's notices in conn.notices; psycopg 3 hands them to a handler.
            conn.notices = []

            def keep_notice(diag):
                conn.notices.append("%s:  %s\n" % (diag.severity, diag.message_primary))
            conn.add_notice_handler(keep_notice)
        return conn

    try:
        result = Runner(connect, mset, history, options).run()
    except MigrationError as exc:
        module.fail_json(msg=exc.msg, **_module_result(module, exc.result))
    module.exit_json(**_module_result(module, result))


def _module_result(module, result):
    result = dict(result)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    # The parsed set is the action plugin's own input: echoing it back would multiply the result's size
    # by the set's (megabytes for thousands of migrations) for nothing the task can use.
    result["invocation"] = dict(module_args=dict((k, v) for k, v in module.params.items() if k != "_migration_set"))
    diff = result.pop("diff", None)
    if diff and module._diff:
        result["diff"] = dict(before="".join(v + "\n" for v in diff["before"]["versions"]),
                              after="".join(v + "\n" for v in diff["after"]["versions"]))
    return result


if __name__ == "__main__":
    main()
