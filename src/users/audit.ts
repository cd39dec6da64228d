/**
 * The audit events of the user service's changes, recorded once here for
 * every front end (admin API, console, CLI, sign-up, the bootstrap admin):
 * `user.created`, `user.updated` (which fields; the new roles),
 * `user.password_changed`, `user.disabled` / `user.enabled` and
 * `user.deleted`. Only what actually changed is recorded, so the state before
 * the change is read first. Never a password or its hash.
 */
import { recordChange, userActor, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import type { User, UserRepo } from '../storage/types.js';

interface UserChanges<C, P> {
  create(input: C, context?: ChangeContext): Promise<User>;
  update(id: string, input: P, context?: ChangeContext): Promise<User>;
  delete(id: string): Promise<void>;
}

export interface AuditedUserChanges<C, P> {
  create(input: C, context?: ChangeContext): Promise<User>;
  update(id: string, input: P, context?: ChangeContext): Promise<User>;
  delete(id: string, context?: ChangeContext): Promise<void>;
}

const sameRoles = (a: readonly string[], b: readonly string[]) => [...a].sort().join(' ') === [...b].sort().join(' ');

/** Wraps the user service's changes so each one that succeeds is recorded with its context. */
export function auditUserChanges<C, P extends { password?: unknown }>(
  changes: UserChanges<C, P>,
  deps: { repo: Pick<UserRepo, 'findById'>; audit?: AuditRecorder | undefined },
): AuditedUserChanges<C, P> {
  const { repo, audit } = deps;
  const subject = (user: User) => ({ type: 'user' as const, id: user.id });

  return {
    async create(input, context) {
      const user = await changes.create(input, context);
      // Someone not yet known (id null) creating an account is its owner signing up.
      const actor = context?.actor.type === 'user' && context.actor.id === null ? { ...context, actor: userActor(user) } : context;
      await recordChange(audit, actor, { type: 'user.created', subject: subject(user), details: { username: user.username, roles: user.roles } });
      return user;
    },
    async update(id, input, context) {
      const before = audit ? await repo.findById(id) : null;
      const user = await changes.update(id, input, context);
      if (!before) return user;
      const base = { subject: subject(user) };
      const fields = [...(before.email !== user.email ? ['email'] : []), ...(sameRoles(before.roles, user.roles) ? [] : ['roles'])];
      if (fields.length > 0) {
        const details = { username: user.username, fields, ...(fields.includes('roles') ? { roles: user.roles } : {}) };
        await recordChange(audit, context, { ...base, type: 'user.updated', details });
      }
      if (input.password !== undefined) await recordChange(audit, context, { ...base, type: 'user.password_changed', details: { username: user.username } });
      if (before.disabled !== user.disabled) {
        await recordChange(audit, context, { ...base, type: user.disabled ? 'user.disabled' : 'user.enabled', details: { username: user.username } });
      }
      return user;
    },
    async delete(id, context) {
      const before = audit ? await repo.findById(id) : null;
      await changes.delete(id);
      if (before) await recordChange(audit, context, { type: 'user.deleted', subject: subject(before), details: { username: before.username } });
    },
  };
}
