-- Users whose legacy role is neither admin nor viewer, to load on top of the
-- pre-Phase-C fixture (with or without messy_rows.sql). With these rows
-- check/002_add_rbac_roles.sql must fail before anything is applied, naming
-- 'superuser' (2 rows) and 'guest' (1 row) and nothing else (the ' Admin '
-- row is a valid legacy spelling). Fixed ids: deterministic.
INSERT INTO companies (id, name, created_at) VALUES
  ('cccccccc-0000-4000-8000-000000000001', 'Unknown Role Test Co', '2023-06-01 00:00:00+00');

INSERT INTO users (id, company_id, email, name, role, created_at) VALUES
  ('dddddddd-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001', 'unknown-role1@example.com', 'Unknown role 1', 'superuser', '2023-06-01 00:00:01+00'),
  ('dddddddd-0000-4000-8000-000000000002', 'cccccccc-0000-4000-8000-000000000001', 'unknown-role2@example.com', 'Unknown role 2', 'superuser', '2023-06-01 00:00:02+00'),
  ('dddddddd-0000-4000-8000-000000000003', 'cccccccc-0000-4000-8000-000000000001', 'unknown-role3@example.com', 'Unknown role 3', 'guest', '2023-06-01 00:00:03+00'),
  ('dddddddd-0000-4000-8000-000000000004', 'cccccccc-0000-4000-8000-000000000001', 'unknown-role4@example.com', 'Unknown role 4', ' Admin ', '2023-06-01 00:00:04+00');
