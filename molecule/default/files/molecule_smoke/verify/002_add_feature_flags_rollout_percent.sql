-- Verification for 002_add_feature_flags_rollout_percent (runs in the
-- migration's transaction): the column exists, NOT NULL, with its check.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = 'feature_flags'
                   AND column_name = 'rollout_percent' AND data_type = 'smallint'
                   AND is_nullable = 'NO') THEN
    RAISE EXCEPTION 'public.feature_flags.rollout_percent (smallint NOT NULL) is missing';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                 WHERE conrelid = 'public.feature_flags'::regclass
                   AND conname = 'feature_flags_rollout_percent_range') THEN
    RAISE EXCEPTION 'check constraint feature_flags_rollout_percent_range is missing';
  END IF;
END
$$;
