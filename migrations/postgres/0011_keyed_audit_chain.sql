-- The audit chain is keyed: each hash is an HMAC-SHA-256 with a key kept outside the
-- database, so that recomputing the chain after an edit needs the key. Rows written before
-- the key existed keep their plain SHA-256 chain (keyed = 0); no plain row may follow a
-- keyed one.
ALTER TABLE audit_events ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
