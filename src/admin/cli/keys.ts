/** `keys …`: list the signing keys, rotate them, re-encrypt them (and the other secrets sealed with the same key) at rest. */
import { CLI_ACTOR } from '../../audit/events.js';
import { ConfigError, loadConfig, type AccessTokenAlg } from '../../config.js';
import type { SigningKeyInfo } from '../../tokens/types.js';
import { flag, stringValue, table } from './format.js';
import { UsageError, type CliIo, type Command, type CommandGroup, type ParsedArgs } from './types.js';

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
    const key = await services.tokens.keys.rotate(alg as AccessTokenAlg | undefined, { actor: CLI_ACTOR });
    const previous = (await services.tokens.keys.list()).filter((k) => k.alg === key.alg && k.kid !== key.kid && k.retiredAt?.getTime() === key.activatesAt.getTime());
    const seconds = Math.max(0, Math.round((key.activatesAt.getTime() - services.now()) / 1000));
    const lines = [`new ${key.alg} signing key ${key.kid} is published now and signs from ${iso(key.activatesAt)} (in ${seconds} s).`];
    for (const old of previous) lines.push(`${old.kid} signs until then and stays published until ${iso(old.expiresAt)}, when every token it signed has expired.`);
    return { data: { ...toWire(key), replaces: previous.map((k) => k.kid) }, text: lines.join('\n') };
  },
};

/** 32 bytes from their base64url form, by the same rule as SIGNING_KEY_ENCRYPTION_KEY (config.ts owns it). */
function encryptionKeyFrom(raw: string): Uint8Array {
  try {
    return loadConfig({ SIGNING_KEY_ENCRYPTION_KEY: raw }).signingKeyEncryptionKey!;
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`the new key (standard input) is not valid: ${err.message}`);
    throw err;
  }
}

/**
 * Reads `--new-key-stdin` here, in the CLI process, and passes the key on as
 * `new-key`: the command may run in the server holding the embedded database
 * (over its owner-only control socket), which has no access to this stdin.
 */
async function readNewKey(args: ParsedArgs, io: CliIo): Promise<ParsedArgs> {
  const fromStdin = flag(args, 'new-key-stdin');
  if (fromStdin === flag(args, 'decrypt')) throw new UsageError('give either --new-key-stdin or --decrypt');
  if (!fromStdin) return args;
  const raw = ((await io.readStdin()).split(/\r?\n/)[0] ?? '').trim();
  if (raw === '') throw new UsageError('--new-key-stdin: standard input was empty');
  encryptionKeyFrom(raw);
  const values: ParsedArgs['values'] = { ...args.values, 'new-key': raw };
  delete values['new-key-stdin'];
  return { ...args, values };
}

const reencrypt: Command = {
  name: 'reencrypt',
  summary:
    'Re-encrypt every stored private key, authenticator-app secret and identity-provider client secret: opened with the configured SIGNING_KEY_ENCRYPTION_KEY (or read plainly when it is unset), written under a new key read from standard input, or plainly with --decrypt',
  options: {
    'new-key-stdin': { type: 'boolean', description: 'Read the new key (32 random bytes, base64url) from standard input (first line)' },
    decrypt: { type: 'boolean', description: 'Store the keys and secrets plainly instead (switching encryption off)' },
  },
  examples: [
    "printf '%s\\n' \"$NEW_KEY\" | SIGNING_KEY_ENCRYPTION_KEY=\"$OLD_KEY\" npm run cli -- keys reencrypt --new-key-stdin",
    'keys reencrypt --decrypt',
  ],
  prepare: readNewKey,
  async run(services, args) {
    const raw = stringValue(args, 'new-key');
    if ((raw === undefined) === !flag(args, 'decrypt')) throw new UsageError('give either --new-key-stdin or --decrypt');
    const newKey = raw === undefined ? undefined : encryptionKeyFrom(raw);
    // One transaction for the signing keys, the authenticator-app secrets and the identity providers' client secrets.
    const result = await services.reencryptSecrets(newKey);
    const { totpSecrets, identityProviderSecrets: providerSecrets } = result;
    const how = result.encrypted ? 'encrypted under the new key' : 'stored as plain JWKs';
    const next = result.encrypted ? 'set SIGNING_KEY_ENCRYPTION_KEY to the new key' : 'unset SIGNING_KEY_ENCRYPTION_KEY';
    return {
      data: { reencrypted: result.signingKeys, encrypted: result.encrypted, totpSecrets, identityProviderSecrets: providerSecrets },
      text: [
        `${result.signingKeys} signing key(s) are now ${how}.`,
        `Now ${next} for every instance and for the CLI, and restart the instances. Until then they keep signing with the keys they`,
        'loaded, but refuse "keys rotate", and one restarted with the old setting refuses to start.',
        `${totpSecrets} authenticator-app secret(s) were re-sealed the same way: until the restart, sign-ins with an app code fail.`,
        `${providerSecrets} identity-provider client secret(s) were re-sealed the same way: each sign-in opens the secret with the key its instance`,
        'started with (nothing is cached), so until the restart "Sign in with …" fails.',
      ].join('\n'),
    };
  },
};

export const keyCommands: CommandGroup = {
  name: 'keys',
  summary: 'Signing keys: list, rotate, reencrypt',
  commands: [list, rotate, reencrypt],
};
