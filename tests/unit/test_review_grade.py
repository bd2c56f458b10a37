"""The review's grades and policy: size against thresholds, new tables dropped, acceptance, stop."""

import pytest

from ansible_collections.teei.db_rollout.plugins.plugin_utils import review_grade as g
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review import rehearsal_locks
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_parse import analyse_migration
from ansible_collections.teei.db_rollout.plugins.plugin_utils.sqlparse import parse_script

THRESHOLDS = g.Thresholds(low_rows=100, high_rows=10000, low_bytes=10 ** 9, high_bytes=10 ** 10,
                          in_use_high_seconds=60)


def migration(version, sql):
    return analyse_migration(version, parse_script(version + ".sql", sql.encode()).statements)


def table(name, rows, sessions=()):
    return {"name": name, "exists": True, "relation": "public." + name, "table": "public." + name, "rows": rows,
            "total_bytes": rows * 100, "sessions": list(sessions)}


def review(migrations, catalog, squawk=None, rehearsal=None):
    return g.findings(migrations, catalog, squawk, THRESHOLDS, "info", rehearsal)[0]


def rules(found):
    return [(f["rule"], f["table"], f["grade"]) for f in found]


INDEX = "CREATE INDEX accounts_email ON accounts (email);"


@pytest.mark.parametrize("rows, grade", [(10, "info"), (100, "low"), (9999, "low"), (10000, "high")])
def test_index_build_is_graded_by_the_tables_size(rows, grade):
    found = review([migration("001_i", INDEX)], {"accounts": table("accounts", rows)})
    assert rules(found) == [("table-scan-under-lock", "public.accounts", grade)]


def test_size_in_bytes_grades_too():
    stats = dict(table("accounts", 1), total_bytes=10 ** 10)
    found = review([migration("001_i", INDEX)], {"accounts": stats})
    assert found[0]["grade"] == "high"


def test_rewrite_is_named_as_such():
    found = review([migration("001_t", "ALTER TABLE accounts ALTER COLUMN n TYPE bigint;")],
                   {"accounts": table("accounts", 50000)})
    assert rules(found) == [("table-rewrite", "public.accounts", "high")]
    assert "rewrites about 50000 rows" in found[0]["message"]


def test_a_table_created_by_the_same_migration_yields_no_finding():
    sql = "CREATE TABLE keys (id int PRIMARY KEY, email text);\nCREATE INDEX keys_email ON keys (email);"
    squawk = {"001_k": [{"rule": "require-concurrent-index-creation", "line": 2,
                         "message": "During normal index creation...", "help": None}]}
    found, dropped = g.findings([migration("001_k", sql)], {"keys": {"name": "keys", "exists": False}}, squawk,
                                THRESHOLDS)
    assert found == []
    assert [(d["rule"], d["table"]) for d in dropped] == [
        ("lock", "keys"), ("require-concurrent-index-creation", "keys")]


def test_a_table_created_by_an_earlier_pending_migration_is_new_too():
    found, dropped = g.findings([migration("001_k", "CREATE TABLE keys (id int);"),
                                 migration("002_k", "CREATE INDEX keys_id ON keys (id);")],
                                {"keys": {"name": "keys", "exists": False}}, None, THRESHOLDS)
    assert found == [] and dropped[0]["why"] == "keys is created by 001_k"


def test_a_create_if_not_exists_of_a_table_that_exists_is_not_new():
    sql = "CREATE TABLE IF NOT EXISTS keys (id int);\nCREATE INDEX IF NOT EXISTS keys_id ON keys (id);"
    found = review([migration("001_k", sql)], {"keys": table("keys", 20000)})
    assert rules(found) == [("table-scan-under-lock", "public.keys", "high")]


def test_squawk_findings_on_existing_tables_are_kept_at_the_squawk_grade():
    found = review([migration("001_i", INDEX)], {"accounts": table("accounts", 10)},
                   squawk={"001_i": [{"rule": "require-concurrent-index-creation", "line": 1,
                                      "message": "During normal index creation...", "help": "Use concurrently"}]})
    squawk = [f for f in found if f["source"] == "squawk"]
    assert rules(squawk) == [("require-concurrent-index-creation", "public.accounts", "info")]


def test_an_open_transaction_on_a_touched_table_is_reported_with_pid_and_age():
    session = {"pid": 4242, "user": "app", "application": "api", "state": "idle in transaction",
               "xact_age_seconds": 75.0, "modes": ["ACCESS SHARE"]}
    found = review([migration("001_a", "ALTER TABLE accounts ADD COLUMN n int;")],
                   {"accounts": table("accounts", 10, [session])})
    [in_use] = [f for f in found if f["rule"] == "table-in-use"]
    assert in_use["grade"] == "high"
    assert in_use["sessions"][0]["pid"] == 4242 and "pid 4242" in in_use["message"]
    assert "transaction open 75 s" in in_use["message"]


