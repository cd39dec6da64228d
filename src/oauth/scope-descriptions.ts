/**
 * Scopes in words, for the consent page. A scope configured in `SCOPES` that
 * is not listed here is still shown, with a generic sentence naming it.
 */

const DESCRIPTIONS: Record<string, { title: string; detail: string }> = {
  openid: { title: 'Sign you in', detail: 'Confirm who you are using your account here (your user ID).' },
  profile: { title: 'See your profile', detail: 'Your username and basic profile information.' },
  email: { title: 'See your email address', detail: 'The email address on your account, if you gave one.' },
  offline_access: { title: 'Stay connected', detail: 'Keep access when you are not using the app, until you revoke it.' },
  'api:read': { title: 'Read your data', detail: 'Read data through the API on your behalf.' },
  'api:write': { title: 'Change your data', detail: 'Create, change and delete data through the API on your behalf.' },
  admin: { title: 'Administer this server', detail: 'Manage its clients and users through the admin API, as you. Allow this only for a tool you run yourself.' },
};

export interface ScopeDescription {
  scope: string;
  title: string;
  detail: string;
}

/** Each scope with a title and a sentence; order kept. */
export function describeScopes(scopes: readonly string[]): ScopeDescription[] {
  return scopes.map((scope) => {
    const known = DESCRIPTIONS[scope];
    return known ? { scope, ...known } : { scope, title: `Use the “${scope}” permission`, detail: 'Access granted by this permission.' };
  });
}
