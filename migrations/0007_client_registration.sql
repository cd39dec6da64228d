-- Clients no admin registered (RFC 7591/7592 dynamic registration, Client ID
-- Metadata Documents) and the tokens an admin hands out for registration.
--
-- origin: 'admin' (the admin API, console and CLI, and first-party clients
-- the server ensures itself), 'dynamic' (RFC 7591 at the registration
-- endpoint) or 'metadata_document' (a client whose client_id is the https URL
-- of its metadata document: a row is kept once someone authorized it, so
-- consents and refresh tokens can refer to it; its metadata always comes
-- from the document, never from this row).
-- registration_access_token_hash: RFC 7592, stored only as a hash; dynamic
-- clients only.
-- last_used_at: when a token was last issued to the client or it was last
-- authorized, written at most once a day per client. Dynamic and metadata-
-- document clients unused for DYNAMIC_CLIENT_IDLE_DAYS (since this, or since
-- created_at when never used) are deleted by the server.
ALTER TABLE clients ADD COLUMN origin text NOT NULL DEFAULT 'admin';
ALTER TABLE clients ADD CONSTRAINT clients_origin_known CHECK (origin IN ('admin', 'dynamic', 'metadata_document'));
ALTER TABLE clients ADD COLUMN registration_access_token_hash text;
ALTER TABLE clients ADD COLUMN last_used_at timestamptz;
CREATE INDEX clients_idle_idx ON clients ((coalesce(last_used_at, created_at))) WHERE origin <> 'admin';

-- RFC 7591 §3 initial access tokens (DYNAMIC_REGISTRATION=token): created by
-- an admin, shown once, stored only as a hash; usable until expires_at (null:
-- no expiry) and for max_uses registrations (null: any number). Revoking one
-- deletes its row.
CREATE TABLE initial_access_tokens (
  id           text PRIMARY KEY,
  token_hash   text NOT NULL UNIQUE,
  description  text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  max_uses     integer CHECK (max_uses IS NULL OR max_uses > 0),
  uses         integer NOT NULL DEFAULT 0,
  last_used_at timestamptz
);
