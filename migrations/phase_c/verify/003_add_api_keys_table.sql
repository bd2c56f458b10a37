-- Verification for 003_add_api_keys_table (runs in the migration's
-- transaction; read-only). Asserts what the runbook's verification queries
-- look at: both tables, api_keys' indexes and constraints; plus the foreign
-- keys and cockpit_app's grants.
DO $$
DECLARE
  v_text text;
BEGIN
  SELECT string_agg(t, ', ') INTO v_text
  FROM unnest(ARRAY['api_keys', 'api_key_usage']) AS t
  WHERE to_regclass('public.' || t) IS NULL;
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '003 verify: tables missing: %', v_text;
  END IF;

  SELECT string_agg(i, ', ') INTO v_text
  FROM unnest(ARRAY['api_keys_pkey', 'api_keys_key_hash_key', 'idx_api_keys_company_id',
                    'idx_api_keys_expires_at', 'api_key_usage_pkey',
                    'idx_api_key_usage_api_key_id', 'idx_api_key_usage_used_at']) AS i
  WHERE NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = i);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '003 verify: indexes missing: %', v_text;
  END IF;
  IF to_regclass('public.idx_api_keys_key_hash') IS NOT NULL THEN
    RAISE EXCEPTION '003 verify: redundant index idx_api_keys_key_hash exists (api_keys_key_hash_key already indexes key_hash)';
  END IF;

  SELECT string_agg(c, ', ') INTO v_text
  FROM unnest(ARRAY['api_keys_pkey', 'api_keys_key_hash_key', 'valid_expiry', 'valid_revocation',
                    'api_keys_company_id_fkey', 'api_keys_created_by_fkey',
                    'api_keys_revoked_by_fkey']) AS c
  WHERE NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.api_keys'::regclass AND conname = c);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '003 verify: api_keys constraints missing: %', v_text;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                 WHERE conrelid = 'public.api_key_usage'::regclass AND contype = 'f'
                   AND confrelid = 'public.api_keys'::regclass) THEN
    RAISE EXCEPTION '003 verify: api_key_usage has no foreign key to api_keys';
  END IF;

  IF NOT (has_table_privilege('cockpit_app', 'public.api_keys', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.api_keys', 'INSERT')
          AND has_table_privilege('cockpit_app', 'public.api_keys', 'UPDATE')
          AND has_table_privilege('cockpit_app', 'public.api_key_usage', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.api_key_usage', 'INSERT')
          AND has_sequence_privilege('cockpit_app', 'public.api_key_usage_id_seq', 'USAGE')) THEN
    RAISE EXCEPTION '003 verify: cockpit_app lacks its grants on api_keys / api_key_usage / api_key_usage_id_seq';
  END IF;
END
$$;
