-- Ingestion of returned spreadsheets: the affiliates of each contract with their periods and
-- salaries, the job queue that processes uploads, and the reports shown in results/.
-- Amounts are EUR cents; rates are per ten thousand (0.8 = 8000).

CREATE TABLE contract_categories (
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    code TEXT NOT NULL,
    PRIMARY KEY (contract_id, code)
);

CREATE TABLE affiliates (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
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
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    affiliate_id BIGINT NOT NULL REFERENCES affiliates (id),
    category TEXT NOT NULL,
    worker_status TEXT NOT NULL,
    hire_date TEXT NOT NULL,
    affiliation_date TEXT NOT NULL,
    exit_date TEXT,
    exit_reason TEXT,
    date_of_death TEXT,
    upload_id BIGINT NOT NULL REFERENCES uploads (id),
    exit_upload_id BIGINT REFERENCES uploads (id)
);
CREATE INDEX affiliation_periods_by_affiliate ON affiliation_periods (affiliate_id);
-- At most one open period per affiliate.
CREATE UNIQUE INDEX affiliation_periods_open ON affiliation_periods (affiliate_id) WHERE exit_date IS NULL;

CREATE TABLE salary_history (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    affiliate_id BIGINT NOT NULL REFERENCES affiliates (id),
    effective_date TEXT NOT NULL,
    salary_fte_cents BIGINT NOT NULL,
    salary_frequency TEXT NOT NULL,
    occupation_rate BIGINT NOT NULL,
    upload_id BIGINT NOT NULL REFERENCES uploads (id)
);
CREATE INDEX salary_history_by_affiliate ON salary_history (affiliate_id);

CREATE TABLE ingest_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upload_id BIGINT NOT NULL UNIQUE REFERENCES uploads (id),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_by TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    last_error TEXT
);
CREATE INDEX ingest_jobs_by_status ON ingest_jobs (status, id);

CREATE TABLE reports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upload_id BIGINT NOT NULL REFERENCES uploads (id),
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    file_name TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX reports_by_contract ON reports (contract_id, file_name);

ALTER TABLE uploads ADD COLUMN data_rows BIGINT;
ALTER TABLE uploads ADD COLUMN error_count BIGINT;
ALTER TABLE uploads ADD COLUMN warning_count BIGINT;
ALTER TABLE uploads ADD COLUMN processed_at BIGINT;
