-- Extranet conventions: each new one replaces every earlier access of the organisation.
CREATE TABLE conventions (
    id INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    signed_on TEXT NOT NULL,
    notify_email TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    revoked_users INTEGER NOT NULL
);
CREATE INDEX conventions_by_organisation ON conventions (organisation_id);
