-- Precondition for 004_add_audit_log_table (read-only): the role cockpit_app,
-- which 004 grants to, exists. (user_role_enum, which audit_log uses, comes
-- from 002 and cannot be checked here: checks run before 002 is applied.)
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cockpit_app') THEN
    RAISE EXCEPTION '004 check: role cockpit_app does not exist (004 grants it INSERT and SELECT on audit_log)';
  END IF;
END
$$;
