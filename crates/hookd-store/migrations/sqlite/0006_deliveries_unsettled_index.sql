-- Endpoint stats and recover read an endpoint's deliveries by status, but
-- nearly every delivery ends as a success, and the full (endpoint, status)
-- index cost three b-tree writes for each one: its entry on insert, then a
-- delete and an insert when it succeeded, at a place of its own per endpoint.
-- Indexing only the rows that are not (yet) successes costs one insert and,
-- on success, one delete, and keeps the index small. A query that wants it
-- repeats its condition, `status <> 0`, which SQLite needs to see verbatim.
DROP INDEX IF EXISTS deliveries_endpoint_status;
CREATE INDEX deliveries_endpoint_unsettled ON deliveries (endpoint_id, status, created_at) WHERE status <> 0;
