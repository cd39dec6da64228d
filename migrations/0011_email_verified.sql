-- Whether the user proved they receive mail at `email` (a mailed link,
-- REQUIRE_EMAIL_VERIFICATION). Reported as `email_verified` by UserInfo;
-- changing the address clears it (storage/sql/users.ts).
ALTER TABLE users ADD COLUMN IF NOT EXISTS email_verified boolean NOT NULL DEFAULT false;
