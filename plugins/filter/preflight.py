# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter teei.db_rollout.preflight_checklist: the preflight role's result fact from its tasks' results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.teei.db_rollout.plugins.module_utils.preflight import PreflightError, checklist

INPUTS = ("ping", "status", "sessions", "accepted_major_versions", "change_ticket", "require_change_ticket",
          "change_ticket_pattern", "environment", "where", "migration_path", "purpose", "rollback",
          "rollback_target")


def preflight_checklist(inputs):
    if not isinstance(inputs, dict):
        raise AnsibleFilterError("preflight_checklist takes a dict of the preflight role's results")
    unknown = sorted(set(inputs) - set(INPUTS))
    if unknown:
        raise AnsibleFilterError("preflight_checklist: unknown inputs %s (known: %s)"
                                 % (", ".join(unknown), ", ".join(INPUTS)))
    try:
        return checklist(**dict(inputs))
    except PreflightError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return dict(preflight_checklist=preflight_checklist)
