-- Users: when the credentials last changed (a new password, or the account
-- disabled). A browser session signed in before that instant is signed out
-- (refresh-token families and access tokens are revoked at the same moment
-- by the token service). Null: never changed since the account was created.
ALTER TABLE users ADD COLUMN credentials_changed_at timestamptz;

-- Clients: a resource server may introspect (RFC 7662) the access tokens
-- issued to other clients; every other client only its own.
ALTER TABLE clients ADD COLUMN resource_server boolean NOT NULL DEFAULT false;
