# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""psycopg2 for the modules that drive it directly (backup, restore, maintenance, preflight, review),
imported once here with the error a module reports when it is missing. pg_migrate connects through
community.postgresql's helpers instead, which also take psycopg 3."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()


def require_psycopg2(module):
    """psycopg2, or the module fails saying how to install it."""
    if psycopg2 is None:
        from ansible.module_utils.basic import missing_required_lib
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
    return psycopg2
