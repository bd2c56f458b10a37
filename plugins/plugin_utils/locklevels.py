# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which statement takes which table lock, defined once.

Every entry names the section of the PostgreSQL 15 documentation it comes from:

- "13.3.1. Table-Level Locks" (mvcc-locking.html): the eight lock modes, the commands that take
  each of them, and "Table 13.2. Conflicting Lock Modes".
- "ALTER TABLE" (sql-altertable.html), Description: the lock each subform takes ("An ACCESS
  EXCLUSIVE lock is acquired unless explicitly noted. When multiple subcommands are given, the
  lock acquired will be the strictest one required by any subcommand"), and Notes: which forms
  rewrite the table and which scan it.
- "CREATE INDEX" (sql-createindex.html), "Building Indexes Concurrently"; "DROP INDEX"
  (sql-dropindex.html); "REINDEX" (sql-reindex.html); "CREATE TRIGGER" (sql-createtrigger.html);
  "LOCK" (sql-lock.html); "CREATE TABLE" (sql-createtable.html), REFERENCES.

Each entry is ``(lock mode, effect, documentation section)``. The effect says how long the lock
is held, as far as the statement alone decides it:

- ``brief``: a catalog change; the lock is held for an instant (but it still waits for, and
  queues everyone behind, any transaction holding a conflicting lock);
- ``scan``: the whole table is read while the lock is held (building an index, validating a
  constraint, checking NOT NULL);
- ``rewrite``: the whole table and its indexes are written anew while the lock is held.

This module is plain Python: no Ansible, no database, no parser.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ACCESS_SHARE = "ACCESS SHARE"
ROW_SHARE = "ROW SHARE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
SHARE = "SHARE"
SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
EXCLUSIVE = "EXCLUSIVE"
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

# Weakest first (13.3.1. Table-Level Locks lists them in this order).
MODES = (ACCESS_SHARE, ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE,
         EXCLUSIVE, ACCESS_EXCLUSIVE)

BRIEF = "brief"
SCAN = "scan"
REWRITE = "rewrite"

DOC_TABLE_LOCKS = "13.3.1. Table-Level Locks"
DOC_CONFLICTS = "13.3.1. Table-Level Locks, Table 13.2. Conflicting Lock Modes"
DOC_ALTER_TABLE = "SQL Commands: ALTER TABLE, Description"
DOC_ALTER_TABLE_NOTES = "SQL Commands: ALTER TABLE, Notes"
DOC_CREATE_INDEX = "SQL Commands: CREATE INDEX, Building Indexes Concurrently"
DOC_DROP_INDEX = "SQL Commands: DROP INDEX"
DOC_REINDEX = "SQL Commands: REINDEX"
DOC_CREATE_TRIGGER = "SQL Commands: CREATE TRIGGER"
DOC_CREATE_TABLE = "SQL Commands: CREATE TABLE, REFERENCES"
DOC_LOCK = "SQL Commands: LOCK"

# Table 13.2. Conflicting Lock Modes: the modes each mode conflicts with.
CONFLICTS = {
    ACCESS_SHARE: (ACCESS_EXCLUSIVE,),
    ROW_SHARE: (EXCLUSIVE, ACCESS_EXCLUSIVE),
    ROW_EXCLUSIVE: (SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE),
    SHARE_UPDATE_EXCLUSIVE: (SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE),
    SHARE: (ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE),
    SHARE_ROW_EXCLUSIVE: (ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE,
                          ACCESS_EXCLUSIVE),
    EXCLUSIVE: (ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE,
                ACCESS_EXCLUSIVE),
    ACCESS_EXCLUSIVE: MODES,
}

# Statements by pglast node name (and variant), for the table they act on.
STATEMENTS = {
    "SelectStmt": (ACCESS_SHARE, BRIEF, DOC_TABLE_LOCKS),
    "SelectStmt:locking": (ROW_SHARE, BRIEF, DOC_TABLE_LOCKS),
    "InsertStmt": (ROW_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "UpdateStmt": (ROW_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "UpdateStmt:all_rows": (ROW_EXCLUSIVE, SCAN, DOC_TABLE_LOCKS),
    "DeleteStmt": (ROW_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "DeleteStmt:all_rows": (ROW_EXCLUSIVE, SCAN, DOC_TABLE_LOCKS),
    "MergeStmt": (ROW_EXCLUSIVE, SCAN, DOC_TABLE_LOCKS),
    "IndexStmt": (SHARE, SCAN, DOC_CREATE_INDEX),
    "IndexStmt:concurrent": (SHARE_UPDATE_EXCLUSIVE, SCAN, DOC_CREATE_INDEX),
    "DropStmt:index": (ACCESS_EXCLUSIVE, BRIEF, DOC_DROP_INDEX),
    "DropStmt:index:concurrent": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_DROP_INDEX),
    "DropStmt:table": (ACCESS_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "TruncateStmt": (ACCESS_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "ReindexStmt": (SHARE, SCAN, DOC_REINDEX),
    "ReindexStmt:concurrent": (SHARE_UPDATE_EXCLUSIVE, SCAN, DOC_REINDEX),
    "ClusterStmt": (ACCESS_EXCLUSIVE, REWRITE, DOC_TABLE_LOCKS),
    "VacuumStmt": (SHARE_UPDATE_EXCLUSIVE, SCAN, DOC_TABLE_LOCKS),
    "VacuumStmt:full": (ACCESS_EXCLUSIVE, REWRITE, DOC_TABLE_LOCKS),
    "RefreshMatViewStmt": (ACCESS_EXCLUSIVE, REWRITE, DOC_TABLE_LOCKS),
    "RefreshMatViewStmt:concurrent": (EXCLUSIVE, SCAN, DOC_TABLE_LOCKS),
    "CreateTrigStmt": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_CREATE_TRIGGER),
    "DropStmt:trigger": (ACCESS_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "RuleStmt": (ACCESS_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "CreateStatsStmt": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "CommentStmt": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_TABLE_LOCKS),
    "RenameStmt": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AlterObjectSchemaStmt": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    # A new table's REFERENCES: "SHARE ROW EXCLUSIVE" on the referenced table (CREATE TABLE
    # adds the foreign key's triggers there), held for an instant as the new table is empty.
    "CreateStmt:references": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_CREATE_TABLE),
}

# ALTER TABLE subcommands by pglast's AlterTableType name (the subforms of the Description).
# Variants a subcommand's details decide (see review_parse) carry a suffix.
ALTER_TABLE = {
    "AT_AddColumn": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE_NOTES),
    # Notes: "Adding a column with a volatile DEFAULT or changing the type of an existing column
    # will require the entire table and its indexes to be rewritten"; so does a stored
    # generated column or an identity column.
    "AT_AddColumn:rewrite": (ACCESS_EXCLUSIVE, REWRITE, DOC_ALTER_TABLE_NOTES),
    # A new column with UNIQUE / PRIMARY KEY / CHECK / NOT NULL: its index is built or its
    # constraint checked over the whole table.
    "AT_AddColumn:scan": (ACCESS_EXCLUSIVE, SCAN, DOC_ALTER_TABLE_NOTES),
    "AT_ColumnDefault": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DropNotNull": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    # SET NOT NULL: "the table will be scanned to ensure no null values" (unless a valid CHECK
    # constraint proves it).
    "AT_SetNotNull": (ACCESS_EXCLUSIVE, SCAN, DOC_ALTER_TABLE),
    "AT_SetExpression": (ACCESS_EXCLUSIVE, REWRITE, DOC_ALTER_TABLE),
    "AT_DropExpression": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_SetStatistics": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_SetOptions": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_ResetOptions": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_SetStorage": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_SetCompression": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DropColumn": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE_NOTES),
    # (ADD CONSTRAINT ... UNIQUE / PRIMARY KEY as the server expands it.)
    "AT_AddIndex": (ACCESS_EXCLUSIVE, SCAN, DOC_ALTER_TABLE),
    # ADD table_constraint: ACCESS EXCLUSIVE, the table scanned to check it (or an index
    # built for UNIQUE / PRIMARY KEY / EXCLUDE) unless NOT VALID.
    "AT_AddConstraint": (ACCESS_EXCLUSIVE, SCAN, DOC_ALTER_TABLE),
    "AT_AddConstraint:not_valid": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    # "ADD FOREIGN KEY requires a SHARE ROW EXCLUSIVE lock on the referenced table, in addition
    # to the lock on the table on which the constraint is declared."
    "AT_AddConstraint:foreign": (SHARE_ROW_EXCLUSIVE, SCAN, DOC_ALTER_TABLE),
    "AT_AddConstraint:foreign:not_valid": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_AddConstraint:referenced": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_AddIndexConstraint": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_AlterConstraint": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    # VALIDATE CONSTRAINT: "acquires a SHARE UPDATE EXCLUSIVE lock on the table being altered"
    # (and ROW SHARE on a foreign key's referenced table).
    "AT_ValidateConstraint": (SHARE_UPDATE_EXCLUSIVE, SCAN, DOC_ALTER_TABLE),
    "AT_DropConstraint": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_AlterColumnType": (ACCESS_EXCLUSIVE, REWRITE, DOC_ALTER_TABLE_NOTES),
    "AT_AlterColumnGenericOptions": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_ChangeOwner": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_ClusterOn": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DropCluster": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_SetLogged": (ACCESS_EXCLUSIVE, REWRITE, DOC_ALTER_TABLE),
    "AT_SetUnLogged": (ACCESS_EXCLUSIVE, REWRITE, DOC_ALTER_TABLE),
    "AT_SetAccessMethod": (ACCESS_EXCLUSIVE, REWRITE, DOC_ALTER_TABLE),
    "AT_SetTableSpace": (ACCESS_EXCLUSIVE, REWRITE, DOC_ALTER_TABLE),
    # SET ( storage_parameter ): SHARE UPDATE EXCLUSIVE for fillfactor, toast and autovacuum
    # parameters and the planner's; ACCESS EXCLUSIVE is the safe reading for the rest.
    "AT_SetRelOptions": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_ResetRelOptions": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_ReplaceRelOptions": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    # ENABLE/DISABLE TRIGGER: SHARE ROW EXCLUSIVE.
    "AT_EnableTrig": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableAlwaysTrig": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableReplicaTrig": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DisableTrig": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableTrigAll": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DisableTrigAll": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableTrigUser": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DisableTrigUser": (SHARE_ROW_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableRule": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableAlwaysRule": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableReplicaRule": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DisableRule": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_AddInherit": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DropInherit": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_AddOf": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DropOf": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_ReplicaIdentity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_EnableRowSecurity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DisableRowSecurity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_ForceRowSecurity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_NoForceRowSecurity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_GenericOptions": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    # ATTACH PARTITION: SHARE UPDATE EXCLUSIVE on the parent, the partition scanned unless a
    # constraint proves the bound; DETACH PARTITION: ACCESS EXCLUSIVE (CONCURRENTLY: SHARE UPDATE
    # EXCLUSIVE).
    "AT_AttachPartition": (SHARE_UPDATE_EXCLUSIVE, SCAN, DOC_ALTER_TABLE),
    "AT_DetachPartition": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DetachPartition:concurrent": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DetachPartitionFinalize": (SHARE_UPDATE_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_AddIdentity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_SetIdentity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
    "AT_DropIdentity": (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE),
}

# LOCK TABLE ... IN <mode> MODE: pglast's lock mode numbers (1 = ACCESS SHARE ... 8); the
# default is ACCESS EXCLUSIVE (SQL Commands: LOCK).
LOCK_STATEMENT_MODES = dict((number, mode) for number, mode in enumerate(MODES, 1))

# pg_locks.mode spells the modes this way (13.3.1. Table-Level Locks; "28.2. Viewing Locks").
PG_LOCKS = {"AccessShareLock": ACCESS_SHARE, "RowShareLock": ROW_SHARE, "RowExclusiveLock": ROW_EXCLUSIVE,
            "ShareUpdateExclusiveLock": SHARE_UPDATE_EXCLUSIVE, "ShareLock": SHARE,
            "ShareRowExclusiveLock": SHARE_ROW_EXCLUSIVE, "ExclusiveLock": EXCLUSIVE,
            "AccessExclusiveLock": ACCESS_EXCLUSIVE}


def from_pg_locks(mode):
    """The documentation's name of a pg_locks mode (unknown ones unchanged)."""
    return PG_LOCKS.get(mode, mode)


def rank(mode):
    """0 for ACCESS SHARE up to 7 for ACCESS EXCLUSIVE."""
    return MODES.index(mode)


def strongest(modes):
    """The strongest of some lock modes, or None for none."""
    modes = [m for m in modes if m]
    return max(modes, key=rank) if modes else None


def conflicts(mode, other):
    """True when a lock in ``mode`` waits for (and is waited for by) a lock in ``other``."""
    return other in CONFLICTS[mode]


def blocks_reads(mode):
    """True when the mode keeps plain SELECTs out (only ACCESS EXCLUSIVE does)."""
    return conflicts(mode, ACCESS_SHARE)


def blocks_writes(mode):
    """True when the mode keeps INSERT, UPDATE and DELETE out."""
    return conflicts(mode, ROW_EXCLUSIVE)


def blocked(mode):
    """In words, what the mode keeps out while it is held."""
    if blocks_reads(mode):
        return "reads and writes"
    if blocks_writes(mode):
        return "writes"
    if conflicts(mode, SHARE_UPDATE_EXCLUSIVE):
        return "schema changes, VACUUM and index builds"
    if conflicts(mode, EXCLUSIVE):
        return "schema changes"
    return "only ACCESS EXCLUSIVE"


def statement_lock(key):
    """(mode, effect, section) of a statement kind; KeyError names the key."""
    return STATEMENTS[key]


def alter_table_lock(key):
    """(mode, effect, section) of an ALTER TABLE subcommand; unknown ones are ACCESS EXCLUSIVE,
    as the Description says of every subform that does not note otherwise."""
    return ALTER_TABLE.get(key) or ALTER_TABLE.get(key.split(":")[0]) or (ACCESS_EXCLUSIVE, BRIEF, DOC_ALTER_TABLE)
