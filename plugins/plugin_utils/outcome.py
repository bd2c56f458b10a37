# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a failed rollout or rollback says last about its database, in plain Python.

The playbooks' last task per database fails with this message: where the run failed, and the state it
left the database in (nothing changed, back at its starting version, restored from this run's backup, or
between versions with the exact command that restores the backup). Imports neither Ansible nor a driver.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

PURPOSES = ("rollout", "rollback")


def _one_line(text):
    return " ".join(str(text).split())


def failure_message(failure, purpose="rollout", start_version=None, backup=None, rollback_failure=None,
                    restored=False, restore_failure=None):
    """The message ending a database's failed run.

    ``failure`` is ``{task, msg}`` (the rescue's note); ``backup`` the backup role's result when it ran
    (its ``path`` and ``restore_command``); ``rollback_failure`` the message of the rollback of this run's
    migrations when it failed; ``restored`` whether the restore role ran, ``restore_failure`` its message
    when it failed."""
    if purpose not in PURPOSES:
        raise ValueError("failure_message: purpose must be one of %s, not %r" % (", ".join(PURPOSES), purpose))
    failure = failure or {}
    head = '%s failed at "%s": %s.' % (purpose.capitalize(), failure.get("task") or "an unnamed task",
                                       _one_line(failure.get("msg") or "failed").rstrip("."))
    backup = backup or {}
    command = backup.get("restore_command")
    if purpose == "rollback":
        if command:
            return "%s Restore the backup this run took with: %s" % (head, command)
        return "%s Nothing was changed." % head
    if rollback_failure is None:
        if not backup:
            return "%s Nothing was changed." % head
        return "%s The database is back at %s." % (head, start_version or "its starting version")
    rollback = "The rollback of this run's migrations failed (%s)" % _one_line(rollback_failure)
    if restored and restore_failure is None:
        return "%s %s; the backup %s was restored." % (head, rollback, backup.get("path"))
    if restore_failure is not None:
        rollback += "; so did the restore (%s)" % _one_line(restore_failure)
    return ("%s %s. The database is between versions: restore the backup this run took with: %s"
            % (head, rollback, command))
