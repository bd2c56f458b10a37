-- Verification for 001_create_feature_flags (runs in the migration's
-- transaction): the table exists with its columns and its foreign key.
DO $$
BEGIN
  IF to_regclass('public.feature_flags') IS NULL THEN
    RAISE EXCEPTION 'table public.feature_flags is missing';
  END IF;
  IF (SELECT count(*) FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = 'feature_flags'
        AND column_name IN ('id', 'company_id', 'name', 'enabled', 'created_at')) <> 5 THEN
    RAISE EXCEPTION 'public.feature_flags lacks one of id, company_id, name, enabled, created_at';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                 WHERE conrelid = 'public.feature_flags'::regclass AND contype = 'f'
                   AND confrelid = 'public.companies'::regclass) THEN
    RAISE EXCEPTION 'public.feature_flags has no foreign key to public.companies';
  END IF;
END
$$;
