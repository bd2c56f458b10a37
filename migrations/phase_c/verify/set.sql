-- Phase C post-migration validation (the runbook's "Post-Migration
-- Validation"), run after 001-006 are all applied. Read-only; raises on the
-- first kind of problem found, naming every missing object of that kind.
--   1. the 7 Phase C tables exist in schema public ("Should return 7 rows");
--   2. the expected indexes exist (the runbook listed those of the audit and
--      api_key tables; all Phase C tables are checked here), and none of the
--      runbook's redundant ones (dropped in 001, 003, 005, 006) exist;
--   3. the expected foreign keys exist (the runbook listed those of api_keys,
--      audit_log, weight_overrides and integration_configs; the child tables'
--      keys are checked too). Read from pg_constraint rather than
--      information_schema, whose views only show tables the current user owns
--      or has privileges on.
DO $$
DECLARE
  v_text text;
BEGIN
  SELECT string_agg(t, ', ' ORDER BY t) INTO v_text
  FROM unnest(ARRAY['api_keys', 'api_key_usage', 'audit_log', 'weight_overrides',
                    'weight_override_history', 'integration_configs',
                    'integration_delivery_log']) AS t
  WHERE NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = t);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION 'Phase C validation: tables missing (expected all 7 Phase C tables): %', v_text;
  END IF;

  SELECT string_agg(format('%s.%s', e.tbl, e.idx), ', ' ORDER BY e.tbl, e.idx) INTO v_text
  FROM (VALUES
    ('api_keys', 'api_keys_pkey'),
    ('api_keys', 'api_keys_key_hash_key'),
    ('api_keys', 'idx_api_keys_company_id'),
    ('api_keys', 'idx_api_keys_expires_at'),
    ('api_key_usage', 'api_key_usage_pkey'),
    ('api_key_usage', 'idx_api_key_usage_api_key_id'),
    ('api_key_usage', 'idx_api_key_usage_used_at'),
    ('audit_log', 'audit_log_pkey'),
    ('audit_log', 'idx_audit_log_company_id'),
    ('audit_log', 'idx_audit_log_user_id'),
    ('audit_log', 'idx_audit_log_timestamp'),
    ('audit_log', 'idx_audit_log_action'),
    ('audit_log', 'idx_audit_log_severity'),
    ('weight_overrides', 'weight_overrides_pkey'),
    ('weight_overrides', 'weight_overrides_company_id_category_key'),
    ('weight_override_history', 'weight_override_history_pkey'),
    ('weight_override_history', 'idx_weight_override_history_weight_override_id'),
    ('weight_override_history', 'idx_weight_override_history_changed_at'),
    ('integration_configs', 'integration_configs_pkey'),
    ('integration_configs', 'integration_configs_company_id_platform_key'),
    ('integration_configs', 'idx_integration_configs_platform'),
    ('integration_delivery_log', 'integration_delivery_log_pkey'),
    ('integration_delivery_log', 'idx_integration_delivery_log_config_id'),
    ('integration_delivery_log', 'idx_integration_delivery_log_delivered_at'),
    ('integration_delivery_log', 'idx_integration_delivery_log_status'),
    ('companies', 'companies_slug_key'),
    ('sessions', 'idx_sessions_tenant_id')
  ) AS e(tbl, idx)
  WHERE NOT EXISTS (SELECT 1 FROM pg_indexes
                    WHERE schemaname = 'public' AND tablename = e.tbl AND indexname = e.idx);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION 'Phase C validation: indexes missing: %', v_text;
  END IF;

  SELECT string_agg(i, ', ' ORDER BY i) INTO v_text
  FROM unnest(ARRAY['idx_companies_slug', 'idx_api_keys_key_hash',
                    'idx_weight_overrides_company_id',
                    'idx_integration_configs_company_id']) AS i
  WHERE to_regclass('public.' || i) IS NOT NULL;
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION 'Phase C validation: redundant indexes present (a UNIQUE constraint already covers them): %', v_text;
  END IF;

  SELECT string_agg(format('%s.%s -> %s', e.tbl, e.col, e.ref), ', ' ORDER BY e.tbl, e.col) INTO v_text
  FROM (VALUES
    ('api_keys', 'company_id', 'companies'),
    ('api_keys', 'created_by', 'users'),
    ('api_keys', 'revoked_by', 'users'),
    ('api_key_usage', 'api_key_id', 'api_keys'),
    ('audit_log', 'company_id', 'companies'),
    ('audit_log', 'user_id', 'users'),
    ('weight_overrides', 'company_id', 'companies'),
    ('weight_overrides', 'created_by', 'users'),
    ('weight_overrides', 'updated_by', 'users'),
    ('weight_override_history', 'weight_override_id', 'weight_overrides'),
    ('weight_override_history', 'changed_by', 'users'),
    ('integration_configs', 'company_id', 'companies'),
    ('integration_delivery_log', 'integration_config_id', 'integration_configs')
  ) AS e(tbl, col, ref)
  WHERE NOT EXISTS (
    SELECT 1
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.contype = 'f' AND n.nspname = 'public'
      AND t.relname = e.tbl AND a.attname = e.col
      AND array_length(c.conkey, 1) = 1
      AND c.confrelid = ('public.' || e.ref)::regclass);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION 'Phase C validation: foreign keys missing: %', v_text;
  END IF;
END
$$;
