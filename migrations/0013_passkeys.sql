-- Passkeys (WebAuthn credentials) a user registered on the account page and
-- signs in with from the login page.
--
-- credential_id: the authenticator's credential id (base64url), unique over
-- every user: one credential belongs to one account. public_key: the
-- credential's COSE public key (base64url); a public key, not a secret.
-- counter: the last signature counter seen (0 for authenticators that keep
-- none); a later assertion must carry a greater one, else the authenticator
-- was cloned. transports: hints for the browser (usb, internal, hybrid, …).
-- device_type/backed_up: the backup eligibility and state flags of the last
-- registration or use ('singleDevice': the key never leaves the
-- authenticator; 'multiDevice': it may be synced). The passkey is bound to
-- the RP ID (the ISSUER's host) of its registration.
CREATE TABLE passkeys (
  id            text PRIMARY KEY,
  user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  credential_id text NOT NULL UNIQUE,
  public_key    text NOT NULL,
  counter       bigint NOT NULL DEFAULT 0,
  transports    text[] NOT NULL DEFAULT '{}',
  device_type   text NOT NULL,
  backed_up     boolean NOT NULL,
  name          text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  CONSTRAINT passkeys_device_type_known CHECK (device_type IN ('singleDevice', 'multiDevice')),
  CONSTRAINT passkeys_counter_uint32 CHECK (counter BETWEEN 0 AND 4294967295)
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, created_at);
