-- Precondition for 001_add_tenant_routing (read-only, runs before anything
-- is applied). 001 derives slugs with normalize(name, NFKD), which
-- PostgreSQL only supports in a UTF8 database.
DO $$
BEGIN
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE EXCEPTION '001 check: database encoding is %, slug derivation (normalize NFKD) needs UTF8',
      current_setting('server_encoding');
  END IF;
END
$$;
