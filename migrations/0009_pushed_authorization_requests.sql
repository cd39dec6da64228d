-- RFC 9126 §6 client metadata: when true, the client's authorization
-- requests must be pushed (POST /par) and /authorize refuses one sent
-- directly. REQUIRE_PAR=true requires it of every client.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests boolean NOT NULL DEFAULT false;
