-- The end date an external user's master users were last reminded of: one reminder per date.
ALTER TABLE users ADD COLUMN reminded_for TEXT;
