-- A staff member is written to in a language of their own (a suspended login, new
-- credentials), as users are. Staff added before this column read English, as they did.
ALTER TABLE staff ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
