# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of teei.db_rollout.pg_review: reads and parses the migration set, checks the
policy, lets the module read the database (wherever it runs), then runs squawk and grades."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.teei.db_rollout.plugins.module_utils.migration_set import MigrationSetError
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review import judge, plan
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_grade import (
    THRESHOLDS,
    ReviewPolicyError,
    Thresholds,
    validate_policy,
)
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_parse import ReviewParseError
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_squawk import SquawkError
from ansible_collections.teei.db_rollout.plugins.plugin_utils.set_action import SetAction
from ansible_collections.teei.db_rollout.plugins.plugin_utils.sqlparse import load_set


class ActionModule(SetAction):
    INTERNAL_ARG = "_review_plan"

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args, path = self._set_args(result)
        if path is None:
            return result
        thresholds = dict(args.get("thresholds") or {})
        unknown = sorted(set(thresholds) - set(THRESHOLDS))
        if unknown:
            result.update(failed=True, msg="thresholds: unknown %s (known: %s)"
                          % (", ".join(unknown), ", ".join(THRESHOLDS)))
            return result
        try:
            policy = dict(thresholds=Thresholds(**thresholds),
                          stop_at=args.get("stop_at") or "high", accept=args.get("accept") or [],
                          squawk_exclude=args.get("squawk_exclude") or [],
                          squawk_grade=args.get("squawk_grade") or "info")
            validate_policy(policy["accept"], policy["stop_at"])
            mset = load_set(path)
            analyses, module_plan = plan(mset)
        except (ReviewPolicyError, MigrationSetError, ReviewParseError, OSError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        args.update(path=path, _review_plan=module_plan)
        read = self._execute_module(module_name="teei.db_rollout.pg_review", module_args=args, task_vars=task_vars)
        invocation = read.get("invocation", {}).get("module_args")
        if isinstance(invocation, dict):
            invocation.pop("_review_plan", None)
        if read.get("failed"):
            result.update(read)
            return result
        try:
            result.update(judge(path, analyses, read, args.get("login_db"), policy, args.get("squawk_path")))
        except SquawkError as exc:
            result.update(failed=True, msg=str(exc))
        return result
