#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_backup
short_description: Take a verified pg_dump backup of one PostgreSQL database, with a manifest
version_added: 0.2.0
description:
  - Dumps one database with C(pg_dump) in custom format (or directory format, in parallel with O(jobs)) into a
    mode 0700 folder of its own under O(directory), named C(<database>-<run_id>) (C(<database>-<UTC time>)
    without O(run_id)), with C(pg_dumpall --globals-only) beside it when the user may read roles.
  - Refuses a C(pg_dump) older than the server, naming both versions, before it writes anything.
  - The dump waits at most O(lock_wait_timeout) for each table's lock, so it fails instead of queueing behind
    a migration or a long transaction.
  - A backup is done only when C(pg_restore --list) has read it whole and it lists every table of the
    database, its sha256 is computed and C(manifest.json) is written beside it (database, server and pg_dump
    versions, start and end, size, sha256, tables, the history table's newest version, run id, change
    ticket). With O(verify_restore) it is also restored into a scratch database whose exact row counts must
    equal the source's (same snapshot); the scratch database is dropped in every case.
  - Any failure (folder not writable, disk full, lock wait, pg_dump error, failed verification) removes the
    partial backup and its folder. The database is never changed.
  - Files are mode 0600. The password reaches the client tools through a temporary 0600 PGPASSFILE, never
    their command line.
  - Runs where the database is reachable, on the controller over TCP or on the database host over its Unix
    socket (as the C(postgres) OS user with become).
  - With O(state=run_failed) it only marks the backup of O(manifest) as the one of a run that failed, so that
    retention (O(keep)) never deletes it.
options:
  state:
    description:
      - V(present) takes the backup (nothing when this O(run_id) already has one whose sha256 matches).
      - V(run_failed) marks the backup whose manifest is O(manifest) as kept for good.
    type: str
    choices: [present, run_failed]
    default: present
  login_db:
    description: The database to back up.
    type: str
  directory:
    description:
      - Folder the run folders are created in (mode 0700 when created). On the host the module runs on; C(~)
        is the home of the user it runs as.
    type: path
    default: ~/.ansible/teei_db_rollout/backups
  format:
    description: V(custom) (one file) or V(directory) (a folder, dumped in parallel with O(jobs)).
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description: Parallel C(pg_dump) jobs; more than 1 needs O(format=directory).
    type: int
    default: 1
  lock_wait_timeout:
    description: How long C(pg_dump) waits for each table's lock before failing, in PostgreSQL syntax.
    type: str
    default: 30s
  globals:
    description:
      - Write C(pg_dumpall --globals-only) (roles, tablespaces) as C(globals.sql) beside the dump when the user
        may read C(pg_roles).
    type: bool
    default: true
  globals_role_passwords:
    description:
      - Keep the roles' password hashes in C(globals.sql) (needs a user who may read C(pg_authid)). Off by
        default, so that the backup carries no credential.
    type: bool
    default: false
  verify_restore:
    description: Prove the backup by restoring it into a scratch database and comparing every table's rows.
    type: bool
    default: false
  keep:
    description:
      - Keep the newest O(keep) backups of this database in O(directory) and delete older ones; V(0) keeps all.
        Never deletes the backup just taken nor one marked with O(state=run_failed).
    type: int
    default: 0
  history_table:
    description: The migration history table whose newest version the manifest records (when it exists).
    type: str
    default: public.schema_migrations
  run_id:
    description: The rollout run's id; names the run folder and goes into the manifest. Must hold no secret.
    type: str
  change_ticket:
    description: The change ticket, recorded in the manifest.
    type: str
  pg_bindir:
    description:
      - Folder holding C(pg_dump), C(pg_dumpall) and C(pg_restore). Defaults to Debian's folder for the
        server's major version when it exists, else the C(pg_dump) on C(PATH).
    type: path
  manifest:
    description: With O(state=run_failed), the manifest to mark.
    type: path
  reason:
    description: With O(state=run_failed), why the run failed (recorded in the manifest).
    type: str
attributes:
  check_mode:
    support: full
    details: Connects, checks the pg_dump version and reports the backup it would take; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Does not use community.postgresql.postgresql_db's C(state=dump), which runs C(pg_dump) through a shell
    into a file created with the default umask, has no manifest, verification, version check, snapshot for
    row counts, nor removal of a partial dump.
  - Supports PostgreSQL 13 and newer (C(DROP DATABASE ... WITH (FORCE)) drops the scratch database).
requirements:
  - psycopg2
  - PostgreSQL client tools (pg_dump, pg_dumpall, pg_restore) as new as the server
seealso:
  - module: teei.db_rollout.pg_restore
author:
  - teei.db_rollout maintainers (@teei)
