-- Messy production-like rows to load on top of the pre-Phase-C fixture
-- (after pre_phase_c_data.sql), for testing Phase C's 001 (slugs) and 002
-- (legacy roles). Fixed ids and timestamps: loading it twice is an error,
-- loading it on the same fixture always gives the same rows.
--   psql -v ON_ERROR_STOP=1 -d cockpit -f tests/integration/data/messy_rows.sql
-- Companies are created in 2023, before every fixture company (2024), so
-- they win ties with fixture names. Comments give what each row exercises.

INSERT INTO companies (id, name, created_at) VALUES
  ('aaaaaaaa-0000-4000-8000-000000000001', 'Acme Inc', '2023-01-01 00:00:00+00'),  -- base acme-inc: the earliest of four
  ('aaaaaaaa-0000-4000-8000-000000000002', 'ACME, Inc.', '2023-01-01 00:01:00+00'),  -- same base after folding case and punctuation
  ('aaaaaaaa-0000-4000-8000-000000000003', 'acme inc', '2023-01-01 00:02:00+00'),  -- same base
  ('aaaaaaaa-0000-4000-8000-000000000004', '  Acme   Inc  ', '2023-01-01 00:03:00+00'),  -- same base after folding spaces
  ('aaaaaaaa-0000-4000-8000-000000000005', 'acme-inc-2', '2023-01-01 00:04:00+00'),  -- base equals company 2's first dedupe candidate
  ('aaaaaaaa-0000-4000-8000-000000000006', 'Acme Inc 3', '2023-01-01 00:05:00+00'),  -- base acme-inc-3 equals company 3's first dedupe candidate
  ('aaaaaaaa-0000-4000-8000-000000000007', '日本語', '2023-01-01 00:06:00+00'),  -- nothing usable: fallback slug
  ('aaaaaaaa-0000-4000-8000-000000000008', 'Ünïcödé GmbH', '2023-01-01 00:07:00+00'),  -- accents: unicode-gmbh
  ('aaaaaaaa-0000-4000-8000-000000000009', '🚀🚀🚀', '2023-01-01 00:08:00+00'),  -- emoji only: fallback slug
  ('aaaaaaaa-0000-4000-8000-000000000010', '🚀 Rocket Co 🚀', '2023-01-01 00:09:00+00'),  -- emoji around text: rocket-co
  ('aaaaaaaa-0000-4000-8000-000000000011', '!!!', '2023-01-01 00:10:00+00'),  -- punctuation only: fallback slug
  ('aaaaaaaa-0000-4000-8000-000000000012', '---', '2023-01-01 00:11:00+00'),  -- hyphens only: fallback slug
  ('aaaaaaaa-0000-4000-8000-000000000013', '', '2023-01-01 00:12:00+00'),  -- empty name: fallback slug
  ('aaaaaaaa-0000-4000-8000-000000000014', E' \t\n ', '2023-01-01 00:13:00+00'),  -- whitespace only: fallback slug
  ('aaaaaaaa-0000-4000-8000-000000000015', 'Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta Corp Zeta ', '2023-01-01 00:14:00+00'),  -- 255 characters
  ('aaaaaaaa-0000-4000-8000-000000000016', 'International Consolidated Widget Manufacturing and Distribution Holdings of the Greater Metropolitan Area Alpha', '2023-01-01 00:15:00+00'),  -- slug > 100 characters: cut at 100
  ('aaaaaaaa-0000-4000-8000-000000000017', 'International Consolidated Widget Manufacturing and Distribution Holdings of the Greater Metropolitan Area Beta', '2023-01-01 00:16:00+00'),  -- same first 100 slug characters as 16
  ('aaaaaaaa-0000-4000-8000-000000000018', 'International Consolidated Widget Manufacturing and Distribution Holdings of the Greater Metropolitan Area Gamma', '2023-01-01 00:17:00+00'),  -- and again
  ('aaaaaaaa-0000-4000-8000-000000000019', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa Bravo', '2023-01-01 00:18:00+00'),  -- the cut at 100 falls on a hyphen
  ('aaaaaaaa-0000-4000-8000-000000000020', 'company-210baa543a7d', '2023-01-01 00:19:00+00'),  -- base equals company 7's fallback slug
  ('aaaaaaaa-0000-4000-8000-000000000021', 'Straße & Söhne AG', '2023-01-01 00:20:00+00'),  -- strasse-sohne-ag
  ('aaaaaaaa-0000-4000-8000-000000000022', 'Ærøskøbing ApS', '2023-01-01 00:21:00+00'),  -- aeroskobing-aps
  ('aaaaaaaa-0000-4000-8000-000000000023', 'İstanbul Ltd', '2023-01-01 00:22:00+00'),  -- istanbul-ltd (no Turkish dotless i)
  ('aaaaaaaa-0000-4000-8000-000000000024', 'Ｆｕｌｌｗｉｄｔｈ Ｃｏ', '2023-01-01 00:23:00+00'),  -- full-width letters: fullwidth-co
  ('aaaaaaaa-0000-4000-8000-000000000025', 'Robert''); DROP TABLE companies;--', '2023-01-01 00:24:00+00'),  -- robert-drop-table-companies
  ('aaaaaaaa-0000-4000-8000-000000000026', 'Tie Co', '2023-01-01 00:25:00+00'),  -- same created_at as 27: id breaks the tie
  ('aaaaaaaa-0000-4000-8000-000000000027', 'TIE CO', '2023-01-01 00:25:00+00'),
  ('aaaaaaaa-0000-4000-8000-000000000028', 'Acme Inc 40', '2023-01-01 00:27:00+00'),  -- same base as the fixture's 'Acme Inc 40' (companies >= 40), created earlier
  ('aaaaaaaa-0000-4000-8000-000000000029', 'Ωmega Λtd', '2023-01-01 00:28:00+00'),  -- Greek letters dropped: mega-td
  ('aaaaaaaa-0000-4000-8000-000000000030', 'acme-inc', '2023-01-01 00:29:00+00');  -- literally the base slug of group 1-4, created later

-- Legacy roles in every spelling production has: any case, stray
-- surrounding whitespace (space, tab, newline, CR, no-break space), NULL.
INSERT INTO users (id, company_id, email, name, role, created_at) VALUES
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001', 'messy1@example.com', 'Messy user 1', ' admin ', '2023-02-01 00:00:01+00'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000001', 'messy2@example.com', 'Messy user 2', 'ADMIN', '2023-02-01 00:00:02+00'),
  ('bbbbbbbb-0000-4000-8000-000000000003', 'aaaaaaaa-0000-4000-8000-000000000001', 'messy3@example.com', 'Messy user 3', 'Viewer ', '2023-02-01 00:00:03+00'),
  ('bbbbbbbb-0000-4000-8000-000000000004', 'aaaaaaaa-0000-4000-8000-000000000001', 'messy4@example.com', 'Messy user 4', E'\tviewer', '2023-02-01 00:00:04+00'),
  ('bbbbbbbb-0000-4000-8000-000000000005', 'aaaaaaaa-0000-4000-8000-000000000001', 'messy5@example.com', 'Messy user 5', NULL, '2023-02-01 00:00:05+00'),
  ('bbbbbbbb-0000-4000-8000-000000000006', 'aaaaaaaa-0000-4000-8000-000000000002', 'messy6@example.com', 'Messy user 6', 'aDmIn', '2023-02-01 00:00:06+00'),
  ('bbbbbbbb-0000-4000-8000-000000000007', 'aaaaaaaa-0000-4000-8000-000000000002', 'messy7@example.com', 'Messy user 7', E'viewer\n', '2023-02-01 00:00:07+00'),
  ('bbbbbbbb-0000-4000-8000-000000000008', 'aaaaaaaa-0000-4000-8000-000000000002', 'messy8@example.com', 'Messy user 8', 'VIEWER', '2023-02-01 00:00:08+00'),
  ('bbbbbbbb-0000-4000-8000-000000000009', 'aaaaaaaa-0000-4000-8000-000000000003', 'messy9@example.com', 'Messy user 9', E'\u00a0Admin\u00a0', '2023-02-01 00:00:09+00'),
  ('bbbbbbbb-0000-4000-8000-000000000010', 'aaaaaaaa-0000-4000-8000-000000000003', 'messy10@example.com', 'Messy user 10', '  viewer  ', '2023-02-01 00:00:10+00'),
  ('bbbbbbbb-0000-4000-8000-000000000011', 'aaaaaaaa-0000-4000-8000-000000000007', 'messy11@example.com', 'Messy user 11', E'\r\nADMIN\t', '2023-02-01 00:00:11+00'),
  ('bbbbbbbb-0000-4000-8000-000000000012', 'aaaaaaaa-0000-4000-8000-000000000007', 'messy12@example.com', 'Messy user 12', NULL, '2023-02-01 00:00:12+00'),
  ('bbbbbbbb-0000-4000-8000-000000000013', 'aaaaaaaa-0000-4000-8000-000000000008', 'messy13@example.com', 'Messy user 13', 'viewer', '2023-02-01 00:00:13+00'),
  ('bbbbbbbb-0000-4000-8000-000000000014', 'aaaaaaaa-0000-4000-8000-000000000008', 'messy14@example.com', 'Messy user 14', 'admin', '2023-02-01 00:00:14+00');

INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES
  ('messy-session-1', 'bbbbbbbb-0000-4000-8000-000000000001', '2025-11-01 00:00:00+00', '2025-12-01 00:00:00+00'),
  ('messy-session-2', 'bbbbbbbb-0000-4000-8000-000000000005', '2025-11-01 00:00:00+00', '2025-12-01 00:00:00+00');
