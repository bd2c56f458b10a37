-- Precondition for 003_add_api_keys_table (read-only): the role cockpit_app,
-- which 003 grants to, exists.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cockpit_app') THEN
    RAISE EXCEPTION '003 check: role cockpit_app does not exist (003 grants it access to api_keys and api_key_usage)';
  END IF;
END
$$;
