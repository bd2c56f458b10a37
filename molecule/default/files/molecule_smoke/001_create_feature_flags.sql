-- 001_create_feature_flags
--
-- Part of the molecule scenario's own small migration set (not a real
-- migration): a new table with a foreign key into the pre-Phase-C schema.
CREATE TABLE feature_flags (
  id         BIGSERIAL PRIMARY KEY,
  company_id UUID NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  name       VARCHAR(100) NOT NULL,
  enabled    BOOLEAN NOT NULL DEFAULT false,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  CONSTRAINT feature_flags_company_id_name_key UNIQUE (company_id, name)
);