def test_a_session_whose_lock_does_not_conflict_is_not_reported():
    session = {"pid": 1, "xact_age_seconds": 500.0, "modes": ["ACCESS SHARE"]}
    found = review([migration("001_i", "-- rollout: no-transaction\nCREATE INDEX CONCURRENTLY i ON accounts (a);")],
                   {"accounts": table("accounts", 10, [session])})
    assert "table-in-use" not in [f["rule"] for f in found]


def test_a_failed_rehearsal_is_high():
    found = review([migration("001_i", INDEX)], {"accounts": table("accounts", 1)},
                   rehearsal={"ok": False, "error": {"version": "001_i", "line": 1, "msg": "boom"}})
    assert rules(found)[0] == ("rehearsal-failed", None, "high")


def test_policy_stops_at_the_grade_and_acceptance_lets_it_through():
    found = review([migration("001_i", INDEX)], {"accounts": table("accounts", 20000)})
    assert g.apply_policy([dict(f) for f in found], [], "high")["stop"] is True
    assert g.apply_policy([dict(f) for f in found], [], "never")["stop"] is False
    verdict = g.apply_policy(found, [{"rule": "table-scan-under-lock", "table": "accounts",
                                      "reason": "CHG-1 window booked"}], "high")
    assert verdict["stop"] is False and verdict["max_grade"] == "high" and verdict["max_open_grade"] == "none"
    assert verdict["accepted"] == [{"rule": "table-scan-under-lock", "table": "public.accounts", "version": "001_i",
                                    "line": 1, "grade": "high", "reason": "CHG-1 window booked"}]
    assert found[0]["accepted"] and found[0]["reason"] == "CHG-1 window booked"


def test_an_acceptance_for_another_table_does_not_match():
    found = review([migration("001_i", INDEX)], {"accounts": table("accounts", 20000)})
    verdict = g.apply_policy(found, [{"rule": "table-scan-under-lock", "table": "users", "reason": "r"}], "high")
    assert verdict["stop"] is True and verdict["unused_accepts"][0]["table"] == "users"


@pytest.mark.parametrize("entry, message", [
    ({"rule": "x", "table": "t"}, r"review_accept\[0\] needs a non-empty reason"),
    ({"rule": "x", "table": "t", "reason": " "}, r"review_accept\[0\] needs a non-empty reason"),
    ({"rule": "x", "table": "t", "reason": "r", "tabel": "u"}, r"review_accept\[0\] has unknown keys tabel"),
    ("x", r"review_accept\[0\] must be a mapping"),
])
def test_a_bad_acceptance_is_an_error_naming_it(entry, message):
    with pytest.raises(g.ReviewPolicyError, match=message):
        g.apply_policy([], [entry], "high")


def test_bad_thresholds_and_stop_grade_are_errors():
    with pytest.raises(g.ReviewPolicyError, match="low_rows \\(10\\) is above high_rows \\(5\\)"):
        g.Thresholds(low_rows=10, high_rows=5)
    with pytest.raises(g.ReviewPolicyError, match="high_rows must be a whole number"):
        g.Thresholds(high_rows="many")
    with pytest.raises(g.ReviewPolicyError, match="stop grade must be one of info, low, high, never"):
        g.apply_policy([], [], "medium")


def test_max_grade_is_none_without_findings():
    assert g.apply_policy([], [], "info") == {"accepted": [], "unused_accepts": [], "max_grade": "none",
                                              "max_open_grade": "none", "stop": False, "stop_at": "info"}


def test_rehearsal_locks_are_those_each_statement_took_or_strengthened():
    rehearsal = {"ok": True, "statements": [
        {"version": "001", "index": 1, "line": 1, "duration_ms": 10.0, "in_transaction": True,
         "held": [["public.a", "RowExclusiveLock"]]},
        {"version": "001", "index": 2, "line": 2, "duration_ms": 6.0, "in_transaction": True,
         "held": [["public.a", "RowExclusiveLock"], ["public.a", "AccessExclusiveLock"], ["public.b", "ShareLock"]]},
        {"version": "002", "index": 1, "line": 1, "duration_ms": 1.0, "in_transaction": True,
         "held": [["public.a", "RowExclusiveLock"]]}]}
    out = rehearsal_locks(rehearsal)
    assert [s["strongest_lock"] for s in out["statements"]] == ["ROW EXCLUSIVE", "ACCESS EXCLUSIVE", "ROW EXCLUSIVE"]
    assert out["statements"][1]["locks"] == [{"table": "public.a", "lock": "ACCESS EXCLUSIVE"},
                                             {"table": "public.b", "lock": "SHARE"}]
    assert g.predicted_window(out) == 0.017
    assert g.predicted_window(dict(out, ok=False)) is None
