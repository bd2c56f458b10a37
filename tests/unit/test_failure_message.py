"""The last word of a failed rollout or rollback: the failed task, and the state each branch leaves."""

import pytest

from ansible_collections.teei.db_rollout.plugins.plugin_utils.outcome import failure_message

FAILURE = dict(task="Apply the pending migrations", msg="004_x: verification failed.\n  audit_log is wrong")
BACKUP = dict(path="/backups/db1/run.dump", restore_command="pg_restore --clean -d cockpit /backups/db1/run.dump")


def test_a_failure_before_the_backup_changed_nothing():
    msg = failure_message(FAILURE)
    assert msg == ('Rollout failed at "Apply the pending migrations": 004_x: verification failed. '
                   'audit_log is wrong. Nothing was changed.')


def test_rolled_back_names_the_starting_version():
    assert failure_message(FAILURE, start_version="003_a", backup=BACKUP).endswith(
        "The database is back at 003_a.")
    assert failure_message(FAILURE, start_version=None, backup=BACKUP).endswith(
        "The database is back at its starting version.")


def test_a_failed_rollback_gives_the_exact_restore_command():
    msg = failure_message(FAILURE, start_version="003_a", backup=BACKUP, rollback_failure="rollback/004 failed")
    assert "The rollback of this run's migrations failed (rollback/004 failed)." in msg
    assert msg.endswith("between versions: restore the backup this run took with: " + BACKUP["restore_command"])
    assert "back at" not in msg


def test_a_restored_backup_says_so():
    msg = failure_message(FAILURE, backup=BACKUP, rollback_failure="rollback/004 failed", restored=True)
    assert msg.endswith("failed (rollback/004 failed); the backup /backups/db1/run.dump was restored.")


def test_a_failed_restore_still_gives_the_command():
    msg = failure_message(FAILURE, backup=BACKUP, rollback_failure="rollback/004 failed", restored=True,
                          restore_failure="pg_restore: error")
    assert "failed (rollback/004 failed); so did the restore (pg_restore: error)." in msg
    assert msg.endswith(BACKUP["restore_command"])
    assert "was restored" not in msg


def test_a_rollback_playbook_names_the_command_or_nothing_changed():
    assert failure_message(FAILURE, purpose="rollback").startswith('Rollback failed at "Apply')
    assert failure_message(FAILURE, purpose="rollback").endswith("Nothing was changed.")
    assert failure_message(FAILURE, purpose="rollback", backup=BACKUP).endswith(
        "Restore the backup this run took with: " + BACKUP["restore_command"])


def test_an_unknown_purpose_is_named():
    with pytest.raises(ValueError, match="purpose must be one of rollout, rollback, not 'deploy'"):
        failure_message(FAILURE, purpose="deploy")
