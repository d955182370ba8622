-- hookd's embedded schema.
--
-- Conventions (mirrored by the PostgreSQL migrations):
--   * timestamps are INTEGER milliseconds since the Unix epoch, UTC;
--   * lists and maps the API accepts as a whole (event type filters, channels,
--     tags, metadata, headers, old secrets, settings, schemas, task data) are
--     JSON text, decoded by the store;
--   * message and attempt statuses use Svix's numbering
--     (0 success, 1 pending, 2 fail, 3 sending, 4 canceled);
--   * deleting an application cascades to everything under it through the
--     foreign keys (connections run with PRAGMA foreign_keys = ON); tokens have
--     no foreign key because an admin token belongs to no application, so the
--     store deletes an application's tokens itself.

CREATE TABLE applications (
    id            TEXT    PRIMARY KEY NOT NULL,
    uid           TEXT    UNIQUE,
    name          TEXT    NOT NULL,
    throttle_rate INTEGER,
    metadata      TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- `scope` is 'admin' or the id of the application the token is limited to.
CREATE TABLE tokens (
    id         TEXT    PRIMARY KEY NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    scope      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX tokens_scope ON tokens (scope);

CREATE TABLE event_types (
    name          TEXT    PRIMARY KEY NOT NULL,
    description   TEXT    NOT NULL,
    archived      INTEGER NOT NULL,
    deprecated    INTEGER NOT NULL,
    schemas       TEXT,
    group_name    TEXT,
    feature_flags TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id            TEXT    PRIMARY KEY NOT NULL,
    app_id        TEXT    NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    uid           TEXT,
    url           TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    disabled      INTEGER NOT NULL,
    throttle_rate INTEGER,
    event_types   TEXT,
    channels      TEXT,
    metadata      TEXT    NOT NULL,
    headers       TEXT    NOT NULL,
    secret        TEXT    NOT NULL,
    old_secrets   TEXT    NOT NULL,
    settings      TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
-- Listing an app's endpoints (and the cascade from applications).
CREATE INDEX endpoints_app_id ON endpoints (app_id, id);

-- `payload` is NULL once the content has been expunged.
CREATE TABLE messages (
    id         TEXT    PRIMARY KEY NOT NULL,
    app_id     TEXT    NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    event_id   TEXT,
    event_type TEXT    NOT NULL,
    payload    TEXT,
    channels   TEXT,
    tags       TEXT,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_app_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;
-- Listing an app's messages (and the cascade from applications).
CREATE INDEX messages_app_id ON messages (app_id, id);
-- Listing an app's messages of some event types.
CREATE INDEX messages_app_event_type ON messages (app_id, event_type, id);

-- One message bound for one endpoint. `app_id` is denormalised for scoping;
-- the rows go away with their message or their endpoint.
CREATE TABLE deliveries (
    id           TEXT    PRIMARY KEY NOT NULL,
    app_id       TEXT    NOT NULL,
    msg_id       TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id  TEXT    NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (msg_id, endpoint_id)
);
-- An endpoint's messages in message-id order (and the cascade from endpoints).
CREATE INDEX deliveries_endpoint_msg ON deliveries (endpoint_id, msg_id);
-- Endpoint stats and recover: an endpoint's deliveries by status and age.
CREATE INDEX deliveries_endpoint_status ON deliveries (endpoint_id, status, created_at);
-- Rebuilding the queue on start: only the unfinished rows, in id order.
CREATE INDEX deliveries_unfinished ON deliveries (id) WHERE status IN (1, 3);

-- `response` is NULL once the content has been expunged. `app_id` is
-- denormalised for scoping; the rows go away with their message or endpoint.
CREATE TABLE attempts (
    id                   TEXT    PRIMARY KEY NOT NULL,
    app_id               TEXT    NOT NULL,
    msg_id               TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id          TEXT    NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    url                  TEXT    NOT NULL,
    response             TEXT,
    response_status_code INTEGER NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    status               INTEGER NOT NULL,
    trigger_type         INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempts_app_id ON attempts (app_id, id);
CREATE INDEX attempts_msg_id ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint_id ON attempts (endpoint_id, id);

-- A claimed idempotency key. `completed` is 0 while the request runs (the
-- response columns are NULL) and 1 once its response is stored.
CREATE TABLE idempotency (
    key          TEXT    PRIMARY KEY NOT NULL,
    completed    INTEGER NOT NULL,
    locked_at    INTEGER NOT NULL,
    status       INTEGER,
    content_type TEXT,
    body         BLOB,
    expires_at   INTEGER
);

CREATE TABLE background_tasks (
    id         TEXT    PRIMARY KEY NOT NULL,
    task       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
