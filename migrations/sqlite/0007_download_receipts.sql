-- The first download of each document by each user.
CREATE TABLE document_downloads (
    document_id INTEGER NOT NULL REFERENCES documents (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    first_at INTEGER NOT NULL,
    PRIMARY KEY (document_id, user_id)
);
