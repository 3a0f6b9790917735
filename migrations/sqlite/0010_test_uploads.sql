-- Uploads sent into /<contract>/test/<kind>/: read and validated like the inbox's, reported
-- in results/ as a test, applied to nothing, and never the duplicate of a real upload.
ALTER TABLE uploads ADD COLUMN is_test INTEGER NOT NULL DEFAULT 0;
