# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide what a run does, from a migration set and the history table's rows.

Plain Python, no database: the executor reads the history rows, calls plan(),
and carries the plan out. Every reason to refuse a run is found here, before
anything is changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

STATES = ("applied", "rolled_back", "status", "verified")
REPORTS = ("status", "verified")  # states that only read
TRANSACTION_MODES = ("per_migration", "all")
NO_TARGET = ("none", "0")


class PlanError(ValueError):
    """A run that must not start; the message names the file or version."""


class HistoryRow(object):
    """One row of the history table as the planner needs it."""

    __slots__ = ("version", "applied_at", "checksum", "migration_set")

    def __init__(self, version, applied_at=None, checksum=None, migration_set=None):
        self.version = version
        self.applied_at = applied_at
        self.checksum = checksum
        self.migration_set = migration_set


class Plan(object):
    def __init__(self, state):
        self.state = state
        self.to_apply = []
        self.to_rollback = []
        self.applied = []      # versions of this set already applied, in set order
        self.pending = []      # versions of this set not applied, in set order
        self.problems = []     # reasons the set and the history disagree
        self.warnings = []

    @property
    def current_version(self):
        return self.applied[-1] if self.applied else None

    def versions_after(self):
        """The set's applied versions once the plan has been carried out."""
        gone = set(m.version for m in self.to_rollback)
        added = set(m.version for m in self.to_apply)
        applied = set(self.applied)
        return [v for v in self.applied + self.pending if (v in applied and v not in gone) or v in added]


def plan(mset, rows, state="applied", target=None, allow_out_of_order=False, transaction="per_migration"):
    """Return the Plan for running ``mset`` against history ``rows``.

    Raises PlanError for a run that must not start (unless state is status or
    verified, which report the same problems in ``Plan.problems``).
    """
    if state not in STATES:
        raise PlanError("state must be one of %s, not %s" % (", ".join(STATES), state))
    if transaction not in TRANSACTION_MODES:
        raise PlanError("transaction must be one of %s, not %s" % (", ".join(TRANSACTION_MODES), transaction))
    result = Plan(state)
    by_version = dict((row.version, row) for row in rows)

    for row in rows:
        if row.migration_set == mset.name and mset.get(row.version) is None:
            result.problems.append("%s.sql was applied from set %s but is missing from the set"
                                   % (row.version, mset.name))
    newest_applied = -1
    for migration in mset.migrations:
        row = by_version.get(migration.version)
        if row is None:
            result.pending.append(migration.version)
            continue
        result.applied.append(migration.version)
        newest_applied = max(newest_applied, migration.number)
        if row.checksum is None:
            result.warnings.append("%s was recorded without a checksum (by another tool); its file "
                                   "cannot be compared" % migration.version)
        elif row.checksum != migration.checksum:
            result.problems.append("%s has changed since it was applied (recorded checksum %s, file %s)"
                                   % (migration.script.relpath, row.checksum[:12], migration.checksum[:12]))
    late = [v for v in result.pending if mset.get(v).number < newest_applied]
    if late and not allow_out_of_order:
        result.problems.append("%s %s older than the newest applied migration %s; set allow_out_of_order to "
                               "apply out of order" % (", ".join(v + ".sql" for v in late),
                                                       "is" if len(late) == 1 else "are", result.applied[-1]))
    if state in REPORTS:
        return result
    if result.problems:
        raise PlanError("; ".join(result.problems))

    if state == "applied":
        last = mset.position(target) if target not in (None, "") else len(mset.migrations) - 1
        result.to_apply = [m for m in mset.migrations[:last + 1] if m.version in result.pending]
        if transaction == "all":
            for migration in result.to_apply:
                if migration.no_transaction:
                    raise PlanError("%s is marked no-transaction and cannot run with transaction: all"
                                    % migration.script.relpath)
        if target not in (None, "") and mset.position(target) < len(result.applied) - 1 and not result.to_apply:
            result.warnings.append("target %s is older than the current version %s: nothing is applied "
                                   "(use state rolled_back to go back)" % (target, result.current_version))
        return result

    # rolled_back: the target is never implied, an omitted one must not roll back the set.
    if target in (None, ""):
        raise PlanError("state rolled_back needs a target: the version to roll back to (it stays applied), "
                        "or none to roll back the whole set %s" % mset.name)
    if str(target).lower() in NO_TARGET:
        keep = -1
    else:
        keep = mset.position(target)
    doomed = [m for m in mset.migrations[keep + 1:] if m.version in result.applied]
    for migration in doomed:
        row = by_version[migration.version]
        if row.migration_set != mset.name:
            raise PlanError("%s was not recorded by teei.db_rollout for set %s; roll it back by hand"
                            % (migration.version, mset.name))
        if migration.rollback is None:
            raise PlanError("%s has no rollback script rollback/%s" % (migration.version, migration.script.relpath))
        if transaction == "all" and migration.rollback.no_transaction:
            raise PlanError("rollback/%s is marked no-transaction and cannot run with transaction: all"
                            % migration.script.relpath)
    result.to_rollback = list(reversed(doomed))
    return result
