import type { Db, Executor, NewUser, Page, User, UserPatch, UserRepo } from '../types.js';
import { isUniqueViolation } from './errors.js';

export interface UserRow {
  id: string;
  username: string;
  email: string | null;
  email_verified: boolean;
  password_hash: string;
  roles: string[];
  disabled: boolean;
  credentials_changed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, username, email, email_verified, password_hash, roles, disabled, credentials_changed_at, created_at, updated_at';

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    emailVerified: row.email_verified,
    passwordHash: row.password_hash,
    roles: row.roles,
    disabled: row.disabled,
    credentialsChangedAt: row.credentials_changed_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function createUserRepo(db: Db): UserRepo {
  return {
    async create(user: NewUser, tx: Executor = db) {
      try {
        const rows = await tx.query<UserRow>(
          `INSERT INTO users (id, username, email, email_verified, password_hash, roles) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
          [user.id, user.username, user.email, user.emailVerified ?? false, user.passwordHash, user.roles],
        );
        return toUser(rows[0]!);
      } catch (err) {
        if (isUniqueViolation(err)) return null;
        throw err;
      }
    },
    async findById(id) {
      const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
      return rows[0] ? toUser(rows[0]) : null;
    },
    async findByUsername(username) {
      const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1)`, [username]);
      return rows[0] ? toUser(rows[0]) : null;
    },
    async findByVerifiedEmail(email) {
      const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE email_verified AND lower(email) = lower($1) ORDER BY created_at, id LIMIT 5`, [email]);
      return rows.map(toUser);
    },
    async findByEmail(email, limit) {
      const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE lower(email) = lower($1) ORDER BY created_at, id LIMIT $2`, [email, limit]);
      return rows.map(toUser);
    },
    async list(page: Page) {
      const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2`, [page.limit, page.offset]);
      return rows.map(toUser);
    },
    async count() {
      const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
      return rows[0]!.n;
    },
    async update(id, patch: UserPatch) {
      const sets: string[] = [];
      const params: unknown[] = [id];
      const add = (column: string, value: unknown) => {
        params.push(value);
        sets.push(`${column} = $${params.length}`);
      };
      if (patch.email !== undefined) {
        add('email', patch.email);
        // A new address is not verified (the right side reads the row as it was), unless the caller vouches for it.
        if (patch.emailVerified === undefined) sets.push(`email_verified = (email_verified AND lower(email) IS NOT DISTINCT FROM lower($${params.length}))`);
      }
      if (patch.emailVerified !== undefined) add('email_verified', patch.emailVerified);
      if (patch.passwordHash !== undefined) add('password_hash', patch.passwordHash);
      if (patch.roles !== undefined) add('roles', patch.roles);
      if (patch.disabled !== undefined) add('disabled', patch.disabled);
      if (patch.credentialsChangedAt !== undefined) add('credentials_changed_at', patch.credentialsChangedAt);
      const rows = await db.query<UserRow>(
        `UPDATE users SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 RETURNING ${COLUMNS}`,
        params,
      );
      return rows[0] ? toUser(rows[0]) : null;
    },
    async markEmailVerified(id, email) {
      const rows = await db.query('UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1 AND lower(email) = lower($2) RETURNING id', [id, email]);
      return rows.length > 0;
    },
    async delete(id) {
      const rows = await db.query('DELETE FROM users WHERE id = $1 RETURNING id', [id]);
      return rows.length > 0;
    },
    async existsWithRole(role, exceptId) {
      const rows = await db.query('SELECT 1 FROM users WHERE $1 = ANY(roles) AND NOT disabled AND id IS DISTINCT FROM $2 LIMIT 1', [role, exceptId ?? null]);
      return rows.length > 0;
    },
  };
}