extends_documentation_fragment:
  - community.postgresql.postgres
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Take the pre-migration backup and prove it restores
  teei.db_rollout.pg_backup:
    login_host: db1.example.com
    login_user: teei_admin
    login_password: "{{ vault_db_password }}"
    login_db: teei_cockpit
    directory: /srv/backups/db1
    run_id: "{{ rollout_run_id }}"
    change_ticket: CHG-1234
    verify_restore: true
    keep: 5
  register: backup

- name: Back up on the database host over its socket, in parallel
  teei.db_rollout.pg_backup:
    login_host: /var/run/postgresql
    login_db: teei_cockpit
    format: directory
    jobs: 4
  become: true
  become_user: postgres

- name: Keep the backup of a run that failed
  teei.db_rollout.pg_backup:
    state: run_failed
    manifest: "{{ backup.manifest }}"
    reason: rollback scripts failed
"""

RETURN = r"""
path:
  description: The dump (a file, or a folder with O(format=directory)).
  returned: always
  type: str
  sample: /root/.ansible/teei_db_rollout/backups/db1/teei_cockpit-20261202T101500Z-1a2b3c/teei_cockpit.dump
directory:
  description: The run's mode 0700 folder.
  returned: always
  type: str
manifest:
  description: Path of the JSON manifest beside the dump.
  returned: always
  type: str
sha256:
  description: sha256 of the dump (of a directory dump, of its sha256sum listing); null in check mode.
  returned: always
  type: str
size_bytes:
  description: Size of the dump; null in check mode.
  returned: always
  type: int
restore_command:
  description: A shell command that restores the dump into a new database; it holds no password.
  returned: always
  type: str
verify_restore:
  description: The restore proof (null without O(verify_restore)).
  returned: always
  type: dict
  contains:
    ok:
      description: Whether every table of the source came back with its exact row count.
      type: bool
    database:
      description: The scratch database (dropped).
      type: str
    missing:
      description: Tables of the source missing from the restore.
      type: list
    mismatched:
      description: Tables whose row count differs (C(table), C(expected), C(actual)).
      type: list
    msg:
      description: The proof in words.
      type: str
migration_version:
  description: Newest version of the history table at dump time, or null.
  returned: always
  type: str
deleted:
  description: Run folders deleted by retention.
  returned: always
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
    get_conn_params,
    postgres_common_argument_spec,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.driver import psycopg2, require_psycopg2
from ansible_collections.teei.db_rollout.plugins.module_utils.backup import (
    Backup,
    BackupError,
    BackupOptions,
    failed_backup_result,
    make_connector,
    mark_run_failed,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.history import HistoryTableError


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        state=dict(type="str", default="present", choices=["present", "run_failed"]),
        login_db=dict(type="str"),
        directory=dict(type="path", default="~/.ansible/teei_db_rollout/backups"),
        format=dict(type="str", default="custom", choices=["custom", "directory"]),
        jobs=dict(type="int", default=1),
        lock_wait_timeout=dict(type="str", default="30s"),
        globals=dict(type="bool", default=True),
        globals_role_passwords=dict(type="bool", default=False),
        verify_restore=dict(type="bool", default=False),
        keep=dict(type="int", default=0, no_log=False),
        history_table=dict(type="str", default="public.schema_migrations"),
        run_id=dict(type="str"),
        change_ticket=dict(type="str"),
        pg_bindir=dict(type="path"),
        manifest=dict(type="path"),
        reason=dict(type="str"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("state", "present", ["login_db"]), ("state", "run_failed", ["manifest"])])
    params = module.params
    if params["state"] == "run_failed":
        try:
            changed = False if module.check_mode else mark_run_failed(params["manifest"], params["reason"])[0]
        except BackupError as exc:
            module.fail_json(msg=exc.msg)
        module.exit_json(changed=changed, manifest=params["manifest"],
                         msg="%s is kept by retention: its run failed" % params["manifest"])
    require_psycopg2(module)
    try:
        options = BackupOptions(
            database=params["login_db"], directory=params["directory"], fmt=params["format"], jobs=params["jobs"],
            lock_wait_timeout=params["lock_wait_timeout"], globals_dump=params["globals"],
            globals_role_passwords=params["globals_role_passwords"], verify_restore=params["verify_restore"],
            keep=params["keep"], history_table=params["history_table"], run_id=params["run_id"],
            change_ticket=params["change_ticket"], bindir=params["pg_bindir"], check_mode=module.check_mode)
        connect, client = make_connector(psycopg2, get_conn_params(module, params, warn_db_default=False))
        result = Backup(connect, client, options).run()
    except (BackupError, HistoryTableError) as exc:
        module.fail_json(msg=getattr(exc, "msg", str(exc)), **failed_backup_result(getattr(exc, "result", {})))
    except psycopg2.Error as exc:
        module.fail_json(msg="PostgreSQL refused the backup: %s" % str(exc).strip(), **failed_backup_result({}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
