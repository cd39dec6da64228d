-- The audit trail: security events (sign-ins, throttling, refresh-token
-- reuse, consent, admin changes to clients and users, key rotation). Never a
-- secret: no password, client secret, token, code or hash, in any column.
-- Rows older than AUDIT_RETENTION_DAYS are deleted by the server.
--
-- actor_type: 'user' (actor_id the user id, or null when a sign-in named an
-- unknown or wrong account; actor_name the username), 'cli' or 'system'.
-- subject_type/subject_id: what was acted on ('user', 'client', 'key',
-- 'family'). `type` uses the C collation so a prefix filter (`user.`) is a
-- range scan of its index.
CREATE TABLE audit_events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at  timestamptz NOT NULL,
  type         text COLLATE "C" NOT NULL,
  outcome      text NOT NULL,
  actor_type   text NOT NULL,
  actor_id     text,
  actor_name   text,
  subject_type text,
  subject_id   text,
  client_id    text,
  ip           text,
  details      jsonb NOT NULL DEFAULT '{}'
);
-- Newest first (every listing), since/until, and pruning.
CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at DESC, id DESC);
-- One per filter of GET /admin/events, each ordered by time for the newest-first page.
CREATE INDEX audit_events_type_idx ON audit_events (type, occurred_at DESC);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id, occurred_at DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_events_actor_name_idx ON audit_events (lower(actor_name), occurred_at DESC) WHERE actor_name IS NOT NULL;
CREATE INDEX audit_events_subject_idx ON audit_events (subject_id, occurred_at DESC) WHERE subject_id IS NOT NULL;
CREATE INDEX audit_events_client_idx ON audit_events (client_id, occurred_at DESC) WHERE client_id IS NOT NULL;
CREATE INDEX audit_events_outcome_idx ON audit_events (outcome, occurred_at DESC);
