-- The first download of each document by each user.
CREATE TABLE document_downloads (
    document_id BIGINT NOT NULL REFERENCES documents (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    first_at BIGINT NOT NULL,
    PRIMARY KEY (document_id, user_id)
);
