-- How many errors of each finding code an upload's report holds: the staff's status page
-- shows each organisation's most frequent reasons for rejection without reading reports.
CREATE TABLE upload_error_codes (
    upload_id BIGINT NOT NULL REFERENCES uploads (id),
    code TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (upload_id, code)
);
