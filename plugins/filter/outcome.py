# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter teei.db_rollout.failure_message: the last word of a failed rollout or rollback on a database."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.teei.db_rollout.plugins.plugin_utils.outcome import failure_message as _message


def failure_message(failure, purpose="rollout", start_version=None, backup=None, rollback_failure=None,
                    restored=False, restore_failure=None):
    if not isinstance(failure, dict):
        raise AnsibleFilterError("failure_message takes the rescue's note of the failure ({task, msg})")
    try:
        return _message(failure, purpose=purpose, start_version=start_version, backup=backup,
                        rollback_failure=rollback_failure, restored=restored, restore_failure=restore_failure)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return dict(failure_message=failure_message)
