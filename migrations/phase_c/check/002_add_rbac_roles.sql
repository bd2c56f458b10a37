-- Precondition for 002_add_rbac_roles (read-only; runs against the database
-- as it is before any Phase C migration is applied).
--   * users.role may only hold the legacy roles admin and viewer (any case,
--     surrounding whitespace ignored) or NULL. Anything else stops the rollout
--     here, before anything changes, naming each value and how many rows hold it.
--   * If a type user_role_enum already exists it must be the one 002 creates.
--   * The role cockpit_app, which 002 grants to, must exist.
DO $$
DECLARE
  v_bad    text;
  v_labels text;
BEGIN
  SELECT string_agg(format('%L (%s)', v.role, v.n), ', ' ORDER BY v.n DESC, v.role)
  INTO v_bad
  FROM (SELECT role::text AS role, count(*) AS n
        FROM users
        WHERE role IS NOT NULL
          AND lower(btrim(role::text, E' \t\n\r\f\x0b\u00a0') COLLATE "C") NOT IN ('admin', 'viewer')
        GROUP BY role::text) v;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION '002 check: users.role holds values that are neither admin nor viewer (value (rows)): %', v_bad
      USING HINT = 'Map these rows to admin or viewer (or delete them) before running Phase C.';
  END IF;

  IF to_regtype('public.user_role_enum') IS NOT NULL THEN
    SELECT string_agg(enumlabel::text, ',' ORDER BY enumsortorder) INTO v_labels
    FROM pg_enum WHERE enumtypid = 'public.user_role_enum'::regtype;
    IF v_labels IS DISTINCT FROM 'VIEWER,MANAGER,ADMIN,SUPER_ADMIN' THEN
      RAISE EXCEPTION '002 check: type user_role_enum already exists with labels (%), expected VIEWER,MANAGER,ADMIN,SUPER_ADMIN',
        v_labels;
    END IF;
  END IF;

  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cockpit_app') THEN
    RAISE EXCEPTION '002 check: role cockpit_app does not exist (002 grants it read access to the RBAC tables)';
  END IF;
END
$$;
