-- 002_add_rbac_roles
--
-- What it does
--   Replaces the legacy users.role VARCHAR(20) ('admin'/'viewer') with the
--   enum user_role_enum (VIEWER < MANAGER < ADMIN < SUPER_ADMIN), adds the
--   role_hierarchy, permissions and role_permissions tables and fills them.
--   Legacy values map case-insensitively and ignoring surrounding whitespace:
--   admin -> ADMIN, viewer -> VIEWER, NULL -> VIEWER (least privilege). Any
--   other value stops the migration (check/002 reports it before the rollout
--   starts; the same guard is repeated here). Re-runnable: the type and
--   tables are created only if missing, the seed rows are upserted, and the
--   column is converted only while it is not yet the enum. users.role stays
--   nullable, as in the runbook (NOT NULL was not asked for); NULLs written
--   after 002 become VIEWER on a re-run.
--
-- Permissions seeded (hierarchical: a role holds every permission of the
-- roles below it), after the role descriptions in role_hierarchy:
--   VIEWER      dashboard:view, reports:view
--   MANAGER     + reports:export, reports:generate
--   ADMIN       + users:manage, api_keys:manage, audit_log:view,
--                 weights:manage, integrations:manage
--   SUPER_ADMIN + companies:manage_all
--
-- Grants: cockpit_app gets SELECT on role_hierarchy, permissions and
--   role_permissions: the application reads them to authorise requests;
--   roles and permissions are changed by migrations, not by the application
--   (so no sequence grant on permissions_id_seq). Its grants on users are
--   unchanged (the type change keeps them).
--
-- Changes from the runbook's SQL, statement by statement
--   * New guard (DO block) before anything changes: raises, naming values and
--     row counts, if users.role holds anything but admin/viewer/NULL.
--   * CREATE TYPE user_role_enum: unchanged, but the existence test uses
--     to_regtype('public.user_role_enum') instead of pg_type.typname alone
--     (which also matches a type of that name in another schema).
--   * ALTER TABLE users ALTER COLUMN role TYPE ... USING role::text::user_role_enum:
--     replaced. It failed twice over: the column default 'viewer'::varchar
--     cannot be cast automatically, and the lowercase legacy values are not
--     enum labels (the cast raised before the runbook's later UPDATEs could
--     map them). Now: DROP DEFAULT, convert with a USING CASE on
--     lower(btrim(role)) (NULL -> VIEWER), SET DEFAULT 'VIEWER' so the column
--     keeps a default; all only while the column is not yet the enum.
--   * UPDATE users SET role = 'ADMIN' WHERE role::text = 'admin' and the same
--     for viewer: removed (folded into the USING CASE above). Replaced by
--     UPDATE users SET role = 'VIEWER' WHERE role IS NULL, for a re-run after
--     the application has written NULLs.
--   * CREATE TABLE role_hierarchy / permissions / role_permissions and the
--     role_hierarchy INSERT ... ON CONFLICT: unchanged.
--   * New: INSERT ... ON CONFLICT seeding permissions and role_permissions
--     (the runbook created both tables empty).
--   * New: GRANT SELECT to cockpit_app (see Grants).

DO $$
DECLARE
  v_bad text;
BEGIN
  -- Only the legacy column can hold unknown values; once it is the enum
  -- (a re-run) every value is valid.
  IF (SELECT atttypid FROM pg_attribute
      WHERE attrelid = 'public.users'::regclass AND attname = 'role' AND NOT attisdropped)
     = to_regtype('public.user_role_enum') THEN
    RETURN;
  END IF;
  SELECT string_agg(format('%L (%s)', v.role, v.n), ', ' ORDER BY v.n DESC, v.role)
  INTO v_bad
  FROM (SELECT role::text AS role, count(*) AS n
        FROM users
        WHERE role IS NOT NULL
          AND lower(btrim(role::text, E' \t\n\r\f\x0b\u00a0') COLLATE "C") NOT IN ('admin', 'viewer')
        GROUP BY role::text) v;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION '002: users.role holds values that are neither admin nor viewer (value (rows)): %', v_bad;
  END IF;
END
$$;

