-- The brute-force defender, shared by every gateway instance on the same registry: scored
-- events per source address and per login within an observation window, and the bans they
-- led to. A ban's length grows each time its subject comes back (ban_count).
CREATE TABLE defender_events (
    id INTEGER PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    at INTEGER NOT NULL,
    weight INTEGER NOT NULL
);
CREATE INDEX defender_events_subject ON defender_events (subject_kind, subject, at);
CREATE TABLE defender_bans (
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    banned_until INTEGER NOT NULL,
    ban_count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (subject_kind, subject)
);
