-- Quotas and retention: the stored file of a processed upload is deleted after its retention
-- (or by its uploader, for a rejected one); the row and the reports stay, with the time the
-- file went. Quotas add up the sizes of files still stored and of a user's uploads per day.
ALTER TABLE uploads ADD COLUMN file_removed_at BIGINT;
CREATE INDEX uploads_by_uploader ON uploads (uploader_user_id, received_at);
