-- 002_add_feature_flags_rollout_percent
--
-- Part of the molecule scenario's own small migration set (not a real
-- migration): a new column, with a default and a range check, on the table
-- that 001 creates.
ALTER TABLE feature_flags
  ADD COLUMN rollout_percent SMALLINT NOT NULL DEFAULT 0
  CONSTRAINT feature_flags_rollout_percent_range CHECK (rollout_percent BETWEEN 0 AND 100);
