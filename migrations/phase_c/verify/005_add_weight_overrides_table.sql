-- Verification for 005_add_weight_overrides_table (runs in the migration's
-- transaction). Asserts what the runbook's verification looks at: both
-- tables, the trigger, an override can be inserted; and that the trigger
-- writes one history row on a weights UPDATE (and none when the weights do
-- not change). Test rows go to a throwaway company created and deleted here,
-- so real overrides are never touched (the runbook's
-- `DELETE FROM weight_overrides WHERE category = 'sroi'` deleted every real
-- sroi override, and its INSERT failed on UNIQUE (company_id, category) when
-- the first company already had one).
DO $$
DECLARE
  v_text    text;
  v_company uuid;
  v_id      uuid;
  v_count   bigint;
  v_old     jsonb;
  v_new     jsonb;
BEGIN
  SELECT string_agg(t, ', ') INTO v_text
  FROM unnest(ARRAY['weight_overrides', 'weight_override_history']) AS t
  WHERE to_regclass('public.' || t) IS NULL;
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '005 verify: tables missing: %', v_text;
  END IF;

  SELECT string_agg(i, ', ') INTO v_text
  FROM unnest(ARRAY['weight_overrides_pkey', 'weight_overrides_company_id_category_key',
                    'weight_override_history_pkey',
                    'idx_weight_override_history_weight_override_id',
                    'idx_weight_override_history_changed_at']) AS i
  WHERE NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = i);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '005 verify: indexes missing: %', v_text;
  END IF;
  IF to_regclass('public.idx_weight_overrides_company_id') IS NOT NULL THEN
    RAISE EXCEPTION '005 verify: redundant index idx_weight_overrides_company_id exists (UNIQUE (company_id, category) covers it)';
  END IF;

  IF NOT EXISTS (SELECT 1 FROM pg_trigger
                 WHERE tgrelid = 'public.weight_overrides'::regclass
                   AND tgname = 'weight_override_update_trigger' AND NOT tgisinternal) THEN
    RAISE EXCEPTION '005 verify: trigger weight_override_update_trigger on weight_overrides is missing';
  END IF;

  INSERT INTO companies (name) VALUES ('phase_c 005 verify (temporary)') RETURNING id INTO v_company;
  INSERT INTO weight_overrides (company_id, category, weights)
  VALUES (v_company, 'sroi', '{"volunteer_hour_value": 35.00}'::jsonb)
  RETURNING id INTO v_id;

  SELECT count(*) INTO v_count FROM weight_override_history WHERE weight_override_id = v_id;
  IF v_count <> 0 THEN
    RAISE EXCEPTION '005 verify: inserting an override wrote % history rows, expected 0', v_count;
  END IF;

  UPDATE weight_overrides SET weights = '{"volunteer_hour_value": 40.00}'::jsonb WHERE id = v_id;
  SELECT count(*), min(old_weights::text)::jsonb, min(new_weights::text)::jsonb
  INTO v_count, v_old, v_new
  FROM weight_override_history WHERE weight_override_id = v_id;
  IF v_count <> 1 THEN
    RAISE EXCEPTION '005 verify: a weights UPDATE wrote % history rows, expected 1', v_count;
  END IF;
  IF v_old IS DISTINCT FROM '{"volunteer_hour_value": 35.00}'::jsonb
     OR v_new IS DISTINCT FROM '{"volunteer_hour_value": 40.00}'::jsonb THEN
    RAISE EXCEPTION '005 verify: history row holds old % / new %, expected the weights before and after the UPDATE',
      v_old, v_new;
  END IF;

  UPDATE weight_overrides SET weights = '{"volunteer_hour_value": 40.00}'::jsonb WHERE id = v_id;
  SELECT count(*) INTO v_count FROM weight_override_history WHERE weight_override_id = v_id;
  IF v_count <> 1 THEN
    RAISE EXCEPTION '005 verify: an UPDATE that left the weights unchanged wrote a history row';
  END IF;

  DELETE FROM weight_override_history WHERE weight_override_id = v_id;
  DELETE FROM weight_overrides WHERE id = v_id;
  DELETE FROM companies WHERE id = v_company;

  IF NOT (has_table_privilege('cockpit_app', 'public.weight_overrides', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.weight_overrides', 'INSERT')
          AND has_table_privilege('cockpit_app', 'public.weight_overrides', 'UPDATE')
          AND has_table_privilege('cockpit_app', 'public.weight_overrides', 'DELETE')
          AND has_table_privilege('cockpit_app', 'public.weight_override_history', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.weight_override_history', 'INSERT')
          AND has_sequence_privilege('cockpit_app', 'public.weight_override_history_id_seq', 'USAGE')) THEN
    RAISE EXCEPTION '005 verify: cockpit_app lacks its grants on weight_overrides / weight_override_history (the trigger inserts history rows with the updater''s rights)';
  END IF;
END
$$;
