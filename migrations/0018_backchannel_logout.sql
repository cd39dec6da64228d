-- OpenID Connect Back-Channel Logout 1.0 §2.2: where this server posts a
-- logout token when a browser session the client signed the user in through
-- ends (null: never), and whether the client needs the `sid` claim in it.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri text;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required boolean NOT NULL DEFAULT false;
