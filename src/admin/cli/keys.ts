/** `keys …`: list the signing keys and rotate them. */
import type { AccessTokenAlg } from '../../config.js';
import type { SigningKeyInfo } from '../../tokens/types.js';
import { stringValue, table } from './format.js';
import { UsageError, type Command, type CommandGroup } from './types.js';

const ALGS: readonly AccessTokenAlg[] = ['ES256', 'RS256', 'EdDSA', 'PS256'];

const iso = (date: Date | null) => (date === null ? '-' : date.toISOString());

function toWire(key: SigningKeyInfo) {
  return {
    kid: key.kid,
    alg: key.alg,
    status: key.status,
    created_at: iso(key.createdAt),
    activates_at: iso(key.activatesAt),
    retired_at: key.retiredAt && iso(key.retiredAt),
    expires_at: key.expiresAt && iso(key.expiresAt),
  };
}

const list: Command = {
  name: 'list',
  summary: 'List the published signing keys: pending ones sign from SIGNS FROM, the active one signs, retired ones only verify until they are unpublished',
  async run(services) {
    const keys = await services.tokens.keys.list();
    const rows = keys.map((k) => [k.kid, k.alg, k.status, iso(k.activatesAt), iso(k.retiredAt), iso(k.expiresAt)]);
    return { data: keys.map(toWire), text: table(['KID', 'ALG', 'STATUS', 'SIGNS FROM', 'SIGNS UNTIL', 'UNPUBLISHED AFTER'], rows) };
  },
};

const rotate: Command = {
  name: 'rotate',
  summary:
    'Add a new signing key: published at once, it signs only once JWKS cached by verifiers have expired (about 3 minutes); until then the current key of that algorithm signs, then stays published until its tokens have expired',
  options: {
    alg: { type: 'string', valueName: 'ALG', description: `Algorithm: ${ALGS.join(', ')} (default: ACCESS_TOKEN_ALG; RS256 is the ID-token key)` },
  },
  examples: ['keys rotate', 'keys rotate --alg RS256'],
  async run(services, args) {
    const alg = stringValue(args, 'alg');
    if (alg !== undefined && !(ALGS as readonly string[]).includes(alg)) throw new UsageError(`--alg must be one of ${ALGS.join(', ')}`);
    const key = await services.tokens.keys.rotate(alg as AccessTokenAlg | undefined);
    const previous = (await services.tokens.keys.list()).filter((k) => k.alg === key.alg && k.kid !== key.kid && k.retiredAt?.getTime() === key.activatesAt.getTime());
    const seconds = Math.max(0, Math.round((key.activatesAt.getTime() - services.now()) / 1000));
    const lines = [`new ${key.alg} signing key ${key.kid} is published now and signs from ${iso(key.activatesAt)} (in ${seconds} s).`];
    for (const old of previous) lines.push(`${old.kid} signs until then and stays published until ${iso(old.expiresAt)}, when every token it signed has expired.`);
    return { data: { ...toWire(key), replaces: previous.map((k) => k.kid) }, text: lines.join('\n') };
  },
};

export const keyCommands: CommandGroup = {
  name: 'keys',
  summary: 'Signing keys: list, rotate',
  commands: [list, rotate],
};
