/**
 * The admin console's upstream identity providers ("Sign in with …"): the
 * list with each redirect URI to register at the provider, a form to add or
 * change one (the client secret is write-only: never shown, left empty to
 * keep it), and delete.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { OAuthError } from '../../errors.js';
import { DEFAULT_UPSTREAM_SCOPES, type IdentityProvider } from '../../identity-providers/providers.js';
import { changeContextOf, CONSOLE, csrf, csrfOnly, type ConsoleAdmin, type ConsoleContext } from './context.js';

const PAGE = `${CONSOLE}/identity-providers`;

const body = {
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 63 },
    issuer: { type: 'string', maxLength: 500 },
    client_id: { type: 'string', maxLength: 255 },
    client_secret: { type: 'string', maxLength: 1000 },
    scopes: { type: 'string', maxLength: 2000 },
    display_name: { type: 'string', maxLength: 100 },
    enabled: { type: 'string', maxLength: 10 },
    csrf_token: csrf,
  },
} as const;
const params = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 63 } } } as const;

interface Body {
  id?: string;
  issuer?: string;
  client_id?: string;
  client_secret?: string;
  scopes?: string;
  display_name?: string;
  enabled?: string;
  csrf_token?: string;
}

interface FormValues {
  id: string;
  issuer: string;
  client_id: string;
  scopes: string;
  display_name: string;
  enabled: boolean;
}

const valuesOf = (p: IdentityProvider): FormValues => ({ id: p.id, issuer: p.issuer, client_id: p.clientId, scopes: p.scopes, display_name: p.displayName, enabled: p.enabled });
const valuesFrom = (b: Body): FormValues => ({
  id: (b.id ?? '').trim(),
  issuer: (b.issuer ?? '').trim(),
  client_id: (b.client_id ?? '').trim(),
  scopes: (b.scopes ?? '').trim() || DEFAULT_UPSTREAM_SCOPES,
  display_name: (b.display_name ?? '').trim(),
  enabled: b.enabled === 'on',
});

export function registerIdentityProviderPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const { services, render, navModel, takeNotice, setNotice, guarded, admin } = ctx;
  const providers = services.identityProviders;

  const form = (reply: FastifyReply, status: number, a: ConsoleAdmin, data: { provider: IdentityProvider | null; values: FormValues; error?: string | null; notice?: string | null }) =>
    render(reply, status, 'identity-provider-form', {
      title: data.provider ? `Identity provider ${data.provider.displayName}` : 'Add an identity provider',
      admin: navModel(a),
      provider: data.provider,
      values: data.values,
      error: data.error ?? null,
      notice: data.notice ?? null,
      redirectUriPattern: providers.redirectUriOf('<id>'),
    });

  app.get(PAGE, guarded, async (request, reply) => {
    const a = admin(request);
    return render(reply, 200, 'identity-providers', { title: 'Identity providers', admin: navModel(a), notice: await takeNotice(a), providers: await providers.list() });
  });

  app.get(`${PAGE}/new`, guarded, async (request, reply) =>
    form(reply, 200, admin(request), { provider: null, values: { id: '', issuer: '', client_id: '', scopes: DEFAULT_UPSTREAM_SCOPES, display_name: '', enabled: true } }),
  );

  app.post<{ Body: Body }>(PAGE, { ...guarded, schema: { body } }, async (request, reply) => {
    const a = admin(request);
    const values = valuesFrom(request.body ?? {});
    let created: IdentityProvider;
    try {
      created = await providers.create(
        { id: values.id, issuer: values.issuer, clientId: values.client_id, clientSecret: request.body?.client_secret || undefined, scopes: values.scopes, displayName: values.display_name, enabled: values.enabled },
        changeContextOf(request),
      );
    } catch (err) {
      if (err instanceof OAuthError && (err.status === 400 || err.status === 409)) return form(reply, 400, a, { provider: null, values, error: err.description });
      throw err;
    }
    await setNotice(a, `Added. Register ${created.redirectUri} as a redirect URI at the provider.`);
    return reply.code(303).redirect(`${PAGE}/${created.id}`);
  });

  app.get<{ Params: { id: string } }>(`${PAGE}/:id`, { ...guarded, schema: { params } }, async (request, reply) => {
    const a = admin(request);
    const provider = await providers.get(request.params.id);
    return form(reply, 200, a, { provider, values: valuesOf(provider), notice: await takeNotice(a) });
  });

  app.post<{ Params: { id: string }; Body: Body }>(`${PAGE}/:id`, { ...guarded, schema: { params, body } }, async (request, reply) => {
    const a = admin(request);
    const provider = await providers.get(request.params.id);
    const values = { ...valuesFrom(request.body ?? {}), id: provider.id };
    try {
      await providers.update(
        provider.id,
        // An empty secret field keeps the stored secret (it is never shown, so it cannot be prefilled).
        { issuer: values.issuer, clientId: values.client_id, clientSecret: request.body?.client_secret || undefined, scopes: values.scopes, displayName: values.display_name, enabled: values.enabled },
        changeContextOf(request),
      );
    } catch (err) {
      if (err instanceof OAuthError && err.status === 400) return form(reply, 400, a, { provider, values, error: err.description });
      throw err;
    }
    await setNotice(a, 'Changes saved.');
    return reply.code(303).redirect(`${PAGE}/${provider.id}`);
  });

  app.post<{ Params: { id: string } }>(`${PAGE}/:id/delete`, { ...guarded, schema: { params, body: csrfOnly } }, async (request, reply) => {
    const a = admin(request);
    const provider = await providers.get(request.params.id);
    await providers.delete(provider.id, changeContextOf(request));
    await setNotice(a, `Identity provider "${provider.displayName}" (${provider.id}) was deleted.`);
    return reply.code(303).redirect(PAGE);
  });
}
