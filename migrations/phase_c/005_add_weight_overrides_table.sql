-- 005_add_weight_overrides_table
--
-- What it does
--   Adds weight_overrides (custom SROI/VIS weights, one row per company and
--   category) and weight_override_history, plus the trigger
--   weight_override_update_trigger that writes a history row whenever an
--   override's weights change. Re-runnable: CREATE ... IF NOT EXISTS,
--   CREATE OR REPLACE FUNCTION / TRIGGER, idempotent GRANTs.
--
-- Grants (cockpit_app):
--   weight_overrides: SELECT, INSERT, UPDATE, DELETE. weights:manage creates,
--     edits and resets (deletes) a company's overrides.
--   weight_override_history: SELECT, INSERT, plus USAGE on
--     weight_override_history_id_seq. The trigger function runs with the
--     rights of the role doing the UPDATE (cockpit_app), so it needs INSERT
--     and nextval; SELECT shows the trail. No UPDATE/DELETE: the history is
--     append-only.
--
-- Changes from the runbook's SQL, statement by statement
--   * CREATE TABLE weight_overrides / weight_override_history: unchanged.
--   * CREATE INDEX idx_weight_overrides_company_id: dropped. The constraint
--     UNIQUE (company_id, category) already has an index led by company_id.
--   * CREATE INDEX idx_weight_override_history_weight_override_id,
--     idx_weight_override_history_changed_at: now IF NOT EXISTS (re-run).
--   * CREATE OR REPLACE FUNCTION track_weight_override_changes: unchanged.
--   * CREATE TRIGGER weight_override_update_trigger: now CREATE OR REPLACE
--     TRIGGER (PostgreSQL 14+), so that a re-run does not fail.
--   * New: GRANTs to cockpit_app (see Grants).

CREATE TABLE IF NOT EXISTS weight_overrides (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  company_id UUID NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  category VARCHAR(20) NOT NULL CHECK (category IN ('sroi', 'vis')),
  weights JSONB NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  created_by UUID REFERENCES users(id) ON DELETE SET NULL,
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_by UUID REFERENCES users(id) ON DELETE SET NULL,

  UNIQUE (company_id, category)
);

CREATE TABLE IF NOT EXISTS weight_override_history (
  id BIGSERIAL PRIMARY KEY,
  weight_override_id UUID NOT NULL REFERENCES weight_overrides(id) ON DELETE CASCADE,
  company_id UUID NOT NULL,
  category VARCHAR(20) NOT NULL,
  old_weights JSONB,
  new_weights JSONB NOT NULL,
  changed_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  changed_by UUID REFERENCES users(id) ON DELETE SET NULL,
  change_reason TEXT
);

CREATE INDEX IF NOT EXISTS idx_weight_override_history_weight_override_id ON weight_override_history(weight_override_id);
CREATE INDEX IF NOT EXISTS idx_weight_override_history_changed_at ON weight_override_history(changed_at DESC);

CREATE OR REPLACE FUNCTION track_weight_override_changes()
RETURNS TRIGGER AS $$
BEGIN
  INSERT INTO weight_override_history (
    weight_override_id,
    company_id,
    category,
    old_weights,
    new_weights,
    changed_by
  ) VALUES (
    NEW.id,
    NEW.company_id,
    NEW.category,
    OLD.weights,
    NEW.weights,
    NEW.updated_by
  );
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE TRIGGER weight_override_update_trigger
AFTER UPDATE OF weights ON weight_overrides
FOR EACH ROW
WHEN (OLD.weights IS DISTINCT FROM NEW.weights)
EXECUTE FUNCTION track_weight_override_changes();

GRANT SELECT, INSERT, UPDATE, DELETE ON weight_overrides TO cockpit_app;
GRANT SELECT, INSERT ON weight_override_history TO cockpit_app;
GRANT USAGE ON SEQUENCE weight_override_history_id_seq TO cockpit_app;
