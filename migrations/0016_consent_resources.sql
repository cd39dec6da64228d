-- Remembered consent per resource (RFC 8707): consents.resources, the
-- resources of RESOURCES the user allowed the client's tokens to be for, so
-- a consent given for one resource (an API, an MCP server) is not taken as
-- consent for another; a request naming a resource not in the list shows
-- the consent page again. Granting adds to the list, as it does to scopes.
--
-- NULL: remembered before resources were recorded; such a consent covers the
-- default resource only (what a request naming none gets).
ALTER TABLE consents ADD COLUMN resources text[];
