/**
 * Self-registration (SPEC `GET,POST /register`), while `REGISTRATION=open`.
 *
 * Two dialects on one URL, chosen by the request's Content-Type:
 * - The HTML form (`application/x-www-form-urlencoded`, what the form
 *   posts): 201 page, or the form again with the message next to the field
 *   and what was typed kept (never the password). The form carries the
 *   browser session's CSRF token (synchronizer pattern) and a POST without
 *   the right one is refused.
 * - JSON for anything else: a JSON body (`application/json`) gets 201
 *   `{id, username, email}`; errors as `{error, error_description}` (400,
 *   403 closed, 409 taken, 413, 429), and a body of any other type (a
 *   `fetch` of a string defaults to `text/plain`) a JSON 415, not the form.
 *   A JSON POST needs no token: browsers cannot send `application/json`
 *   cross-site without a CORS preflight, which is never granted here.
 *
 * Every POST counts against the caller's IP in the shared failed-attempt
 * store (`users.countRegistrationAttempt`: MAX_FAILED_ATTEMPTS per FAILED_ATTEMPT_WINDOW),
 * so one address cannot mass-create accounts or burn CPU on password hashes;
 * the count is shared by every instance.
 */
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.js';
import type { Services } from '../services.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, PASSWORD_RULE, PasswordPolicyError } from '../users/password-policy.js';
import { USERNAME_PATTERN, type UserService } from '../users/service.js';
import { logError, sendJsonError, toOAuthError } from './errors.js';
import { checkedFormSession } from './page-form.js';
import { htmlPage, jsonError, jsonOrHtmlError } from './schemas.js';
import { ensureSession } from './session-cookie.js';

interface RegisterBody {
  username?: string;
  password?: string;
  email?: string | null;
  csrf_token?: string;
}

type Field = 'username' | 'password' | 'email' | 'form';

interface FormModel {
  title: string;
  csrfToken: string;
  values: { username: string; email: string };
  errors: Partial<Record<Field, string>>;
  closed: boolean;
  created: { username: string; verificationSentTo: string | null } | null;
  /** REQUIRE_EMAIL_VERIFICATION: the address is required and gets a verification link. */
  emailRequired: boolean;
  minPasswordLength: number;
  /** The password rule, shown next to the field (SPEC "with the rule shown on the form"). */
  passwordRule: string;
}

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  // The form always sends both (empty when left blank: checkFields explains those beside the field).
  required: ['username', 'password'],
  properties: {
    username: { type: 'string', maxLength: 200 },
    password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH },
    email: { type: ['string', 'null'], maxLength: 254 },
    csrf_token: { type: 'string', maxLength: 200 },
  },
} as const;

const createdSchema = {
  type: 'object',
  required: ['id', 'username', 'email'],
  properties: { id: { type: 'string' }, username: { type: 'string' }, email: { type: ['string', 'null'] } },
} as const;


const USERNAME = new RegExp(USERNAME_PATTERN);
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,253}$/;

const CLOSED = 'Self-registration is closed on this server; ask an administrator for an account.';

/**
 * Field-by-field check, so the form can show each message next to its input;
 * the password against the server's password rule (`users.checkNewPassword`).
 */
function checkFields(body: RegisterBody, users: Pick<UserService, 'checkNewPassword'>, emailRequired: boolean): Partial<Record<Field, string>> {
  const errors: Partial<Record<Field, string>> = {};
  const username = body.username ?? '';
  if (username === '') errors.username = 'Enter a username.';
  else if (!USERNAME.test(username)) errors.username = 'Use 1 to 64 letters, digits and . _ @ -, starting with a letter or digit.';
  const email = body.email ?? '';
  if (email === '' && emailRequired) errors.email = 'Enter your email address: a link to verify it is sent there.';
  else if (email !== '' && !EMAIL.test(email)) errors.email = emailRequired ? 'Enter a valid email address.' : 'Enter a valid email address, or leave it empty.';
  const password = body.password ?? '';
  if (password === '') errors.password = 'Enter a password.';
  else {
    try {
      users.checkNewPassword(password, { username, email });
    } catch (err) {
      if (!(err instanceof PasswordPolicyError)) throw err;
      errors.password = err.problem;
    }
  }
  return errors;
}

