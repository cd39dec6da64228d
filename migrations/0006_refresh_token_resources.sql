-- Resource indicators (RFC 8707): the resources a grant covers, kept with
-- each refresh token of its family, so a refresh may ask for an access
-- token for any of them (narrowing), never another. Each entry is a
-- resource identifier as configured in RESOURCES.
--
-- NULL: issued before resources were bound; such a token covers the default
-- resource (ACCESS_TOKEN_AUDIENCE, else the first of RESOURCES), which is
-- the audience every token had then.
ALTER TABLE refresh_tokens ADD COLUMN resources text[];
