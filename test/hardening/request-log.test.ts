// One structured log line per request, with what an operator needs and no
// credentials of any kind.
import { beforeAll, describe, expect, it } from 'vitest';
import { gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useServer } from '../support/server.ts';

const server = useServer({ env: { LOG_LEVEL: 'debug' } });
let user: Session;

const lines = () =>
  server.logs.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, any>];
    } catch {
      return [];
    }
  });

beforeAll(async () => {
  user = await signUp(server.url);
});

describe(`request log (${dbKind})`, () => {
  it('writes one line per GraphQL request: operation, user, outcome, status, duration', async () => {
    const before = lines().length;
    await gql(server.url, 'mutation SetUp { getOrCreateAccount { created } }', undefined, user);
    await gql(server.url, 'mutation Bad { createAccount(input: { accountName: "" }) { id } }', undefined, user);
    await gql(server.url, '{ accounts { id } }');
    await fetch(`${server.url}/health`);
    // pino writes asynchronously; give the lines a moment to arrive.
    await new Promise((r) => setTimeout(r, 200));
    const requests = lines()
      .slice(before)
      .filter((l) => l.req?.path === '/graphql' || l.req?.path === '/health');
    expect(requests).toHaveLength(3);
    expect(requests[0]).toMatchObject({
      level: 30,
      req: { method: 'POST', path: '/graphql' },
      res: { status: 200 },
      operation: 'mutation SetUp',
      userId: user.user.id,
      outcome: 'ok',
    });
    expect(typeof requests[0]?.responseTime).toBe('number');
    expect(typeof requests[0]?.reqId).toBe('string');
    expect(requests[1]).toMatchObject({ operation: 'mutation Bad', outcome: 'BAD_USER_INPUT' });
    expect(requests[2]).toMatchObject({ res: { status: 401 }, outcome: 'UNAUTHENTICATED' });
    expect(requests[2]?.userId).toBeUndefined();
  });

  it('logs auth requests without passwords, tokens, cookies or headers', async () => {
    const other = await signUp(server.url, { password: 'PASSWORD-NEVER-LOGGED-123' });
    await gql(server.url, '{ viewer { id } }', undefined, { cookie: other.cookie });
    await new Promise((r) => setTimeout(r, 200));
    const all = server.logs.join('\n');
    expect(all).toContain('/api/auth/sign-up/email');
    for (const secret of [other.password, other.token, other.token.split('.')[0] as string, other.cookie, user.token]) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/authorization|"cookie"|set-cookie/i);
  });
});
