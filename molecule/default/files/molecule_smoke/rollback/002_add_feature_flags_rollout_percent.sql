-- Rollback of 002_add_feature_flags_rollout_percent: drops the column and,
-- with it, its check constraint.
ALTER TABLE feature_flags DROP COLUMN rollout_percent;
