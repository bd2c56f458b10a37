-- Rollback of 003_add_api_keys_table: back to the schema before 003.
-- Drops api_key_usage and api_keys with their rows, indexes, sequence and
-- cockpit_app's grants. Re-runnable (IF EXISTS). Unchanged from the runbook.
DROP TABLE IF EXISTS api_key_usage;
DROP TABLE IF EXISTS api_keys;
