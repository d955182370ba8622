-- A message is accepted (stored, answered 202) before it is fanned out into
-- deliveries, so that the producer never waits for one row per endpoint. Each
-- row here is an accepted message whose fan-out has not been written yet. The
-- fan-out deletes the row in the transaction that inserts the deliveries (the
-- delete's row lock makes a second worker find nothing), so a message is
-- fanned out exactly once; rows left by a crashed node are fanned out by the
-- next start or by any node's periodic sweep.
CREATE TABLE pending_fanouts (
    msg_id     TEXT   COLLATE "C" PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE
);
