-- User sheets dropped by master users into /access/requests/, waiting for the insurer's decision.
CREATE TABLE access_requests (
    id INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    uploader_user_id INTEGER NOT NULL REFERENCES users (id),
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    report_key TEXT NOT NULL UNIQUE,
    report_size INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'invalid', 'approved', 'rejected')),
    problems INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    reason TEXT
);
CREATE INDEX access_requests_by_organisation ON access_requests (organisation_id, file_name);
