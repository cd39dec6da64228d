-- Upstream OpenID Connect providers ("Sign in with …") and the identities
-- they vouch for, linked to local users.
--
-- identity_providers.id: the slug in the redirect URI registered at the
-- provider ($ISSUER/login/providers/<id>/callback).
-- client_secret: our client secret at the provider, as stored by
-- src/identity-providers/secret.ts: {"jwe": …} (a compact JWE under
-- SIGNING_KEY_ENCRYPTION_KEY, bound to the provider id) when that variable is
-- set, else {"plain": …}. Never returned by any API.
CREATE TABLE identity_providers (
  id            text PRIMARY KEY,
  issuer        text NOT NULL,
  client_id     text NOT NULL,
  client_secret jsonb NOT NULL,
  scopes        text NOT NULL DEFAULT 'openid email profile',
  display_name  text NOT NULL,
  enabled       boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT identity_providers_id_slug CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$')
);

-- One upstream account (the provider's `sub`) is linked to at most one local
-- user; a user may have several. email: the provider's verified address at
-- linking time (for people reading the account page and the console).
CREATE TABLE linked_identities (
  provider_id text NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
  subject     text NOT NULL,
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  email       text,
  linked_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider_id, subject)
);
CREATE INDEX linked_identities_user_idx ON linked_identities (user_id);

-- Linking by email reads users.email_verified (migration 0011): only an
-- address the user proved (or a provider verified) links an upstream account.
