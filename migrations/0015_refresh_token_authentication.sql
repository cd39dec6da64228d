-- How the user authenticated for a grant (OIDC Core §2): refresh_tokens.amr,
-- the RFC 8176 methods (`pwd`, `otp`, `hwk`, …), and refresh_tokens.acr, the
-- class they achieved (oauth/acr.ts), as the grant's first ID token had them.
-- Set when the family starts, copied to each successor, so an ID token issued
-- on a refresh describes the same authentication (OIDC Core §12.2), as
-- auth_time already does.
--
-- NULL: issued before they were recorded, or by a grant that records none
-- (the password grant, whose first response has no ID token); a refreshed
-- ID token then has no amr or acr, as before.
ALTER TABLE refresh_tokens ADD COLUMN amr text[];
ALTER TABLE refresh_tokens ADD COLUMN acr text;
