-- Precondition for 006_add_integration_configs_table (read-only): the role
-- cockpit_app, which 006 grants to, exists.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cockpit_app') THEN
    RAISE EXCEPTION '006 check: role cockpit_app does not exist (006 grants it access to integration_configs and integration_delivery_log)';
  END IF;
END
$$;
