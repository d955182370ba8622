-- App-portal tokens issued with readOnly may only read (true) or also write (false).
ALTER TABLE tokens ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT FALSE;
