-- OpenID Connect RP-Initiated Logout 1.0 §3.1: clients.post_logout_redirect_uris,
-- where the end-session endpoint may send the browser back after signing
-- out. Matched exactly, like redirect_uris; empty: the client is never
-- redirected to after a logout (the signed-out page is shown instead).
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}';
