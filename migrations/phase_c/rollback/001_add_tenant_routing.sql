-- Rollback of 001_add_tenant_routing: back to the schema before 001.
-- Drops the tenant routing columns and with them their data (slugs,
-- tenant_enabled/tenant_config, allowed_tenants, sessions' tenant_id and
-- last_tenant_switch_at), the UNIQUE constraint companies_slug_key and the
-- index idx_sessions_tenant_id. idx_companies_slug is dropped too in case a
-- runbook-era run created it. Re-runnable (IF EXISTS everywhere).
-- Changes from the runbook's rollback: the DROP INDEX statements come first
-- (in the runbook they ran after the columns were gone, which had already
-- taken the indexes with them, so they only printed notices); the column
-- drops are grouped per table. Same end state.
DROP INDEX IF EXISTS idx_companies_slug;
DROP INDEX IF EXISTS idx_sessions_tenant_id;
ALTER TABLE sessions
  DROP COLUMN IF EXISTS last_tenant_switch_at,
  DROP COLUMN IF EXISTS tenant_id;
ALTER TABLE users
  DROP COLUMN IF EXISTS allowed_tenants;
ALTER TABLE companies
  DROP COLUMN IF EXISTS tenant_config,
  DROP COLUMN IF EXISTS tenant_enabled,
  DROP COLUMN IF EXISTS slug;
