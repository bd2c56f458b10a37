-- Rollback of 001_create_feature_flags: drops the table and its rows.
DROP TABLE feature_flags;
