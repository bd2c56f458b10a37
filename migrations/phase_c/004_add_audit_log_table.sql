-- 004_add_audit_log_table
--
-- What it does
--   Adds audit_log (admin actions, for compliance; its user_role column uses
--   user_role_enum from 002) and the retention function
--   cleanup_old_audit_logs(retention_days). Re-runnable: CREATE ... IF NOT
--   EXISTS, CREATE OR REPLACE FUNCTION, idempotent GRANTs.
--
-- Grants (cockpit_app):
--   audit_log: INSERT and SELECT only. The log is append-only for the
--     application: it writes entries and shows them (audit_log:view), it
--     never changes or deletes them.
--   audit_log_id_seq: USAGE (BIGSERIAL: INSERT calls nextval).
--   cleanup_old_audit_logs() keeps PostgreSQL's default EXECUTE for PUBLIC,
--     but it runs with the caller's rights, and cockpit_app holds no DELETE on
--     audit_log, so only an operator (owner) can purge.
--
-- Changes from the runbook's SQL, statement by statement
--   * CREATE TABLE audit_log: the column-level
--     `CHECK (severity IN ('info', 'warning', 'error'))` is removed; it
--     duplicated the named table constraint valid_severity (which stays).
--   * CREATE INDEX idx_audit_log_*: now IF NOT EXISTS, so that a re-run does
--     not fail. None is redundant (no UNIQUE constraint covers them).
--   * CREATE OR REPLACE FUNCTION cleanup_old_audit_logs: unchanged.
--   * The commented-out pg_cron schedule is left out (it is not run).
--   * New: GRANTs to cockpit_app (see Grants).

CREATE TABLE IF NOT EXISTS audit_log (
  id BIGSERIAL PRIMARY KEY,
  timestamp TIMESTAMP WITH TIME ZONE DEFAULT NOW() NOT NULL,
  company_id UUID NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  user_id UUID REFERENCES users(id) ON DELETE SET NULL,
  user_email VARCHAR(255),
  user_role user_role_enum,
  action VARCHAR(100) NOT NULL,
  resource VARCHAR(100) NOT NULL,
  resource_id VARCHAR(255),
  severity VARCHAR(20) DEFAULT 'info',
  details JSONB,
  ip_address INET,
  user_agent TEXT,
  session_id VARCHAR(255),

  CONSTRAINT valid_severity CHECK (severity IN ('info', 'warning', 'error'))
);

CREATE INDEX IF NOT EXISTS idx_audit_log_company_id ON audit_log(company_id);
CREATE INDEX IF NOT EXISTS idx_audit_log_user_id ON audit_log(user_id);
CREATE INDEX IF NOT EXISTS idx_audit_log_timestamp ON audit_log(timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_audit_log_action ON audit_log(action);
CREATE INDEX IF NOT EXISTS idx_audit_log_severity ON audit_log(severity) WHERE severity != 'info';

CREATE OR REPLACE FUNCTION cleanup_old_audit_logs(retention_days INTEGER DEFAULT 90)
RETURNS INTEGER AS $$
DECLARE
  deleted_count INTEGER;
BEGIN
  DELETE FROM audit_log
  WHERE timestamp < NOW() - (retention_days || ' days')::INTERVAL;

  GET DIAGNOSTICS deleted_count = ROW_COUNT;
  RETURN deleted_count;
END;
$$ LANGUAGE plpgsql;

GRANT SELECT, INSERT ON audit_log TO cockpit_app;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO cockpit_app;
