-- Verification for 002_add_rbac_roles (runs in the migration's transaction;
-- read-only). Asserts what the runbook's verification queries look at (the
-- enum's labels, the role hierarchy, 0 users with a NULL role) and the rest
-- of what 002 promises.
DO $$
DECLARE
  v_text  text;
  v_count bigint;
BEGIN
  IF to_regtype('public.user_role_enum') IS NULL THEN
    RAISE EXCEPTION '002 verify: type user_role_enum is missing';
  END IF;
  SELECT string_agg(enumlabel::text, ',' ORDER BY enumsortorder) INTO v_text
  FROM pg_enum WHERE enumtypid = 'public.user_role_enum'::regtype;
  IF v_text IS DISTINCT FROM 'VIEWER,MANAGER,ADMIN,SUPER_ADMIN' THEN
    RAISE EXCEPTION '002 verify: user_role_enum labels are (%), expected VIEWER,MANAGER,ADMIN,SUPER_ADMIN', v_text;
  END IF;

  SELECT format_type(a.atttypid, a.atttypmod) INTO v_text
  FROM pg_attribute a
  WHERE a.attrelid = 'public.users'::regclass AND a.attname = 'role' AND NOT a.attisdropped;
  IF v_text IS DISTINCT FROM 'user_role_enum' THEN
    RAISE EXCEPTION '002 verify: users.role is of type %, expected user_role_enum', v_text;
  END IF;
  SELECT pg_get_expr(d.adbin, d.adrelid) INTO v_text
  FROM pg_attrdef d
  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
  WHERE d.adrelid = 'public.users'::regclass AND a.attname = 'role';
  IF v_text IS DISTINCT FROM '''VIEWER''::user_role_enum' THEN
    RAISE EXCEPTION '002 verify: users.role default is %, expected ''VIEWER''::user_role_enum', coalesce(v_text, 'missing');
  END IF;

  -- Runbook: SELECT COUNT(*) FROM users WHERE role IS NULL; -- Should be 0
  SELECT count(*) INTO v_count FROM users WHERE role IS NULL;
  IF v_count > 0 THEN
    RAISE EXCEPTION '002 verify: % users have a NULL role', v_count;
  END IF;

  -- Runbook: SELECT * FROM role_hierarchy ORDER BY level DESC;
  SELECT string_agg(role::text || '=' || level, ',' ORDER BY level) INTO v_text FROM role_hierarchy;
  IF v_text IS DISTINCT FROM 'VIEWER=1,MANAGER=2,ADMIN=3,SUPER_ADMIN=4' THEN
    RAISE EXCEPTION '002 verify: role_hierarchy is (%), expected VIEWER=1,MANAGER=2,ADMIN=3,SUPER_ADMIN=4',
      coalesce(v_text, 'empty');
  END IF;

  -- Seeded permissions, held hierarchically.
  SELECT string_agg(e.name, ', ' ORDER BY e.name) INTO v_text
  FROM (VALUES ('dashboard:view'), ('reports:view'), ('reports:export'), ('reports:generate'),
               ('users:manage'), ('api_keys:manage'), ('audit_log:view'), ('weights:manage'),
               ('integrations:manage'), ('companies:manage_all')) AS e(name)
  WHERE NOT EXISTS (SELECT 1 FROM permissions p WHERE p.name = e.name);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '002 verify: permissions missing: %', v_text;
  END IF;

  SELECT string_agg(format('%s lacks %s', rh.role, e.name), ', ' ORDER BY rh.level, e.name) INTO v_text
  FROM (VALUES ('dashboard:view', 1), ('reports:view', 1), ('reports:export', 2),
               ('reports:generate', 2), ('users:manage', 3), ('api_keys:manage', 3),
               ('audit_log:view', 3), ('weights:manage', 3), ('integrations:manage', 3),
               ('companies:manage_all', 4)) AS e(name, min_level)
  JOIN role_hierarchy rh ON rh.level >= e.min_level
  JOIN permissions p ON p.name = e.name
  WHERE NOT EXISTS (SELECT 1 FROM role_permissions rp
                    WHERE rp.role = rh.role AND rp.permission_id = p.id);
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '002 verify: role_permissions incomplete: %', v_text;
  END IF;

  -- Hierarchy: whatever a role holds, every higher role holds too.
  SELECT string_agg(format('%s holds %s but %s does not', lo.role, p.name, hi.role), ', ') INTO v_text
  FROM role_permissions rp
  JOIN role_hierarchy lo ON lo.role = rp.role
  JOIN role_hierarchy hi ON hi.level > lo.level
  JOIN permissions p ON p.id = rp.permission_id
  LEFT JOIN role_permissions hp ON hp.role = hi.role AND hp.permission_id = rp.permission_id
  WHERE hp.role IS NULL;
  IF v_text IS NOT NULL THEN
    RAISE EXCEPTION '002 verify: role_permissions not hierarchical: %', v_text;
  END IF;

  IF NOT (has_table_privilege('cockpit_app', 'public.role_hierarchy', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.permissions', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.role_permissions', 'SELECT')) THEN
    RAISE EXCEPTION '002 verify: cockpit_app cannot read role_hierarchy, permissions and role_permissions';
  END IF;
  IF has_table_privilege('cockpit_app', 'public.permissions', 'INSERT')
     OR has_table_privilege('cockpit_app', 'public.role_permissions', 'INSERT')
     OR has_table_privilege('cockpit_app', 'public.role_hierarchy', 'INSERT') THEN
    RAISE EXCEPTION '002 verify: cockpit_app may write the RBAC tables (they are read-only to it)';
  END IF;
  IF NOT (has_table_privilege('cockpit_app', 'public.users', 'SELECT')
          AND has_table_privilege('cockpit_app', 'public.users', 'INSERT')
          AND has_table_privilege('cockpit_app', 'public.users', 'UPDATE')
          AND has_table_privilege('cockpit_app', 'public.users', 'DELETE')) THEN
    RAISE EXCEPTION '002 verify: cockpit_app lost its access to users';
  END IF;
END
$$;
