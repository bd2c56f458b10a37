"""The verify role's verdict in plain Python: each check judged, every failure named."""

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.verify import first_value, matches, verdict


def query(name, value, expect, description=None, **result):
    item = dict(name=name, sql="SELECT 1", expect=expect)
    if description:
        item["description"] = description
    rows = {} if value is _NO_ROW else [{"v": value, "other": "x"}]
    result.setdefault("query_result", rows)
    return dict(result, item=item, changed=False)


_NO_ROW = object()
SET_OK = dict(changed=False, verifications=[dict(name="verify/001_a.sql", ok=True, msg="holds"),
                                            dict(name="verify.sql", ok=True, msg="holds")])


def test_all_checks_hold():
    result = verdict(SET_OK, [query("tables", "none", "none", "tables missing"), query("roles", 4, 4)])
    assert result["ok"] is True and result["failed"] is False and result["changed"] is False
    assert [c["name"] for c in result["checks"]] == ["verify/001_a.sql", "verify.sql", "tables", "roles"]
    assert result["checks"][2]["msg"] == "tables missing: none"
    assert result["msg"] == "verify: all 4 checks hold"


def test_a_failing_check_is_named_with_what_it_found():
    result = verdict(SET_OK, [query("phase_c_indexes", "audit_log.idx_audit_log_action", "none",
                                    "Phase C indexes missing")])
    assert result["ok"] is False and result["failed"] is True
    assert result["failed_checks"] == ["phase_c_indexes"]
    assert ("[phase_c_indexes] Phase C indexes missing: audit_log.idx_audit_log_action (expected none)"
            in result["msg"])


def test_a_failing_set_verification_is_named():
    set_result = dict(SET_OK, verifications=[dict(name="verify/005_b.sql", ok=False, msg="trigger missing")])
    result = verdict(set_result, [])
    assert result["failed_checks"] == ["verify/005_b.sql"] and "trigger missing" in result["msg"]


def test_an_engine_that_failed_before_verifying_fails_the_set_check():
    result = verdict(dict(failed=True, msg="unable to connect"), [query("x", 1, 1)])
    assert result["failed_checks"] == ["migration_set_verifications"] and "unable to connect" in result["msg"]


def test_skipped_set_verifications_are_no_check():
    result = verdict(dict(skipped=True), [query("x", 1, 1)])
    assert [c["name"] for c in result["checks"]] == ["x"] and result["ok"]


def test_a_query_error_fails_its_check_with_postgresqls_message():
    result = verdict(None, [query("bad", None, 0, failed=True, msg='Cannot execute SQL: relation "nope"\n does not exist')])
    assert result["checks"][0]["msg"] == 'the query failed: Cannot execute SQL: relation "nope" does not exist'


def test_two_checks_with_one_name_fail():
    result = verdict(None, [query("dup", 1, 1), query("dup", 1, 1)])
    assert result["failed_checks"] == ["dup"] and "two checks are named dup" in result["msg"]


def test_no_check_at_all_is_a_failure_not_a_pass():
    result = verdict(dict(skipped=True), [])
    assert result["ok"] is False and result["failed"] is True


@pytest.mark.parametrize("value, expect, ok", [(7, 7, True), (7, "7", True), ("7", 7, True), (6, 7, False),
                                               (True, True, True), ("t", True, False), (None, None, True),
                                               (None, 0, False), (0, None, False)])
def test_matching(value, expect, ok):
    assert matches(value, expect) is ok


def test_first_value_of_no_rows_is_none():
    assert first_value({}) is None and first_value([]) is None and first_value([{"a": 3, "b": 4}]) == 3
    assert verdict(None, [query("empty", _NO_ROW, None)])["ok"]


def batch(*rows, **result):
    return dict(result, changed=False, query_all_results=list(rows))


def test_a_batch_of_queries_is_judged_check_by_check_in_its_order():
    specs = [dict(name="tables", sql="SELECT 1", expect="none", description="tables missing"),
             dict(name="roles", sql="SELECT 2", expect=4)]
    result = verdict(SET_OK, [], batch=batch([{"v": "none"}], [{"n": 3}]), specs=specs)
    assert [c["name"] for c in result["checks"]] == ["verify/001_a.sql", "verify.sql", "tables", "roles"]
    assert result["failed_checks"] == ["roles"] and "[roles] returned: 3 (expected 4)" in result["msg"]


def test_a_failed_batch_defers_to_the_one_by_one_results():
    specs = [dict(name="ok", sql="SELECT 1", expect=1), dict(name="bad", sql="SELECT nope", expect=0)]
    one_by_one = [query("ok", 1, 1), query("bad", None, 0, failed=True, msg='column "nope" does not exist')]
    result = verdict(None, one_by_one, batch=dict(failed=True, msg="Cannot execute SQL 'SELECT nope'"), specs=specs)
    assert result["failed_checks"] == ["bad"] and [c["ok"] for c in result["checks"]] == [True, False]


def test_a_skipped_batch_with_no_checks_is_no_check():
    result = verdict(SET_OK, [], batch=dict(skipped=True), specs=[])
    assert result["ok"] and [c["name"] for c in result["checks"]] == ["verify/001_a.sql", "verify.sql"]
