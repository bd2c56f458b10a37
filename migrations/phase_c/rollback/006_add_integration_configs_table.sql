-- Rollback of 006_add_integration_configs_table: back to the schema before
-- 006. Drops integration_delivery_log and integration_configs with their
-- rows, indexes, sequence and cockpit_app's grants. Re-runnable (IF EXISTS).
-- Unchanged from the runbook.
DROP TABLE IF EXISTS integration_delivery_log;
DROP TABLE IF EXISTS integration_configs;
