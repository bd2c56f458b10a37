-- An index on an existing table, without CONCURRENTLY: SHARE on sessions (writes wait) while the
-- whole table is read.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
