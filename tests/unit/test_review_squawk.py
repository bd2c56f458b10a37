"""squawk run as it is: the pinned binary, its JSON, 1-based lines; a missing binary is a clear error."""

import pytest

from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_report import markdown, text_table
from ansible_collections.teei.db_rollout.plugins.plugin_utils.review_squawk import (
    SquawkError,
    find_squawk,
    pg_version_arg,
    run_squawk,
)


def test_squawk_reports_with_one_based_lines(tmp_path):
    path = tmp_path / "001_i.sql"
    path.write_text("-- an index\nCREATE INDEX i ON accounts (email);\n")
    findings = run_squawk(find_squawk(), str(path), "15.18")
    rules = [(f["rule"], f["line"]) for f in findings]
    assert ("require-concurrent-index-creation", 2) in rules


def test_excluded_rules_are_not_reported(tmp_path):
    path = tmp_path / "001_i.sql"
    path.write_text("CREATE INDEX i ON accounts (email);\n")
    findings = run_squawk(find_squawk(), str(path), "15.18", exclude=["require-concurrent-index-creation"])
    assert "require-concurrent-index-creation" not in [f["rule"] for f in findings]


def test_a_missing_squawk_is_a_clear_error():
    with pytest.raises(SquawkError, match="squawk binary /nope/squawk does not exist or is not executable"):
        find_squawk("/nope/squawk")


def test_pg_version_comes_from_server_version_num():
    assert pg_version_arg(150018) == "15.18"
    assert pg_version_arg("140009") == "14.9"


def test_the_table_and_markdown_mark_accepted_findings_and_the_stop():
    finding = {"rule": "table-rewrite", "grade": "high", "table": "public.users", "version": "001_x", "line": 3,
               "lock": "ACCESS EXCLUSIVE", "rows": 100000, "total_bytes": 30 * 1024 ** 2, "message": "rewrites | all",
               "accepted": True}
    verdict = {"max_grade": "high", "max_open_grade": "none", "stop": False, "stop_at": "high",
               "accepted": [{"rule": "table-rewrite", "table": "public.users", "grade": "high", "version": "001_x",
                             "line": 3, "reason": "CHG-1"}]}
    table = text_table("cockpit", [finding], verdict, 1.5)
    assert "high*" in table and "30.0 MB" in table and "predicted window 1.500 s" in table
    assert "* accepted table-rewrite on public.users: CHG-1" in table
    md = markdown("cockpit", [finding], verdict, 1.5)
    assert "rewrites \\| all" in md and "**1.500 s**" in md and "`table-rewrite` on `public.users`" in md
    stopped = text_table("cockpit", [dict(finding, accepted=False)], dict(verdict, stop=True, max_open_grade="high"),
                         None)
    assert "STOP: an open finding is graded high" in stopped
