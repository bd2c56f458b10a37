-- 006_add_integration_configs_table
--
-- What it does
--   Adds integration_configs (one Impact-In platform configuration per
--   company and platform: benevity, goodera, workday) and
--   integration_delivery_log (one row per delivery attempt). Re-runnable:
--   CREATE ... IF NOT EXISTS, idempotent GRANTs.
--
-- Grants (cockpit_app):
--   integration_configs: SELECT, INSERT, UPDATE, DELETE. integrations:manage
--     adds, edits, enables/disables and removes a platform; the sync records
--     last_synced_at/last_sync_status/error_message.
--   integration_delivery_log: SELECT, INSERT, UPDATE, plus USAGE on
--     integration_delivery_log_id_seq (BIGSERIAL). A delivery moves through
--     queued -> sending -> success/failed/retrying and counts retry_count on
--     its row, so the application updates it. No DELETE: it is a log.
--
-- Changes from the runbook's SQL, statement by statement
--   * CREATE TABLE integration_configs / integration_delivery_log: unchanged.
--   * CREATE INDEX idx_integration_configs_company_id: dropped. The constraint
--     UNIQUE (company_id, platform) already has an index led by company_id.
--   * CREATE INDEX idx_integration_configs_platform,
--     idx_integration_delivery_log_config_id,
--     idx_integration_delivery_log_delivered_at,
--     idx_integration_delivery_log_status: now IF NOT EXISTS (re-run).
--   * New: GRANTs to cockpit_app (see Grants).

CREATE TABLE IF NOT EXISTS integration_configs (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  company_id UUID NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  platform VARCHAR(50) NOT NULL CHECK (platform IN ('benevity', 'goodera', 'workday')),
  enabled BOOLEAN DEFAULT false,
  api_endpoint TEXT,
  credentials_encrypted TEXT,  -- Encrypted JSON containing API keys
  config JSONB DEFAULT '{}'::jsonb,
  last_synced_at TIMESTAMP WITH TIME ZONE,
  last_sync_status VARCHAR(20) CHECK (last_sync_status IN ('success', 'failed', 'pending')),
  error_message TEXT,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

  UNIQUE (company_id, platform)
);

CREATE TABLE IF NOT EXISTS integration_delivery_log (
  id BIGSERIAL PRIMARY KEY,
  integration_config_id UUID NOT NULL REFERENCES integration_configs(id) ON DELETE CASCADE,
  company_id UUID NOT NULL,
  platform VARCHAR(50) NOT NULL,
  delivered_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  status VARCHAR(20) NOT NULL CHECK (status IN ('queued', 'sending', 'success', 'failed', 'retrying')),
  payload_hash VARCHAR(64),  -- SHA256 hash of payload for deduplication
  error_message TEXT,
  retry_count INTEGER DEFAULT 0,
  response_status INTEGER,
  response_body TEXT,
  duration_ms INTEGER,
  metadata JSONB
);

CREATE INDEX IF NOT EXISTS idx_integration_configs_platform ON integration_configs(platform);
CREATE INDEX IF NOT EXISTS idx_integration_delivery_log_config_id ON integration_delivery_log(integration_config_id);
CREATE INDEX IF NOT EXISTS idx_integration_delivery_log_delivered_at ON integration_delivery_log(delivered_at DESC);
CREATE INDEX IF NOT EXISTS idx_integration_delivery_log_status ON integration_delivery_log(status);

GRANT SELECT, INSERT, UPDATE, DELETE ON integration_configs TO cockpit_app;
GRANT SELECT, INSERT, UPDATE ON integration_delivery_log TO cockpit_app;
GRANT USAGE ON SEQUENCE integration_delivery_log_id_seq TO cockpit_app;
