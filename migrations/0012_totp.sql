-- TOTP second factor (RFC 6238) and its recovery codes.
--
-- secret: the shared secret as an oct JWK, sealed like signing keys (a compact
-- JWE under SIGNING_KEY_ENCRYPTION_KEY when it is set, tokens/key-encryption.ts).
-- confirmed_at: null while the user is setting it up (not yet a factor).
-- last_used_step: the RFC 6238 time step of the last accepted code; a code is
-- accepted only for a later step (conditional UPDATE), so no code is used twice.
CREATE TABLE totp_credentials (
  user_id        text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  secret         jsonb NOT NULL,
  confirmed_at   timestamptz,
  last_used_step bigint,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- Single-use recovery codes, stored only as SHA-256 hashes (80 random bits each).
CREATE TABLE recovery_codes (
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash  text NOT NULL,
  used_at    timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, code_hash)
);
