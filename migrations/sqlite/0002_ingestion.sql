-- Ingestion of returned spreadsheets: the affiliates of each contract with their periods and
-- salaries, the job queue that processes uploads, and the reports shown in results/.
-- Amounts are EUR cents; rates are per ten thousand (0.8 = 8000).

CREATE TABLE contract_categories (
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    code TEXT NOT NULL,
    PRIMARY KEY (contract_id, code)
);

CREATE TABLE affiliates (
    id INTEGER PRIMARY KEY,
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    niss TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    gender TEXT,
    language TEXT NOT NULL,
    employer_reference TEXT,
    UNIQUE (contract_id, niss)
);

CREATE TABLE affiliation_periods (
    id INTEGER PRIMARY KEY,
    affiliate_id INTEGER NOT NULL REFERENCES affiliates (id),
    category TEXT NOT NULL,
    worker_status TEXT NOT NULL,
    hire_date TEXT NOT NULL,
    affiliation_date TEXT NOT NULL,
    exit_date TEXT,
    exit_reason TEXT,
    date_of_death TEXT,
    upload_id INTEGER NOT NULL REFERENCES uploads (id),
    exit_upload_id INTEGER REFERENCES uploads (id)
);
CREATE INDEX affiliation_periods_by_affiliate ON affiliation_periods (affiliate_id);
-- At most one open period per affiliate.
CREATE UNIQUE INDEX affiliation_periods_open ON affiliation_periods (affiliate_id) WHERE exit_date IS NULL;

CREATE TABLE salary_history (
    id INTEGER PRIMARY KEY,
    affiliate_id INTEGER NOT NULL REFERENCES affiliates (id),
    effective_date TEXT NOT NULL,
    salary_fte_cents INTEGER NOT NULL,
    salary_frequency TEXT NOT NULL,
    occupation_rate INTEGER NOT NULL,
    upload_id INTEGER NOT NULL REFERENCES uploads (id)
);
CREATE INDEX salary_history_by_affiliate ON salary_history (affiliate_id);

CREATE TABLE ingest_jobs (
    id INTEGER PRIMARY KEY,
    upload_id INTEGER NOT NULL UNIQUE REFERENCES uploads (id),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    last_error TEXT
);
CREATE INDEX ingest_jobs_by_status ON ingest_jobs (status, id);

CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    upload_id INTEGER NOT NULL REFERENCES uploads (id),
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX reports_by_contract ON reports (contract_id, file_name);

ALTER TABLE uploads ADD COLUMN data_rows INTEGER;
ALTER TABLE uploads ADD COLUMN error_count INTEGER;
ALTER TABLE uploads ADD COLUMN warning_count INTEGER;
ALTER TABLE uploads ADD COLUMN processed_at INTEGER;
