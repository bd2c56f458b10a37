-- Changes a column's type with USING: PostgreSQL rewrites users and its indexes under ACCESS EXCLUSIVE.
ALTER TABLE users ALTER COLUMN name TYPE text USING btrim(name);
