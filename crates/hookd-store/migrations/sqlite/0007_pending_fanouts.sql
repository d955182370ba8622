-- A message is accepted (stored, answered 202) before it is fanned out into
-- deliveries, so that the producer never waits for one row per endpoint. Each
-- row here is an accepted message whose fan-out has not been written yet. The
-- fan-out deletes the row in the transaction that inserts the deliveries, so a
-- message is fanned out exactly once, however many workers try; rows left by a
-- crash are fanned out on the next start or by the periodic sweep.
CREATE TABLE pending_fanouts (
    msg_id     TEXT    PRIMARY KEY NOT NULL REFERENCES messages (id) ON DELETE CASCADE
) WITHOUT ROWID;
