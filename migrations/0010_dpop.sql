-- DPoP (RFC 9449).
--
-- refresh_tokens.dpop_jkt: the RFC 7638 thumbprint of the DPoP key a public
-- client's refresh token is bound to (§5): set when the family starts with a
-- DPoP proof, copied to each successor; a refresh must then be proved with
-- that key. NULL: not bound (a confidential client's refresh token is bound
-- by its authentication instead).
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt text;

-- clients.dpop_bound_access_tokens: RFC 9449 §5.2 client metadata; when true,
-- every token request of the client must carry a DPoP proof.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens boolean NOT NULL DEFAULT false;
