-- Precondition for 005_add_weight_overrides_table (read-only): the role
-- cockpit_app, which 005 grants to, exists.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cockpit_app') THEN
    RAISE EXCEPTION '005 check: role cockpit_app does not exist (005 grants it access to weight_overrides and weight_override_history)';
  END IF;
END
$$;
