import t from 'tap';
import { buildTestApp } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';

t.test(`health and readiness (${backendName})`, async (t) => {
  const { app } = await buildTestApp(t);

  const live = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(live.statusCode, 200);
  t.same(live.json(), { status: 'ok' });

  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { status: 'ok', checks: { database: 'ok', code_store: 'ok' } });

  const missing = await app.inject({ method: 'GET', url: '/nope' });
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().error, 'not_found');
});
