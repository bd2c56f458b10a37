-- Verification for 004_add_audit_log_table (runs in the migration's
-- transaction). Asserts what the runbook's verification looks at: the table,
-- the function, and that an audit row can be inserted and read back (then
-- deleted). The test row goes to a throwaway company created and deleted
-- here, so real rows are never touched (the runbook's
-- `DELETE ... WHERE action = 'TEST_ACTION'` would also delete real rows).
DO $$
DECLARE
  v_text    text;
  v_company uuid;
  v_id      bigint;
  v_count   bigint;
BEGIN
  IF to_regclass('public.audit_log') IS NULL THEN
    RAISE EXCEPTION '004 verify: table audit_log is missing';
  END IF;
  IF to_regprocedure('public.cleanup_old_audit_logs(integer)') IS NULL THEN
    RAISE EXCEPTION '004 verify: function cleanup_old_audit_logs(integer) is missing';
  END IF;

  SELECT string_agg(i, ', ') INTO v_text
  FROM unnest(ARRAY['audit_log_pkey', 'idx_audit_log_company_id', 'idx_audit_log_user_id',
                    'idx_audit_log_timestamp', 'idx_audit_log_action',
                    'idx_audit_log_severity']) AS i
  WHERE NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = i);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '004 verify: indexes missing: %', v_text;
  END IF;

  SELECT count(*) INTO v_count
  FROM pg_constraint
  WHERE conrelid = 'public.audit_log'::regclass AND contype = 'c'
    AND pg_get_constraintdef(oid) LIKE '%severity%';
  IF v_count <> 1 THEN
    RAISE EXCEPTION '004 verify: audit_log has % CHECK constraints on severity, expected 1 (valid_severity)', v_count;
  END IF;

  -- Runbook: test audit log insertion; SELECT COUNT(*) ... -- Should be 1
  INSERT INTO companies (name) VALUES ('phase_c 004 verify (temporary)') RETURNING id INTO v_company;
  INSERT INTO audit_log (company_id, user_email, action, resource, severity)
  VALUES (v_company, 'test@example.com', 'TEST_ACTION', 'TEST_RESOURCE', 'info')
  RETURNING id INTO v_id;
  SELECT count(*) INTO v_count
  FROM audit_log WHERE company_id = v_company AND action = 'TEST_ACTION';
  IF v_count <> 1 THEN
    RAISE EXCEPTION '004 verify: test audit row read back % times, expected 1', v_count;
  END IF;
  BEGIN
    INSERT INTO audit_log (company_id, action, resource, severity)
    VALUES (v_company, 'TEST_ACTION', 'TEST_RESOURCE', 'debug');
    RAISE EXCEPTION '004 verify: audit_log accepted severity ''debug''';
  EXCEPTION WHEN check_violation THEN
    NULL;  -- expected
  END;
  DELETE FROM audit_log WHERE id = v_id;
  DELETE FROM companies WHERE id = v_company;

  IF NOT (has_table_privilege('cockpit_app', 'public.audit_log', 'INSERT')
          AND has_table_privilege('cockpit_app', 'public.audit_log', 'SELECT')
          AND has_sequence_privilege('cockpit_app', 'public.audit_log_id_seq', 'USAGE')) THEN
    RAISE EXCEPTION '004 verify: cockpit_app cannot insert into and read audit_log';
  END IF;
  IF has_table_privilege('cockpit_app', 'public.audit_log', 'UPDATE')
     OR has_table_privilege('cockpit_app', 'public.audit_log', 'DELETE')
     OR has_table_privilege('cockpit_app', 'public.audit_log', 'TRUNCATE') THEN
    RAISE EXCEPTION '004 verify: cockpit_app may change or delete audit_log rows (it must be append-only)';
  END IF;
END
$$;
