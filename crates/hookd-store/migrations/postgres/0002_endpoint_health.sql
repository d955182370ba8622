-- When the endpoint started failing without a success since (ms), or NULL when healthy.
ALTER TABLE endpoints ADD COLUMN failing_since BIGINT;
