# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter teei.db_rollout.verify_verdict: the verify role's result fact from its tasks' results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.teei.db_rollout.plugins.module_utils.verify import verdict


def verify_verdict(queries, set_result=None, batch=None, specs=None):
    if not isinstance(queries, list):
        raise AnsibleFilterError("verify_verdict takes the list of postgresql_query results (register.results)")
    return verdict(set_result=set_result, queries=queries, batch=batch, specs=specs)


class FilterModule(object):
    def filters(self):
        return dict(verify_verdict=verify_verdict)