/** A post of the HTML form, answered with HTML; anything else is answered with JSON. */
function isFormPost(request: FastifyRequest): boolean {
  return request.method === 'POST' && (request.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
}

export const signUpRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'users' | 'sessions' | 'emailVerification'> }> = async (app, { services }) => {
  const { config } = services;
  const emailRequired = services.emailVerification !== null;

  // A JSON body only as application/json (see above); text/plain is refused (415).
  app.removeContentTypeParser('text/plain');

  const model = (csrfToken: string, extra: Partial<FormModel> = {}): FormModel => ({
    title: 'Create an account',
    csrfToken,
    values: { username: '', email: '' },
    errors: {},
    closed: false,
    created: null,
    emailRequired,
    minPasswordLength: MIN_PASSWORD_LENGTH,
    passwordRule: PASSWORD_RULE,
    ...extra,
  });

  const page = (reply: FastifyReply, status: number, data: FormModel) =>
    reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').view('register', data);

  /** The form again, with a fresh session if needed, the typed values and a message. */
  async function formAgain(request: FastifyRequest, reply: FastifyReply, status: number, body: RegisterBody, errors: FormModel['errors']) {
    const session = await ensureSession(request, reply, services.sessions, config);
    return page(reply, status, model(session.csrfToken, { values: { username: body.username ?? '', email: body.email ?? '' }, errors }));
  }

  // Errors of this scope (schema validation, 413, 415, 429, 503) in the caller's dialect.
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const err = toOAuthError(error);
    logError(request, err);
    if (!isFormPost(request)) return sendJsonError(reply, err);
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    try {
      const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as RegisterBody;
      const safe = { username: typeof body.username === 'string' ? body.username : '', email: typeof body.email === 'string' ? body.email : '' };
      return await formAgain(request, reply, err.status, safe, { form: err.description });
    } catch {
      return sendJsonError(reply, err);
    }
  });

  app.get(
    '/register',
    { schema: { tags: ['browser'], summary: 'Self-registration form (HTML)', produces: ['text/html'], response: { 200: htmlPage('The form.'), 403: htmlPage('Registration is closed (REGISTRATION=closed).') } } },
    async (request, reply) => {
      if (config.registration === 'closed') return page(reply, 403, model('', { closed: true, title: 'Registration is closed' }));
      const session = await ensureSession(request, reply, services.sessions, config);
      return page(reply, 200, model(session.csrfToken));
    },
  );

  app.post<{ Body: RegisterBody }>(
    '/register',
    {
      schema: {
        tags: ['browser'],
        summary: 'Register a user (JSON, or the HTML form with its CSRF token)',
        description: `JSON: {"username", "password", "email"?} → 201 {"id", "username", "email"}. Form fields: username, password, email, csrf_token. 403 when REGISTRATION=closed.`,
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: bodySchema,
        response: {
          201: { description: 'Created: {id, username, email} (JSON), or the page saying so (the form).', content: { 'application/json': { schema: createdSchema }, 'text/html': { schema: { type: 'string' } } } },
          400: jsonOrHtmlError('A field is missing or refused (the form: again, the message beside the field).'),
          403: jsonOrHtmlError('Registration is closed; or (the form) the post lacks this session\'s CSRF token.'),
          409: jsonOrHtmlError('The username is taken.'),
          413: jsonOrHtmlError('The body is larger than BODY_LIMIT.'),
          415: jsonError('A body that is neither JSON nor the form (always JSON).'),
          429: jsonOrHtmlError('Too many registrations from this address (Retry-After).'),
        },
      },
    },
    async (request, reply) => {
      const json = !isFormPost(request);
      const body = request.body ?? {};
      if (config.registration === 'closed') {
        if (json) return sendJsonError(reply, new OAuthError('forbidden', CLOSED));
        return page(reply, 403, model('', { closed: true, title: 'Registration is closed' }));
      }

      await services.users.countRegistrationAttempt(request.ip);

      if (!json) {
        // No session (expired, cookies blocked) or a forged post: the form again with a fresh token, what was typed kept.
        const expired = () => formAgain(request, reply, 403, body, { form: 'This form has expired. Check your details and submit it again.' });
        if (!(await checkedFormSession(request, reply, services.sessions, config, expired))) return reply;
      }

      const errors = checkFields(body, services.users, emailRequired);
      if (Object.keys(errors).length > 0) {
        // The form shows the rule beside the field; a JSON caller gets it in the message.
        const text = [...Object.values(errors), ...(errors.password ? [PASSWORD_RULE] : [])].join(' ');
        if (json) return sendJsonError(reply, new OAuthError('invalid_request', text));
        return formAgain(request, reply, 400, body, errors);
      }

      let user;
      try {
        user = await services.users.create({ username: body.username!, password: body.password!, email: body.email || null }, { actor: { type: 'user', id: null, username: body.username! }, ip: request.ip });
      } catch (err) {
        if (!(err instanceof OAuthError) || json) throw err;
        if (err.error === 'conflict') return formAgain(request, reply, 409, body, { username: 'This username is taken. Choose another one.' });
        // What is wrong goes next to the field; the rule is already shown under it.
        if (err instanceof PasswordPolicyError) return formAgain(request, reply, 400, body, { password: err.problem });
        if (err.error === 'invalid_request') return formAgain(request, reply, 400, body, { form: err.description });
        throw err;
      }
      // The verification link goes out after the answer (`users/mail.ts`).
      if (services.emailVerification && user.email !== null) await services.emailVerification.send(user);
      if (json) return reply.code(201).header('cache-control', 'no-store').send({ id: user.id, username: user.username, email: user.email });
      const created = { username: user.username, verificationSentTo: services.emailVerification ? user.email : null };
      return page(reply, 201, model('', { created, title: 'Account created' }));
    },
  );
};
