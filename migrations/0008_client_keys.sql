-- Client authentication with the client's own keys (private_key_jwt, RFC 7523
-- §2.2, OIDC Core §9): a client registers its public keys inline (jwks, an RFC
-- 7517 JWK Set) or by URL (jwks_uri, fetched through the SSRF guard and cached
-- in the TTL store); RFC 7591 §2 makes the two mutually exclusive. Such a
-- client has no secret.
ALTER TABLE clients ADD COLUMN jwks jsonb;
ALTER TABLE clients ADD COLUMN jwks_uri text;

-- A secret exactly for the methods that prove one (was: for every method but 'none').
ALTER TABLE clients DROP CONSTRAINT clients_secret_matches_method;
ALTER TABLE clients ADD CONSTRAINT clients_secret_matches_method CHECK (
  (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post')) = (client_secret_hash IS NOT NULL)
);
-- Keys exactly for private_key_jwt, and then one of the two forms.
ALTER TABLE clients ADD CONSTRAINT clients_keys_match_method CHECK (
  CASE WHEN token_endpoint_auth_method = 'private_key_jwt'
    THEN (jwks IS NULL) <> (jwks_uri IS NULL)
    ELSE jwks IS NULL AND jwks_uri IS NULL
  END
);
