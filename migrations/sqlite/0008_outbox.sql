-- Outgoing mail waits here until a transport delivered it; delivery is retried with backoff.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    -- What the message is about (credentials, documents-available, upload-processed, ...).
    purpose TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Erased once the message is delivered (credentials must not stay in the registry).
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- The language of the messages sent to the organisation's notification address.
ALTER TABLE organisations ADD COLUMN language TEXT NOT NULL DEFAULT 'fr';
