/**
 * The account page's sections for the password, the apps holding consent
 * and the sessions (`ACCOUNT_SECTIONS` in `account.ts`): what each partial
 * under `views/account/` shows. Their forms post to `account-security.ts`.
 */
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { hasPassword } from '../users/account.js';
import { MIN_PASSWORD_LENGTH, PASSWORD_RULE } from '../users/password-policy.js';

/** What these loaders read (a part of `account.ts`'s `AccountContext`; declared here so the two files do not import each other). */
interface SectionContext {
  user: User;
  session: BrowserSession;
  services: Pick<Services, 'sessions' | 'consents' | 'clients'>;
  /** Messages next to the fields of the form that was just posted. */
  errors?: Record<string, string> | undefined;
}

interface Section {
  template: string;
  load(context: SectionContext): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** A short, readable timestamp (UTC) with its machine form for `<time>`. */
function when(epochMs: number): { iso: string; text: string } {
  const iso = new Date(epochMs).toISOString();
  return { iso, text: `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` };
}

const BROWSERS: Array<[RegExp, string]> = [
  [/\bEdg(e|A|iOS)?\//, 'Edge'],
  [/\bOPR\//, 'Opera'],
  [/\bFirefox\//, 'Firefox'],
  [/\b(HeadlessChrome|Chromium)\//, 'Chromium'],
  [/\bChrome\//, 'Chrome'],
  [/\bVersion\/[\d.]+.*Safari\//, 'Safari'],
  [/\bcurl\//, 'curl'],
];
const SYSTEMS: Array<[RegExp, string]> = [
  [/\bAndroid\b/, 'Android'],
  [/\b(iPhone|iPad|iPod)\b/, 'iOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bLinux\b/, 'Linux'],
];

/** "Firefox on Linux" from a User-Agent header; a rough guess, for people to recognise their devices. */
export function userAgentSummary(userAgent: string): string {
  if (userAgent === '') return 'Unknown browser';
  const browser = BROWSERS.find(([pattern]) => pattern.test(userAgent))?.[1];
  const system = SYSTEMS.find(([pattern]) => pattern.test(userAgent))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? userAgent.slice(0, 40);
}

export const passwordSection: Section = {
  template: 'password',
  // An account made by an upstream sign-in has no password yet: the form sets the first one.
  load: ({ user, errors }) => ({ hasPassword: hasPassword(user), minPasswordLength: MIN_PASSWORD_LENGTH, passwordRule: PASSWORD_RULE, errors: errors ?? {} }),
};

export const appsSection: Section = {
  template: 'apps',
  async load({ user, services }: SectionContext) {
    const consents = await services.consents.listForUser(user.id);
    const apps = await Promise.all(
      consents.map(async (consent) => {
        const client = await services.clients.find(consent.clientId);
        return { clientId: consent.clientId, name: client?.clientName ?? consent.clientId, scopes: consent.scopes, since: when(consent.createdAt.getTime()) };
      }),
    );
    return { apps: apps.sort((a, b) => a.name.localeCompare(b.name)) };
  },
};

export const sessionsSection: Section = {
  template: 'sessions',
  async load({ user, session, services }: SectionContext) {
    const current = services.sessions.handleOf(session);
    const changed = user.credentialsChangedAt?.getTime() ?? 0;
    // Sessions signed in before the last change of credentials are over already (`users.findSignedIn`).
    const live = (await services.sessions.listForUser(user.id)).filter((s) => s.handle === current || (s.signedInAt ?? 0) >= changed);
    const sessions = live
      .map((s) => ({
        handle: s.handle,
        current: s.handle === current,
        signedIn: when(s.signedInAt ?? s.createdAt * 1000),
        lastSeen: s.lastSeenAt === null ? null : when(s.lastSeenAt * 1000),
        device: s.device ? userAgentSummary(s.device.userAgent) : 'Unknown browser',
        ip: s.device?.ip ?? null,
      }))
      // This browser first, then the most recent sign-in.
      .sort((a, b) => Number(b.current) - Number(a.current) || b.signedIn.iso.localeCompare(a.signedIn.iso));
    return { sessions, others: sessions.filter((s) => !s.current).length };
  },
};
