-- 003_add_api_keys_table
--
-- What it does
--   Adds api_keys (hashed keys for programmatic access, per company) and
--   api_key_usage (usage tracking per key). Re-runnable: every CREATE is
--   IF NOT EXISTS and GRANT is idempotent.
--
-- Grants (cockpit_app):
--   api_keys: SELECT, INSERT, UPDATE. The application creates keys, looks
--     them up by hash, records last_used_at and revokes them by setting
--     revoked_at/revoked_by; revoked keys stay for the audit trail, so no
--     DELETE (rows disappear only through ON DELETE CASCADE from companies,
--     which does not need the application to hold DELETE).
--   api_key_usage: SELECT, INSERT, UPDATE, plus USAGE on api_key_usage_id_seq
--     (BIGSERIAL: INSERT calls nextval). UPDATE because request_count is a
--     counter the application bumps on an existing usage row. No DELETE:
--     archival is an operator's job.
--
-- Changes from the runbook's SQL, statement by statement
--   * CREATE TABLE api_keys / api_key_usage: unchanged. (gen_random_uuid() is
--     built into PostgreSQL 13+, no pgcrypto needed.)
--   * CREATE INDEX idx_api_keys_key_hash: dropped. key_hash is UNIQUE, so
--     api_keys_key_hash_key already indexes it.
--   * CREATE INDEX idx_api_keys_company_id, idx_api_keys_expires_at,
--     idx_api_key_usage_api_key_id, idx_api_key_usage_used_at: now
--     IF NOT EXISTS, so that a re-run does not fail.
--   * The runbook's comment "Partition by month for efficient archival" is
--     dropped: api_key_usage is an ordinary table, as the runbook creates it.
--   * New: GRANTs to cockpit_app (see Grants).

CREATE TABLE IF NOT EXISTS api_keys (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  company_id UUID NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  name VARCHAR(255) NOT NULL,
  key_hash VARCHAR(255) NOT NULL UNIQUE,  -- bcrypt hash of actual key
  key_prefix VARCHAR(16) NOT NULL,         -- First 8 chars for display
  scopes TEXT[] NOT NULL DEFAULT ARRAY['read:metrics'],
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  created_by UUID REFERENCES users(id) ON DELETE SET NULL,
  last_used_at TIMESTAMP WITH TIME ZONE,
  expires_at TIMESTAMP WITH TIME ZONE,
  revoked_at TIMESTAMP WITH TIME ZONE,
  revoked_by UUID REFERENCES users(id) ON DELETE SET NULL,
  metadata JSONB DEFAULT '{}'::jsonb,

  CONSTRAINT valid_expiry CHECK (expires_at IS NULL OR expires_at > created_at),
  CONSTRAINT valid_revocation CHECK (revoked_at IS NULL OR revoked_at > created_at)
);

CREATE INDEX IF NOT EXISTS idx_api_keys_company_id ON api_keys(company_id);
CREATE INDEX IF NOT EXISTS idx_api_keys_expires_at ON api_keys(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS api_key_usage (
  id BIGSERIAL PRIMARY KEY,
  api_key_id UUID NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  used_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  endpoint VARCHAR(255),
  ip_address INET,
  user_agent TEXT,
  request_count INTEGER DEFAULT 1
);

CREATE INDEX IF NOT EXISTS idx_api_key_usage_api_key_id ON api_key_usage(api_key_id);
CREATE INDEX IF NOT EXISTS idx_api_key_usage_used_at ON api_key_usage(used_at);

GRANT SELECT, INSERT, UPDATE ON api_keys TO cockpit_app;
GRANT SELECT, INSERT, UPDATE ON api_key_usage TO cockpit_app;
GRANT USAGE ON SEQUENCE api_key_usage_id_seq TO cockpit_app;
