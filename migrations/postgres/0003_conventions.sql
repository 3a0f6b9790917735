-- Extranet conventions: each new one replaces every earlier access of the organisation.
CREATE TABLE conventions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    signed_on TEXT NOT NULL,
    notify_email TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    revoked_users BIGINT NOT NULL
);
CREATE INDEX conventions_by_organisation ON conventions (organisation_id);
