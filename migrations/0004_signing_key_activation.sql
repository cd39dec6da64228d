-- Signing-key rollover: a rotated key is published at once but signs only from
-- `activates_at`, after verifiers' cached JWKS (max-age) have expired; the key
-- it replaces keeps signing until then (its `retired_at` is that same instant).
-- Every instance reads the instant from here, so all switch together.
-- Keys that exist already have signed since they were created. The default
-- keeps inserts that do not name the column (an older instance during a
-- rolling upgrade) signing at once, as before.
ALTER TABLE signing_keys ADD COLUMN activates_at timestamptz;
UPDATE signing_keys SET activates_at = created_at;
ALTER TABLE signing_keys ALTER COLUMN activates_at SET NOT NULL;
ALTER TABLE signing_keys ALTER COLUMN activates_at SET DEFAULT now();
