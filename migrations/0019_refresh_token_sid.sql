-- The browser session (OIDC `sid`, Back-Channel Logout §2.4) a refresh-token
-- family's grant was signed in with, repeated by the ID tokens of its
-- refreshes; null: none (not from a browser session, or issued before).
ALTER TABLE refresh_tokens ADD COLUMN sid text;
