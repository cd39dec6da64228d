/**
 * `GET/POST /device`: the verification page of the device authorization
 * grant (RFC 8628 §3.3). A signed-out person signs in first (`/login` and
 * back, `next=/device…`); then a form with input `user_code` (prefilled from
 * `verification_uri_complete`), then the consent page naming the client and
 * the code to compare with the device's (§5.4: remote phishing), with
 * `decision` allow/deny posting back here.
 *
 * Every post carries the session's CSRF token; the page gets the same
 * security headers (no frames) as the other pages. Typed codes are
 * throttled per address in the device flow; a wrong one gets the form again
 * with a message, too many get 429 with `Retry-After`.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { OAuthError } from '../errors.js';
import { amrOf } from '../oauth/acr.js';
import { formatUserCode, normalizeUserCode, VERIFICATION_PATH } from '../oauth/device-authorization.js';
import { describeScopes } from '../oauth/scope-descriptions.js';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { FORM_POST_RESPONSES } from './login.js';
import { checkedFormSession } from './page-form.js';
import { renderPage, throttledMessage, usePageErrors } from './pages.js';
import { loginThenReturnTo } from './return-path.js';
import { htmlPage, redirect } from './schemas.js';
import { ensureSession } from './session-cookie.js';

type DeviceServices = Pick<Services, 'config' | 'sessions' | 'users' | 'devices'>;

const WRONG_CODE = 'That code is not valid, has expired or was already used. Check the code your device shows and try again.';
const NOTHING_TO_GRANT = 'None of the permissions this device asks for can be granted to your account.';
const TITLE = 'Connect a device';

const deviceQuerySchema = {
  type: 'object',
  properties: { user_code: { type: 'string', maxLength: 64, description: 'The user code shown on the device (verification_uri_complete).' } },
} as const;

const deviceBodySchema = {
  type: 'object',
  properties: {
    user_code: { type: 'string', maxLength: 64 },
    csrf_token: { type: 'string', maxLength: 200 },
    decision: { type: 'string', enum: ['allow', 'deny'] },
  },
} as const;

/** The code as the form shows it again: formatted when it is one, else as typed (it is escaped). */
const shown = (typed: string | undefined) => {
  const code = normalizeUserCode(typed);
  return code === null ? (typed ?? '').slice(0, 32) : formatUserCode(code);
};

/** `/login?next=/device…`: back here after signing in, with the code kept when it looks like one. */
function signInFirst(reply: FastifyReply, typed: string | undefined): FastifyReply {
  const code = normalizeUserCode(typed);
  const back = code === null ? VERIFICATION_PATH : `${VERIFICATION_PATH}?user_code=${formatUserCode(code)}`;
  return reply.header('cache-control', 'no-store').redirect(loginThenReturnTo(back), 303);
}

export const deviceRoutes: FastifyPluginAsync<{ services: DeviceServices }> = async (app, { services }) => {
  const { config, devices } = services;
  usePageErrors(app, config);

  const form = (reply: FastifyReply, session: BrowserSession, user: User, view: { userCode?: string; error?: string; status?: number }) =>
    renderPage(
      reply,
      config,
      'device',
      { title: TITLE, username: user.username, csrfToken: session.csrfToken, userCode: view.userCode ?? '', error: view.error ?? null, outcome: null },
      { status: view.status ?? 200 },
    );

  /** Runs a throttled step; past the limit, `reply` is the form again with 429 and `Retry-After`. */
  async function guarded<T>(reply: FastifyReply, session: BrowserSession, user: User, typed: string | undefined, step: () => Promise<T>): Promise<{ value: T } | { reply: FastifyReply }> {
    try {
      return { value: await step() };
    } catch (err) {
      if (!(err instanceof OAuthError) || err.error !== 'too_many_requests' || err.retryAfter === undefined) throw err;
      const error = throttledMessage(reply, err.retryAfter, 'Too many wrong codes');
      return { reply: await form(reply, session, user, { userCode: shown(typed), error, status: 429 }) };
    }
  }

  app.get<{ Querystring: { user_code?: string } }>(
    VERIFICATION_PATH,
    {
      schema: {
        tags: ['browser'],
        summary: 'Device verification page (RFC 8628 §3.3, HTML): enter the code a device shows',
        produces: ['text/html'],
        querystring: deviceQuerySchema,
        response: { 200: htmlPage('HTML page.'), 303: redirect('To sign in first, and back.') },
      },
    },
    async (request, reply) => {
      const session = await ensureSession(request, reply, services.sessions, config);
      const user = await services.users.findSignedIn(session);
      if (!user) return signInFirst(reply, request.query.user_code);
      return form(reply, session, user, { userCode: shown(request.query.user_code) });
    },
  );

  app.post<{ Body: { user_code?: string; csrf_token?: string; decision?: 'allow' | 'deny' } }>(
    VERIFICATION_PATH,
    {
      schema: {
        tags: ['browser'],
        summary: 'Device verification (HTML form post): the code, then the decision',
        description: 'Form fields: user_code, csrf_token; then decision (allow or deny) from the consent page.',
        consumes: ['application/x-www-form-urlencoded'],
        body: deviceBodySchema,
        response: FORM_POST_RESPONSES,
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const session = await checkedFormSession(request, reply, services.sessions, config);
      if (!session) return reply;
      const user = await services.users.findSignedIn(session);
      if (!user) return signInFirst(reply, body.user_code);
      const typed = body.user_code;
      if (normalizeUserCode(typed) === null) return form(reply, session, user, { userCode: shown(typed), error: WRONG_CODE, status: 400 });

      if (body.decision !== undefined) {
        const decide = () => devices.decide(typed, user, { allow: body.decision === 'allow', authTime: session.authTime, amr: amrOf(session.amr), ip: request.ip });
        const result = await guarded(reply, session, user, typed, decide);
        if ('reply' in result) return result.reply;
        const outcome = result.value;
        if (outcome === null) return form(reply, session, user, { userCode: shown(typed), error: WRONG_CODE, status: 400 });
        return renderPage(reply, config, 'device', { title: outcome === 'approved' ? 'Device connected' : 'Request denied', outcome });
      }

      const result = await guarded(reply, session, user, typed, () => devices.find(typed, user, { amr: amrOf(session.amr), ip: request.ip }));
      if ('reply' in result) return result.reply;
      const found = result.value;
      if (found === null) return form(reply, session, user, { userCode: shown(typed), error: WRONG_CODE, status: 400 });
      if (found.scopes.length === 0) return form(reply, session, user, { userCode: found.userCode, error: NOTHING_TO_GRANT, status: 400 });
      return renderPage(reply, config, 'consent', {
        title: `Allow ${found.client.clientName}?`,
        clientName: found.client.clientName,
        username: user.username,
        scopes: describeScopes(found.scopes),
        resources: found.resources,
        unregistered: found.client.origin !== 'admin',
        documentHost: null,
        redirectHost: null,
        loopback: false,
        csrfToken: session.csrfToken,
        device: { userCode: found.userCode },
      });
    },
  );
};
