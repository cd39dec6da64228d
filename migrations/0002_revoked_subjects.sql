-- Token service: per-subject revocation. When a user's password changes, or
-- the user is disabled or deleted, every access token issued to that subject
-- before `not_before` is refused (also those issued without a refresh token,
-- whose jtis are recorded nowhere). Kept until the last such token would have
-- expired (`expires_at`); no foreign key, the user may be gone.
CREATE TABLE revoked_subjects (
  sub        text PRIMARY KEY,
  not_before timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_subjects_not_before_idx ON revoked_subjects (not_before);
