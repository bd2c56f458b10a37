-- Verification for 001_add_tenant_routing (runs in the migration's
-- transaction; read-only). Asserts what the runbook's verification queries
-- look at (slug and tenant_enabled columns present, 0 companies without a
-- slug) and the rest of what 001 promises.
DO $$
DECLARE
  v_missing text;
  v_count   bigint;
  v_example text;
BEGIN
  SELECT string_agg(format('%s.%s', t.tbl, t.col), ', ' ORDER BY t.tbl, t.col)
  INTO v_missing
  FROM (VALUES ('companies', 'slug'), ('companies', 'tenant_enabled'),
               ('companies', 'tenant_config'), ('users', 'allowed_tenants'),
               ('sessions', 'tenant_id'), ('sessions', 'last_tenant_switch_at')) AS t(tbl, col)
  WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns c
                    WHERE c.table_schema = 'public' AND c.table_name = t.tbl
                      AND c.column_name = t.col);
  IF v_missing IS NOT NULL THEN
    RAISE EXCEPTION '001 verify: columns missing: %', v_missing;
  END IF;

  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                 WHERE conrelid = 'public.companies'::regclass AND contype = 'u'
                   AND conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                       WHERE attrelid = 'public.companies'::regclass
                                         AND attname = 'slug')]::int2[]) THEN
    RAISE EXCEPTION '001 verify: companies.slug has no UNIQUE constraint';
  END IF;

  IF to_regclass('public.idx_sessions_tenant_id') IS NULL THEN
    RAISE EXCEPTION '001 verify: index idx_sessions_tenant_id is missing';
  END IF;
  IF to_regclass('public.idx_companies_slug') IS NOT NULL THEN
    RAISE EXCEPTION '001 verify: redundant index idx_companies_slug exists (companies_slug_key already indexes slug)';
  END IF;

  IF (SELECT column_default FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = 'users'
        AND column_name = 'allowed_tenants') IS NULL THEN
    RAISE EXCEPTION '001 verify: users.allowed_tenants has no default';
  END IF;

  -- Runbook: SELECT COUNT(*) FROM companies WHERE slug IS NULL; -- Should be 0
  SELECT count(*) INTO v_count FROM companies WHERE slug IS NULL;
  IF v_count > 0 THEN
    RAISE EXCEPTION '001 verify: % companies have no slug', v_count;
  END IF;

  SELECT count(*), min(slug) INTO v_count, v_example
  FROM companies
  WHERE slug COLLATE "C" !~ '^[a-z0-9]+(-[a-z0-9]+)*$' OR length(slug) > 100;
  IF v_count > 0 THEN
    RAISE EXCEPTION '001 verify: % companies have a slug that is not URL-safe (lowercase ASCII letters, digits, single inner hyphens, <= 100 characters), e.g. %',
      v_count, quote_literal(v_example);
  END IF;

  SELECT count(*) INTO v_count
  FROM (SELECT slug FROM companies GROUP BY slug HAVING count(*) > 1) d;
  IF v_count > 0 THEN
    RAISE EXCEPTION '001 verify: % slugs are shared by more than one company', v_count;
  END IF;

  SELECT count(*) INTO v_count
  FROM users
  WHERE allowed_tenants IS NULL OR NOT (company_id::text = ANY (allowed_tenants));
  IF v_count > 0 THEN
    RAISE EXCEPTION '001 verify: % users have allowed_tenants without their own company', v_count;
  END IF;
END
$$;
