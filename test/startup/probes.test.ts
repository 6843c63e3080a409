// /ready answers for what requests can do (a transaction as the request role
// on the requests' connection), not only for a database that answers; and
// /login is served only where the GraphiQL it leads to is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, startInProcess, useInProcessServer } from '../support/in-process.ts';

describe(`/ready (${dbKind})`, () => {
  const server = useInProcessServer();

  it('answers 503 while the request role cannot read its tables, 200 again once it can', async () => {
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    const owner = server.db.unscopedClient;
    await owner.$executeRawUnsafe('REVOKE SELECT ON "user_credentials" FROM app_user');
    try {
      const res = await fetch(`${server.url}/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'unavailable', reason: 'request transactions fail' });
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      await owner.$executeRawUnsafe('GRANT SELECT ON "user_credentials" TO app_user');
    }
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
  });
});

describe(`/login (${dbKind})`, () => {
  let production: InProcessServer;
  const development = useInProcessServer();
  beforeAll(async () => {
    // Its own database; the configuration a production start has by default (GraphiQL off).
    production = await startInProcess({ env: { NODE_ENV: 'production', GRAPHIQL: 'false' } });
  });
  afterAll(async () => {
    await production?.close();
  });

  it('is served with GraphiQL (development), not without it (production default)', async () => {
    const page = await fetch(`${development.url}/login`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<a href="/graphql">GraphiQL</a>');
    expect((await fetch(`${production.url}/graphql`, { headers: { accept: 'text/html' } })).status).not.toBe(200);
    expect((await fetch(`${production.url}/login`)).status).toBe(404);
  });
});
