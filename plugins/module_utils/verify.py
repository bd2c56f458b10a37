# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verify role's verdict, in plain Python: the migration set's own verifications (from
teei.db_rollout.pg_migrate state=verified) and the post-migration validation queries (a list of
``{name, sql, expect}`` run by community.postgresql.postgresql_query), one check each, and the role's
one result fact. Imports neither Ansible nor a database driver."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def check(name, ok, msg):
    return dict(name=name, ok=bool(ok), msg=msg)


def first_value(query_result):
    """The first column of the first row postgresql_query returned, or None when there was no row."""
    if not query_result:
        return None
    row = query_result[0]
    if not row:
        return None
    return list(row.values())[0]


def matches(value, expect):
    if isinstance(expect, bool):
        return isinstance(value, bool) and value is expect
    if expect is None:
        return value is None
    return value is not None and str(value) == str(expect)


def query_check(spec, result):
    """One validation query's check from its spec and postgresql_query's registered result."""
    name = spec.get("name")
    what = spec.get("description") or "returned"
    if result.get("skipped"):
        return check(name, False, "not run: %s" % (result.get("skip_reason") or "skipped"))
    if result.get("failed"):
        return check(name, False, "the query failed: %s" % " ".join(str(result.get("msg", "")).split()))
    value = first_value(result.get("query_result"))
    if matches(value, spec.get("expect")):
        return check(name, True, "%s: %s" % (what, value))
    return check(name, False, "%s: %s (expected %s)" % (what, value, spec.get("expect")))


def set_checks(set_result):
    """The migration set's verifications as checks; a failed or silent engine is a failed check."""
    if not set_result or set_result.get("skipped"):
        return []
    if "verifications" not in set_result:
        why = set_result.get("msg") if set_result.get("failed") else "the engine did not report verifications"
        return [check("migration_set_verifications", False,
                      "the migration set's verifications did not run: %s" % why)]
    checks = [check(v.get("name"), v.get("ok"), v.get("msg") or "") for v in set_result["verifications"]]
    if set_result.get("failed") and all(c["ok"] for c in checks):
        checks.append(check("migration_set_verifications", False, str(set_result.get("msg"))))
    return checks


def batch_queries(batch, specs):
    """Per-check results from one postgresql_query run of every check's query (``query_all_results``, in
    the order of ``specs``); None when that run did not succeed, so that the checks run one by one."""
    if not batch or batch.get("skipped") or batch.get("failed"):
        return None
    rows = batch.get("query_all_results") or []
    if len(rows) != len(specs):
        return None
    return [dict(item=spec, query_result=result) for spec, result in zip(specs, rows)]


def verdict(set_result=None, queries=None, batch=None, specs=None):
    """The verify role's result fact (``verify_result``). The validation queries come either as one
    batch (every query in one read-only session; ``specs`` in its order) or, when that batch failed, as
    the results of running them one by one (``queries``), which name the query that failed."""
    batched = batch_queries(batch, specs or [])
    if batched is not None:
        queries = batched
    checks = set_checks(set_result)
    specs = [q.get("item") or {} for q in (queries or [])]
    seen = set()
    for spec, result in zip(specs, queries or []):
        name = spec.get("name")
        if name in seen:
            checks.append(check(name, False, "two checks are named %s: give each its own name" % name))
            continue
        seen.add(name)
        checks.append(query_check(spec, result))
    failed = [c for c in checks if not c["ok"]]
    if not checks:
        msg = "verify: no check ran (set verifications off and no verify_checks)"
    elif failed:
        msg = "verify: %d of %d checks failed: %s" % (len(failed), len(checks),
                                                      "; ".join("[%s] %s" % (c["name"], c["msg"]) for c in failed))
    else:
        msg = "verify: all %d checks hold" % len(checks)
    return dict(ok=not failed and bool(checks), checks=checks, changed=False, failed=bool(failed) or not checks,
                msg=msg, failed_checks=[c["name"] for c in failed],
                report=["[%s] %s: %s" % ("ok" if c["ok"] else "FAILED", c["name"], c["msg"]) for c in checks])
