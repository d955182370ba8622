-- App-portal tokens issued with readOnly may only read (1) or also write (0).
ALTER TABLE tokens ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
