-- Rollback of 005_add_weight_overrides_table: back to the schema before 005.
-- Drops the trigger, weight_override_history and weight_overrides with their
-- rows, indexes, sequence and cockpit_app's grants, then the trigger
-- function. Re-runnable (IF EXISTS).
-- Changes from the runbook's rollback: the tables are dropped before the
-- function (the trigger goes with its table), and DROP FUNCTION names the
-- empty argument list.
DROP TRIGGER IF EXISTS weight_override_update_trigger ON weight_overrides;
DROP TABLE IF EXISTS weight_override_history;
DROP TABLE IF EXISTS weight_overrides;
DROP FUNCTION IF EXISTS track_weight_override_changes();
