# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the actions that read a migration set on the controller (pg_migrate, pg_review) share: the
task's arguments with the module-internal one refused, and the set's directory found the way a
task's files are."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase


class SetAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    INTERNAL_ARG = None  # the module argument only the action sets

    def _set_args(self, result):
        """(args, resolved path), or (args, None) with result failed when the task names no set."""
        args = dict(self._task.args)
        if self.INTERNAL_ARG in args:
            raise AnsibleError("%s is set by the %s action itself" % (self.INTERNAL_ARG, self._task.action))
        if not args.get("path"):
            result.update(failed=True, msg="path (the migration set directory) is required")
            return args, None
        return args, self._resolve(str(args["path"]))

    def _resolve(self, path):
        """An absolute path as it is; a relative one like a files/ path, else relative to the playbook."""
        if os.path.isabs(path):
            return path
        try:
            return self._find_needle("files", path)
        except AnsibleError:
            return self._loader.path_dwim(path)
