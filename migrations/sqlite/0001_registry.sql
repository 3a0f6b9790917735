-- The registry of the gateway: who may log in, which contracts exist, what was exchanged.
-- Times are Unix seconds (audit: milliseconds); dates are 'YYYY-MM-DD' text.
-- Flags are INTEGER 0/1 (the same column type on both dialects).

CREATE TABLE organisations (
    id INTEGER PRIMARY KEY,
    enterprise_number TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    notify_email TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at INTEGER NOT NULL
);

CREATE TABLE contracts (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    title TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX contracts_by_organisation ON contracts (organisation_id);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    language TEXT NOT NULL CHECK (language IN ('fr', 'nl', 'en')),
    profile TEXT NOT NULL CHECK (profile IN ('consultation', 'inscription')),
    all_contracts INTEGER NOT NULL CHECK (all_contracts IN (0, 1)),
    is_master INTEGER NOT NULL DEFAULT 0 CHECK (is_master IN (0, 1)),
    is_external INTEGER NOT NULL DEFAULT 0 CHECK (is_external IN (0, 1)),
    -- Last day of access; required for external users.
    expires_on TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER,
    CHECK (is_external = 0 OR expires_on IS NOT NULL)
);
CREATE INDEX users_by_organisation ON users (organisation_id);

CREATE TABLE user_contracts (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    PRIMARY KEY (user_id, contract_id)
);

CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER
);

CREATE TABLE public_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users (id),
    staff_id INTEGER REFERENCES staff (id),
    algorithm TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    openssh TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (staff_id IS NULL))
);

CREATE TABLE uploads (
    id INTEGER PRIMARY KEY,
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    kind TEXT NOT NULL,
    uploader_user_id INTEGER NOT NULL REFERENCES users (id),
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('received', 'processing', 'accepted', 'rejected', 'duplicate', 'failed', 'withdrawn')),
    received_at INTEGER NOT NULL,
    client_mtime INTEGER
);
CREATE INDEX uploads_by_folder ON uploads (contract_id, kind, file_name);

CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    kind TEXT NOT NULL,
    year INTEGER,
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    published_by TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    -- Set when a newer document of the same name replaces this one (kept as history).
    superseded_at INTEGER
);
CREATE INDEX documents_by_folder ON documents (contract_id, kind, year, file_name);
-- One current version per name: two publishers racing cannot both make theirs current.
CREATE UNIQUE INDEX documents_current ON documents (contract_id, kind, COALESCE(year, 0), file_name)
    WHERE superseded_at IS NULL;

-- Append-only; each event carries the hash of the previous one.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    organisation_id INTEGER,
    action TEXT NOT NULL,
    path TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    remote_addr TEXT,
    session_id TEXT,
    bytes INTEGER,
    sha256 TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
