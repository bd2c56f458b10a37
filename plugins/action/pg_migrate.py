# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of teei.db_rollout.pg_migrate: reads the migration set where
the playbook is, checks it against the convention, parses every file with
PostgreSQL's own parser (pglast) and hands the module the statements with
their lines, wherever the module runs (the database host over SSH, or the
controller). Nothing connects before the whole set has parsed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import json
import os
import socket

from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import MigrationSetError
from ansible_collections.teei.db_rollout.plugins.plugin_utils.run_record import new_run_id
from ansible_collections.teei.db_rollout.plugins.plugin_utils.set_action import SetAction
from ansible_collections.teei.db_rollout.plugins.plugin_utils.sqlparse import load_set

WRITING_STATES = ("applied", "rolled_back")


class ActionModule(SetAction):
    INTERNAL_ARG = "_migration_set"

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args, path = self._set_args(result)
        if path is None:
            return result
        set_name = args.get("set_name") or os.path.basename(os.path.normpath(path))
        try:
            mset = load_set(path, set_name)
        except (MigrationSetError, OSError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        args.update(path=path, set_name=set_name, _migration_set=json.dumps(mset.to_wire(), separators=(",", ":")))
        if not args.get("run_id") and args.get("state", "applied") in WRITING_STATES:
            args["run_id"] = new_run_id()
        if not args.get("applied_by"):
            args["applied_by"] = "%s@%s" % (getpass.getuser(), socket.gethostname())
        result.update(self._execute_module(module_name="teei.db_rollout.pg_migrate", module_args=args,
                                           task_vars=task_vars))
        if args.get("state") == "status" and isinstance(result.get("pending"), list):
            result["pending_tables"] = dict((version, mset.get(version).script.tables())
                                            for version in result["pending"] if mset.get(version) is not None)
        return result