DO $$
BEGIN
  IF to_regtype('public.user_role_enum') IS NULL THEN
    CREATE TYPE user_role_enum AS ENUM ('VIEWER', 'MANAGER', 'ADMIN', 'SUPER_ADMIN');
  END IF;
END
$$;

DO $$
BEGIN
  IF (SELECT atttypid FROM pg_attribute
      WHERE attrelid = 'public.users'::regclass AND attname = 'role' AND NOT attisdropped)
     <> 'public.user_role_enum'::regtype THEN
    ALTER TABLE users ALTER COLUMN role DROP DEFAULT;
    ALTER TABLE users
      ALTER COLUMN role TYPE user_role_enum USING (
        CASE
          WHEN role IS NULL THEN 'VIEWER'
          WHEN lower(btrim(role, E' \t\n\r\f\x0b\u00a0') COLLATE "C") = 'admin' THEN 'ADMIN'
          WHEN lower(btrim(role, E' \t\n\r\f\x0b\u00a0') COLLATE "C") = 'viewer' THEN 'VIEWER'
          ELSE role  -- unreachable after the guard; the cast would raise
        END)::user_role_enum;
    ALTER TABLE users ALTER COLUMN role SET DEFAULT 'VIEWER';
  END IF;
END
$$;

UPDATE users SET role = 'VIEWER' WHERE role IS NULL;

CREATE TABLE IF NOT EXISTS role_hierarchy (
  role user_role_enum PRIMARY KEY,
  level INTEGER NOT NULL UNIQUE,
  description TEXT
);

INSERT INTO role_hierarchy (role, level, description) VALUES
  ('SUPER_ADMIN', 4, 'Full system access across all companies'),
  ('ADMIN', 3, 'Company administrator with full access to all features'),
  ('MANAGER', 2, 'Can view, export, and generate reports'),
  ('VIEWER', 1, 'Read-only access to dashboard and reports')
ON CONFLICT (role) DO UPDATE SET
  level = EXCLUDED.level,
  description = EXCLUDED.description;

CREATE TABLE IF NOT EXISTS permissions (
  id SERIAL PRIMARY KEY,
  name VARCHAR(100) UNIQUE NOT NULL,
  resource VARCHAR(50) NOT NULL,
  action VARCHAR(50) NOT NULL,
  description TEXT,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS role_permissions (
  role user_role_enum NOT NULL,
  permission_id INTEGER NOT NULL REFERENCES permissions(id) ON DELETE CASCADE,
  PRIMARY KEY (role, permission_id)
);

-- Permissions, each with the lowest role level that holds it; every role at
-- or above that level gets it (one statement, so it also works in autocommit).
WITH seed (name, resource, action, min_level, description) AS (
  VALUES
    ('dashboard:view',       'dashboard',    'view',       1, 'View the dashboard'),
    ('reports:view',         'reports',      'view',       1, 'View reports'),
    ('reports:export',       'reports',      'export',     2, 'Export reports'),
    ('reports:generate',     'reports',      'generate',   2, 'Generate reports'),
    ('users:manage',         'users',        'manage',     3, 'Invite, edit and remove users of the company and set their roles'),
    ('api_keys:manage',      'api_keys',     'manage',     3, 'Create, list and revoke the company''s API keys'),
    ('audit_log:view',       'audit_log',    'view',       3, 'Read the company''s audit log'),
    ('weights:manage',       'weights',      'manage',     3, 'Override the company''s SROI/VIS weights'),
    ('integrations:manage',  'integrations', 'manage',     3, 'Configure the company''s Impact-In integrations'),
    ('companies:manage_all', 'companies',    'manage_all', 4, 'Manage every company (cross-tenant)')
), upserted AS (
  INSERT INTO permissions (name, resource, action, description)
  SELECT name, resource, action, description FROM seed
  ON CONFLICT (name) DO UPDATE SET
    resource = EXCLUDED.resource,
    action = EXCLUDED.action,
    description = EXCLUDED.description
  RETURNING id, name
)
INSERT INTO role_permissions (role, permission_id)
SELECT rh.role, u.id
FROM seed s
JOIN upserted u ON u.name = s.name
JOIN role_hierarchy rh ON rh.level >= s.min_level
ON CONFLICT DO NOTHING;

GRANT SELECT ON role_hierarchy, permissions, role_permissions TO cockpit_app;
