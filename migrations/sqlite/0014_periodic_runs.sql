-- An hourly job that must not run twice at once across instances (the retention pass, the audit
-- checkpoint) is run, for each hour, by the one instance whose claim of that hour lands first.
CREATE TABLE periodic_runs (
    job TEXT NOT NULL,
    period BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    claimed_by TEXT NOT NULL,
    PRIMARY KEY (job, period)
);
