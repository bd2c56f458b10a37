-- Rollback of 002_add_rbac_roles: back to the schema before 002.
--   users.role becomes VARCHAR(20) DEFAULT 'viewer' again, holding only the
--   lowercase legacy values:
--     ADMIN -> 'admin', SUPER_ADMIN -> 'admin' (legacy has nothing higher),
--     VIEWER -> 'viewer', MANAGER -> 'viewer' (least privilege: legacy has no
--     report-export role), NULL -> 'viewer'.
--   Not restored: the original spelling of legacy values (' admin ', 'Admin',
--   'VIEWER', ...) comes back as plain lowercase 'admin'/'viewer', and rows
--   that held NULL before 002 (and became VIEWER) come back as 'viewer', not
--   NULL. Both mean the same to the legacy application.
--   role_permissions, permissions, role_hierarchy (with their rows and
--   cockpit_app's grants) and the type user_role_enum are dropped.
--   Refuses while audit_log (004) still uses user_role_enum: roll back 004 first.
--   Re-runnable: the column is converted only while it is the enum.
--
-- Changes from the runbook's rollback:
--   * ALTER TABLE users ALTER COLUMN role TYPE VARCHAR(20): the runbook
--     converted without USING and without touching the default, which left
--     'VIEWER' as default text and uppercase values the legacy code does not
--     know. Now: DROP DEFAULT, convert with the mapping above, SET DEFAULT
--     'viewer' (as before 002).
--   * DROP TABLE / DROP TYPE: unchanged, after a guard naming 004 if
--     audit_log still depends on the type.
DO $$
DECLARE
  v_users text;
BEGIN
  IF to_regtype('public.user_role_enum') IS NOT NULL THEN
    SELECT string_agg(DISTINCT c.oid::regclass::text, ', ') INTO v_users
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    WHERE a.atttypid = 'public.user_role_enum'::regtype AND NOT a.attisdropped
      AND c.relkind NOT IN ('i', 'I')
      AND c.oid::regclass::text NOT IN ('users', 'role_hierarchy', 'role_permissions');
    IF v_users IS NOT NULL THEN
      RAISE EXCEPTION 'rollback 002: user_role_enum is still used by %; roll back 004_add_audit_log_table first',
        v_users;
    END IF;
  END IF;

  IF (SELECT atttypid FROM pg_attribute
      WHERE attrelid = 'public.users'::regclass AND attname = 'role' AND NOT attisdropped)
     = to_regtype('public.user_role_enum') THEN
    ALTER TABLE users ALTER COLUMN role DROP DEFAULT;
    ALTER TABLE users
      ALTER COLUMN role TYPE VARCHAR(20) USING (
        CASE WHEN role::text IN ('ADMIN', 'SUPER_ADMIN') THEN 'admin' ELSE 'viewer' END);
    ALTER TABLE users ALTER COLUMN role SET DEFAULT 'viewer';
  END IF;
END
$$;

DROP TABLE IF EXISTS role_permissions;
DROP TABLE IF EXISTS permissions;
DROP TABLE IF EXISTS role_hierarchy;
DROP TYPE IF EXISTS user_role_enum;
