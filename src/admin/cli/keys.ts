/** `keys …`: list the signing keys and rotate them. */
import { CLI_ACTOR } from '../../audit/events.js';
import type { AccessTokenAlg } from '../../config.js';
import type { SigningKeyInfo } from '../../tokens/types.js';
import { stringValue, table } from './format.js';
import { UsageError, type Command, type CommandGroup } from './types.js';

const ALGS: readonly AccessTokenAlg[] = ['ES256', 'RS256', 'EdDSA', 'PS256'];

const iso = (date: Date | null) => (date === null ? '-' : date.toISOString());

function toWire(key: SigningKeyInfo) {
  return { kid: key.kid, alg: key.alg, status: key.status, created_at: iso(key.createdAt), retired_at: key.retiredAt && iso(key.retiredAt), expires_at: key.expiresAt && iso(key.expiresAt) };
}

const list: Command = {
  name: 'list',
  summary: 'List the published signing keys (active ones sign; retired ones only verify until they expire)',
  async run(services) {
    const keys = await services.tokens.keys.list();
    const rows = keys.map((k) => [k.kid, k.alg, k.status, iso(k.createdAt), iso(k.expiresAt)]);
    return { data: keys.map(toWire), text: table(['KID', 'ALG', 'STATUS', 'CREATED', 'UNPUBLISHED AFTER'], rows) };
  },
};

const rotate: Command = {
  name: 'rotate',
  summary: 'Add a new signing key and sign with it; the previous key of that algorithm keeps verifying until its tokens have expired',
  options: {
    alg: { type: 'string', valueName: 'ALG', description: `Algorithm: ${ALGS.join(', ')} (default: ACCESS_TOKEN_ALG; RS256 is the ID-token key)` },
  },
  examples: ['keys rotate', 'keys rotate --alg RS256'],
  async run(services, args) {
    const alg = stringValue(args, 'alg');
    if (alg !== undefined && !(ALGS as readonly string[]).includes(alg)) throw new UsageError(`--alg must be one of ${ALGS.join(', ')}`);
    const key = await services.tokens.keys.rotate(alg as AccessTokenAlg | undefined, { actor: CLI_ACTOR });
    return {
      data: toWire(key),
      text: `new ${key.alg} signing key ${key.kid} is active; the previous ${key.alg} key stays published until the tokens it signed have expired`,
    };
  },
};

export const keyCommands: CommandGroup = {
  name: 'keys',
  summary: 'Signing keys: list, rotate',
  commands: [list, rotate],
};
