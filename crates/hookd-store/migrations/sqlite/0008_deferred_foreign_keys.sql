-- The group writer inserts deliveries and attempts, and updates deliveries, a
-- few hundred rows per statement. A statement that writes many rows and may
-- stop half-way on a broken constraint keeps a statement journal: a copy of
-- every page it changes, so that it alone can be undone. With immediate
-- foreign keys every such statement may stop half-way, and the journal was
-- about a seventh of the writer's work under fan-out (a copy, a malloc and a
-- free per page). With the foreign keys of these two tables deferred to the
-- commit, and the statements written `OR FAIL` (a failure leaves the rows
-- before it in place; the writer then rolls the whole transaction back), no
-- statement needs a journal. The cascades are unchanged: deleting a message or
-- an endpoint still deletes its deliveries and attempts at once.
--
-- SQLite cannot change a constraint in place, so both tables are rebuilt with
-- the same columns, rows and indexes. Nothing refers to either table. This
-- runs once, at the first start of a release that has it: about 9 s for a
-- million deliveries and a million attempts on a 2-core machine, and the old
-- tables' pages stay in the file as free pages for later rows.

CREATE TABLE deliveries_new (
    id           TEXT    PRIMARY KEY NOT NULL,
    app_id       TEXT    NOT NULL,
    msg_id       TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    endpoint_id  TEXT    NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    status       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (msg_id, endpoint_id)
);
INSERT INTO deliveries_new (id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, created_at, updated_at)
    SELECT id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, created_at, updated_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_endpoint_msg ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_endpoint_unsettled ON deliveries (endpoint_id, status, created_at) WHERE status <> 0;
CREATE INDEX deliveries_unfinished ON deliveries (id) WHERE status IN (1, 3);

CREATE TABLE attempts_new (
    id                   TEXT    PRIMARY KEY NOT NULL,
    app_id               TEXT    NOT NULL,
    msg_id               TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    endpoint_id          TEXT    NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    url                  TEXT    NOT NULL,
    response             TEXT,
    response_status_code INTEGER NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    status               INTEGER NOT NULL,
    trigger_type         INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
INSERT INTO attempts_new (id, app_id, msg_id, endpoint_id, url, response, response_status_code,
                          response_duration_ms, status, trigger_type, created_at)
    SELECT id, app_id, msg_id, endpoint_id, url, response, response_status_code,
           response_duration_ms, status, trigger_type, created_at FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX attempts_msg_id ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint_id ON attempts (endpoint_id, id);
