-- A NOT NULL column with a volatile default: every existing row gets its own value, so the
-- table is rewritten under ACCESS EXCLUSIVE.
ALTER TABLE companies ADD COLUMN api_token uuid NOT NULL DEFAULT gen_random_uuid();
