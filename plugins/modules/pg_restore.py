#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_restore
short_description: Restore a teei.db_rollout.pg_backup backup after checking its sha256
version_added: 0.2.0
description:
  - Restores a backup taken by M(teei.db_rollout.pg_backup) (named by O(from), or the newest backup of
    O(source_database) in O(directory)) after checking the dump's sha256 against its manifest.
  - The dump is always restored into a new staging database first (C(pg_restore --exit-on-error)), whose
    tables (and, for a backup proven with C(verify_restore), row counts) must match the manifest. Only then
    does it become O(database).
  - When O(database) does not exist, the staging database is renamed to it.
  - When O(database) exists, the module refuses unless O(overwrite=true). With it, connections to O(database)
    are refused and its sessions terminated before the restore starts (keeping the application out while it
    runs); after a successful restore O(database) is renamed away and dropped (kept with O(keep_replaced)) and
    the staging database takes its name.
  - Any failure (missing dump or manifest, wrong sha256, pg_restore error, tables or rows that differ) drops
    the staging database and leaves O(database) as it was, connections allowed again.
  - The password reaches C(pg_restore) through a temporary 0600 PGPASSFILE, never its command line.
  - A replaced database's privileges (who may connect) and connection limit are given to the restored one.
    Its database-level settings (C(ALTER DATABASE ... SET)) and comment are not (a C(pg_dump) archive carries
    them only for C(--create)); set them again after replacing a database.
  - C(globals.sql) (roles) is not applied; run it with C(psql -f) when the roles are missing.
options:
  from:
    description:
      - The backup to restore, on the host the module runs on, as the dump file or folder, its run folder or
        its C(manifest.json). The manifest must be beside the dump.
      - Without it, the newest backup of O(source_database) in O(directory).
    type: path
  directory:
    description: Folder of run folders to take the newest backup from when O(from) is not given.
    type: path
    default: ~/.ansible/teei_db_rollout/backups
  source_database:
    description: Database whose newest backup to restore when O(from) is not given; defaults to O(database).
    type: str
  database:
    description: Database to restore into; defaults to the backup's database.
    type: str
  overwrite:
    description: Replace O(database) when it exists (its sessions are terminated). The explicit confirmation.
    type: bool
    default: false
  keep_replaced:
    description: Keep the replaced database, renamed to C(<database>_replaced_<id>) with connections refused.
    type: bool
    default: false
  jobs:
    description: Parallel C(pg_restore) jobs.
    type: int
    default: 1
  no_owner:
    description: Restore without owners and privileges (C(--no-owner --no-privileges)), owned by the login user.
    type: bool
    default: false
  maintenance_db:
    description: Database to connect to while creating, renaming and dropping databases.
    type: str
    default: postgres
  pg_bindir:
    description:
      - Folder holding C(pg_restore). Defaults to Debian's folder for the server's major version when it exists,
        else the one on C(PATH).
    type: path
attributes:
  check_mode:
    support: full
    details: Checks the backup's sha256, the target and the confirmation, and reports what it would do.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Does not use community.postgresql.postgresql_db's C(state=restore), which restores into the target
    directly (a failure leaves it half restored), checks no sha256 and cannot replace a database safely.
requirements:
  - psycopg2
  - PostgreSQL client tools (pg_restore) as new as the pg_dump that wrote the backup
seealso:
  - module: teei.db_rollout.pg_backup
author:
  - teei.db_rollout maintainers (@teei)
extends_documentation_fragment:
  - community.postgresql.postgres
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Restore this run's backup over the database
  teei.db_rollout.pg_restore:
    from: "{{ backup_result.path }}"
    database: teei_cockpit
    overwrite: true
    login_host: db1.example.com
    login_user: teei_admin
    login_password: "{{ vault_db_password }}"

- name: Restore the newest backup of teei_cockpit into a new database
  teei.db_rollout.pg_restore:
    directory: /srv/backups/db1
    source_database: teei_cockpit
    database: teei_cockpit_yesterday
"""

RETURN = r"""
database:
  description: The database restored into.
  returned: always
  type: str
from:
  description: The dump restored.
  returned: always
  type: str
manifest:
  description: The manifest the dump was checked against.
  returned: always
  type: str
sha256_ok:
  description: Whether the dump's sha256 matched its manifest.
  returned: always
  type: bool
replaced:
  description: Whether an existing database was replaced.
  returned: always
  type: bool
replaced_kept_as:
  description: The name the replaced database was kept under (with O(keep_replaced)), or null.
  returned: success
  type: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
    get_conn_params,
    postgres_common_argument_spec,
)
from ansible_collections.teei.db_rollout.plugins.module_utils.driver import psycopg2, require_psycopg2
from ansible_collections.teei.db_rollout.plugins.module_utils.backup import (
    BackupError,
    Restore,
    RestoreOptions,
    make_connector,
)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        directory=dict(type="path", default="~/.ansible/teei_db_rollout/backups"),
        source_database=dict(type="str"),
        database=dict(type="str"),
        overwrite=dict(type="bool", default=False),
        keep_replaced=dict(type="bool", default=False),
        jobs=dict(type="int", default=1),
        no_owner=dict(type="bool", default=False),
        maintenance_db=dict(type="str", default="postgres"),
        pg_bindir=dict(type="path"),
    )
    spec["from"] = dict(type="path")
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_psycopg2(module)
    params = module.params
    result = dict(database=params["database"], sha256_ok=False, replaced=False, manifest=None)
    result["from"] = params["from"]
    try:
        options = RestoreOptions(
            source=params["from"], directory=params["directory"], source_database=params["source_database"],
            database=params["database"], overwrite=params["overwrite"], keep_replaced=params["keep_replaced"],
            jobs=params["jobs"], no_owner=params["no_owner"], maintenance_db=params["maintenance_db"],
            bindir=params["pg_bindir"], check_mode=module.check_mode)
        connect, client = make_connector(psycopg2, get_conn_params(module, params, warn_db_default=False))
        result = Restore(connect, client, options).run()
    except BackupError as exc:
        result.update(exc.result)
        result["changed"] = False
        module.fail_json(msg=exc.msg, **result)
    except psycopg2.Error as exc:
        result["changed"] = False
        module.fail_json(msg="PostgreSQL refused the restore: %s" % str(exc).strip(), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
