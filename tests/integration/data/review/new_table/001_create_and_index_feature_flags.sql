-- A new table, indexed in the same migration: it is empty while the index is built, so there is
-- no lock worth a finding (squawk's require-concurrent-index-creation on it is dropped).
CREATE TABLE feature_flags (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  company_id uuid NOT NULL REFERENCES companies (id),
  name text NOT NULL
);
CREATE INDEX feature_flags_company_id ON feature_flags (company_id);
CREATE UNIQUE INDEX feature_flags_name ON feature_flags (company_id, name);
