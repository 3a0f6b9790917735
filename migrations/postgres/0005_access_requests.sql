-- User sheets dropped by master users into /access/requests/, waiting for the insurer's decision.
CREATE TABLE access_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    uploader_user_id BIGINT NOT NULL REFERENCES users (id),
    file_name TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    report_key TEXT NOT NULL UNIQUE,
    report_size BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'invalid', 'approved', 'rejected')),
    problems BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    reason TEXT
);
CREATE INDEX access_requests_by_organisation ON access_requests (organisation_id, file_name);
