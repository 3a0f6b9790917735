-- Outgoing mail waits here until a transport delivered it; delivery is retried with backoff.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient TEXT NOT NULL,
    -- What the message is about (credentials, documents-available, upload-processed, ...).
    purpose TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Erased once the message is delivered (credentials must not stay in the registry).
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- The language of the messages sent to the organisation's notification address.
ALTER TABLE organisations ADD COLUMN language TEXT NOT NULL DEFAULT 'fr';
