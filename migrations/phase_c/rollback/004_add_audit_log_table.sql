-- Rollback of 004_add_audit_log_table: back to the schema before 004.
-- Drops cleanup_old_audit_logs(integer) and audit_log with its rows, indexes,
-- sequence and cockpit_app's grants. Re-runnable (IF EXISTS).
-- Change from the runbook's rollback: DROP FUNCTION names the argument list
-- (integer), so it cannot hit another overload of the same name.
DROP FUNCTION IF EXISTS cleanup_old_audit_logs(INTEGER);
DROP TABLE IF EXISTS audit_log;
