-- Verification for 006_add_integration_configs_table (runs in the
-- migration's transaction). Asserts what the runbook's verification looks
-- at: both tables, the platform CHECK constraint, and that a config can be
-- inserted (and read back); plus that an unknown platform is refused. Test
-- rows go to a throwaway company created and deleted here, so real configs
-- are never touched (the runbook's
-- `DELETE FROM integration_configs WHERE platform = 'benevity'` deleted every
-- real benevity configuration).
DO $$
DECLARE
  v_text    text;
  v_company uuid;
  v_id      uuid;
  v_count   bigint;
BEGIN
  SELECT string_agg(t, ', ') INTO v_text
  FROM unnest(ARRAY['integration_configs', 'integration_delivery_log']) AS t
  WHERE to_regclass('public.' || t) IS NULL;
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '006 verify: tables missing: %', v_text;
  END IF;

  SELECT string_agg(i, ', ') INTO v_text
  FROM unnest(ARRAY['integration_configs_pkey', 'integration_configs_company_id_platform_key',
                    'idx_integration_configs_platform', 'integration_delivery_log_pkey',
                    'idx_integration_delivery_log_config_id',
                    'idx_integration_delivery_log_delivered_at',
                    'idx_integration_delivery_log_status']) AS i
  WHERE NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = i);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '006 verify: indexes missing: %', v_text;
  END IF;
  IF to_regclass('public.idx_integration_configs_company_id') IS NOT NULL THEN
    RAISE EXCEPTION '006 verify: redundant index idx_integration_configs_company_id exists (UNIQUE (company_id, platform) covers it)';
  END IF;

  -- Runbook: SELECT conname FROM pg_constraint WHERE ... conname LIKE '%platform%'
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                 WHERE conrelid = 'public.integration_configs'::regclass AND contype = 'c'
                   AND conname LIKE '%platform%') THEN
    RAISE EXCEPTION '006 verify: integration_configs has no CHECK constraint on platform';
  END IF;

  INSERT INTO companies (name) VALUES ('phase_c 006 verify (temporary)') RETURNING id INTO v_company;
  INSERT INTO integration_configs (company_id, platform, enabled)
  VALUES (v_company, 'benevity', true)
  RETURNING id INTO v_id;
  SELECT count(*) INTO v_count
  FROM integration_configs WHERE id = v_id AND platform = 'benevity' AND enabled;
  IF v_count <> 1 THEN
    RAISE EXCEPTION '006 verify: test integration config read back % times, expected 1', v_count;
  END IF;
  BEGIN
    INSERT INTO integration_configs (company_id, platform) VALUES (v_company, 'salesforce');
    RAISE EXCEPTION '006 verify: integration_configs accepted platform ''salesforce''';
  EXCEPTION WHEN check_violation THEN
    NULL;  -- expected
  END;
  DELETE FROM integration_configs WHERE id = v_id;
  DELETE FROM companies WHERE id = v_company;

  IF NOT (has_table_privilege('cockpit_app', 'public.integration_configs', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.integration_configs', 'INSERT')
          AND has_table_privilege('cockpit_app', 'public.integration_configs', 'UPDATE')
          AND has_table_privilege('cockpit_app', 'public.integration_configs', 'DELETE')
          AND has_table_privilege('cockpit_app', 'public.integration_delivery_log', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.integration_delivery_log', 'INSERT')
          AND has_table_privilege('cockpit_app', 'public.integration_delivery_log', 'UPDATE')
          AND has_sequence_privilege('cockpit_app', 'public.integration_delivery_log_id_seq', 'USAGE')) THEN
    RAISE EXCEPTION '006 verify: cockpit_app lacks its grants on integration_configs / integration_delivery_log';
  END IF;
END
$$;
