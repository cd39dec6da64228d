-- Users: people who sign in. Usernames are unique case-insensitively.
CREATE TABLE users (
  id            text PRIMARY KEY,
  username      text NOT NULL,
  email         text,
  password_hash text NOT NULL,
  roles         text[] NOT NULL DEFAULT '{}',
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

-- OAuth clients, RFC 7591 field names. The secret is stored only as a hash.
CREATE TABLE clients (
  client_id                  text PRIMARY KEY,
  client_secret_hash         text,
  client_name                text NOT NULL,
  redirect_uris              text[] NOT NULL DEFAULT '{}',
  grant_types                text[] NOT NULL,
  response_types             text[] NOT NULL DEFAULT '{}',
  token_endpoint_auth_method text NOT NULL,
  scope                      text NOT NULL DEFAULT '',
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT clients_secret_matches_method CHECK (
    (token_endpoint_auth_method = 'none') = (client_secret_hash IS NULL)
  )
);

-- Remembered consent: which scopes a user granted a client.
CREATE TABLE consents (
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_id  text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  scopes     text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_idx ON consents (client_id);

-- Opaque refresh tokens, stored only as SHA-256 hashes. Every rotation adds a
-- row to the same family; a used token presented again revokes the family.
-- access_token_jti/access_token_expires_at name the access token issued with
-- this refresh token, so revoking the family can deny-list it.
CREATE TABLE refresh_tokens (
  token_hash              text PRIMARY KEY,
  family_id               text NOT NULL,
  client_id               text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  user_id                 text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  scope                   text NOT NULL,
  auth_time               timestamptz,
  access_token_jti        text,
  access_token_expires_at timestamptz,
  created_at              timestamptz NOT NULL DEFAULT now(),
  expires_at              timestamptz NOT NULL,
  used_at                 timestamptz,
  revoked_at              timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_user_client_idx ON refresh_tokens (user_id, client_id);

-- Signing keys shared by every instance. A key signs from created_at until it
-- is retired, and is published in JWKS until expires_at (retirement plus the
-- longest lifetime of anything it signed).
CREATE TABLE signing_keys (
  kid         text PRIMARY KEY,
  alg         text NOT NULL,
  private_jwk jsonb NOT NULL,
  public_jwk  jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  retired_at  timestamptz,
  expires_at  timestamptz
);
CREATE INDEX signing_keys_alg_idx ON signing_keys (alg, created_at);

-- Deny-listed access tokens (by jti) until they would have expired anyway.
CREATE TABLE revoked_access_tokens (
  jti        text PRIMARY KEY,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_access_tokens_revoked_idx ON revoked_access_tokens (revoked_at);
