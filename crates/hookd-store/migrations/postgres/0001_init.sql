-- hookd's PostgreSQL schema: the same tables, columns and meaning as the
-- SQLite schema of the same version (migrations/sqlite/0001_init.sql), so one
-- conformance suite holds for both.
--
-- Conventions:
--   * timestamps are BIGINT milliseconds since the Unix epoch, UTC; every
--     integer is BIGINT (SQLite's INTEGER is 64-bit too), so each integer
--     column decodes the same way;
--   * flags are BOOLEAN;
--   * lists and maps the API accepts as a whole (event type filters, channels,
--     tags, metadata, headers, old secrets, settings, schemas, task data) are
--     JSON text, decoded by the store. TEXT rather than JSONB: it reads back
--     byte for byte, and JSONB would refuse a `\u0000` escape that SQLite keeps;
--   * message and attempt statuses use Svix's numbering
--     (0 success, 1 pending, 2 fail, 3 sending, 4 canceled);
--   * keys that listings page through by comparison (ids, uids, event-type
--     names) are COLLATE "C", so they sort bytewise whatever the database's
--     default collation is, as they do in SQLite and in the API's cursors;
--   * deleting an application cascades to everything under it through the
--     foreign keys; tokens have no foreign key because an admin token belongs
--     to no application, so the store deletes an application's tokens itself;
--   * unique constraints are named, because a clash is reported to the API
--     caller by what clashed (see src/postgres/error.rs).

CREATE TABLE applications (
    id            TEXT COLLATE "C" NOT NULL,
    uid           TEXT COLLATE "C",
    name          TEXT   NOT NULL,
    throttle_rate BIGINT,
    metadata      TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT applications_pkey PRIMARY KEY (id),
    CONSTRAINT applications_uid_key UNIQUE (uid)
);

-- `scope` is 'admin' or the id of the application the token is limited to.
CREATE TABLE tokens (
    id         TEXT COLLATE "C" NOT NULL,
    hash       TEXT   NOT NULL,
    scope      TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_hash_key UNIQUE (hash)
);
CREATE INDEX tokens_scope ON tokens (scope);

CREATE TABLE event_types (
    name          TEXT COLLATE "C" NOT NULL,
    description   TEXT    NOT NULL,
    archived      BOOLEAN NOT NULL,
    deprecated    BOOLEAN NOT NULL,
    schemas       TEXT,
    group_name    TEXT,
    feature_flags TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    CONSTRAINT event_types_pkey PRIMARY KEY (name)
);

CREATE TABLE endpoints (
    id            TEXT COLLATE "C" NOT NULL,
    app_id        TEXT COLLATE "C" NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    uid           TEXT COLLATE "C",
    url           TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    disabled      BOOLEAN NOT NULL,
    throttle_rate BIGINT,
    event_types   TEXT,
    channels      TEXT,
    metadata      TEXT    NOT NULL,
    headers       TEXT    NOT NULL,
    secret        TEXT    NOT NULL,
    old_secrets   TEXT    NOT NULL,
    settings      TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    CONSTRAINT endpoints_pkey PRIMARY KEY (id),
    CONSTRAINT endpoints_app_id_uid_key UNIQUE (app_id, uid)
);
-- Listing an app's endpoints (and the cascade from applications).
CREATE INDEX endpoints_app_id ON endpoints (app_id, id);

-- `payload` is the producer's JSON text exactly as sent (hence TEXT), NULL
-- once the content has been expunged.
CREATE TABLE messages (
    id         TEXT COLLATE "C" NOT NULL,
    app_id     TEXT COLLATE "C" NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    event_id   TEXT COLLATE "C",
    event_type TEXT COLLATE "C" NOT NULL,
    payload    TEXT,
    channels   TEXT,
    tags       TEXT,
    created_at BIGINT NOT NULL,
    CONSTRAINT messages_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX messages_app_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;
-- Listing an app's messages (and the cascade from applications).
CREATE INDEX messages_app_id ON messages (app_id, id);
-- Listing an app's messages of some event types.
CREATE INDEX messages_app_event_type ON messages (app_id, event_type, id);

-- One message bound for one endpoint. `app_id` is denormalised for scoping;
-- the rows go away with their message or their endpoint.
CREATE TABLE deliveries (
    id           TEXT COLLATE "C" NOT NULL,
    app_id       TEXT COLLATE "C" NOT NULL,
    msg_id       TEXT COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id  TEXT COLLATE "C" NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status       BIGINT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_attempt BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT deliveries_pkey PRIMARY KEY (id),
    -- Also the index behind the cascade from messages.
    CONSTRAINT deliveries_msg_id_endpoint_id_key UNIQUE (msg_id, endpoint_id)
);
-- An endpoint's messages in message-id order (and the cascade from endpoints).
CREATE INDEX deliveries_endpoint_msg ON deliveries (endpoint_id, msg_id);
-- Endpoint stats and recover: an endpoint's deliveries by status and age.
CREATE INDEX deliveries_endpoint_status ON deliveries (endpoint_id, status, created_at);
-- Rebuilding the queue on start: only the unfinished rows, in id order.
CREATE INDEX deliveries_unfinished ON deliveries (id) WHERE status IN (1, 3);

-- `response` is NULL once the content has been expunged. It is the receiver's
-- body as UTF-8 bytes rather than TEXT: a receiver may answer with NUL bytes,
-- which survive the lossy UTF-8 decoding but which a PostgreSQL TEXT value
-- cannot hold. `app_id` is denormalised for scoping; the rows go away with
-- their message or endpoint.
CREATE TABLE attempts (
    id                   TEXT COLLATE "C" NOT NULL,
    app_id               TEXT COLLATE "C" NOT NULL,
    msg_id               TEXT COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id          TEXT COLLATE "C" NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    url                  TEXT   NOT NULL,
    response             BYTEA,
    response_status_code BIGINT NOT NULL,
    response_duration_ms BIGINT NOT NULL,
    status               BIGINT NOT NULL,
    trigger_type         BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    CONSTRAINT attempts_pkey PRIMARY KEY (id)
);
CREATE INDEX attempts_app_id ON attempts (app_id, id);
CREATE INDEX attempts_msg_id ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint_id ON attempts (endpoint_id, id);

-- A claimed idempotency key. `completed` is false while the request runs (the
-- response columns are NULL) and true once its response is stored.
CREATE TABLE idempotency (
    key          TEXT COLLATE "C" NOT NULL,
    completed    BOOLEAN NOT NULL,
    locked_at    BIGINT  NOT NULL,
    status       BIGINT,
    content_type TEXT,
    body         BYTEA,
    expires_at   BIGINT,
    CONSTRAINT idempotency_pkey PRIMARY KEY (key)
);

CREATE TABLE background_tasks (
    id         TEXT COLLATE "C" NOT NULL,
    task       TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    data       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT background_tasks_pkey PRIMARY KEY (id)
);
