-- Annual-adjustment templates sent to contracts: a returned file is checked against its own.
CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    contract_id BIGINT NOT NULL REFERENCES contracts (id),
    adjustment_date TEXT NOT NULL,
    rows BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
