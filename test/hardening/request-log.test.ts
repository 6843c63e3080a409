// One structured log line per request, with what an operator needs and no
// credentials of any kind.
import { beforeAll, describe, expect, it } from 'vitest';
import { gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { eventually, jsonLines } from '../support/poll.ts';
import { useServer } from '../support/server.ts';

const server = useServer({ env: { LOG_LEVEL: 'debug' } });
let user: Session;

const lines = () => jsonLines(server.logs);

/**
 * The log reaches us through a pipe, after the response. One process writes
 * it in order, so once the line of a request sent last has arrived, so has
 * every line before it: no guessed sleep.
 */
async function flushed(): Promise<void> {
  const marker = `Marker${crypto.randomUUID().replaceAll('-', '')}`;
  await gql(server.url, `query ${marker} { __typename }`);
  await eventually(`the request log line of ${marker}`, () => lines().some((l) => l.operation === `query ${marker}`));
}

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
    const since = () =>
      lines()
        .slice(before)
        .filter((l) => (l.req?.path === '/graphql' || l.req?.path === '/health') && !/Marker/.test(l.operation));
    await eventually('the three GraphQL request lines', () => since().length >= 3);
    // Then a line sent after them all: any extra line (a probe, a duplicate) is in by now.
    await flushed();
    const requests = since();
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
    await flushed();
    const all = server.logs.join('\n');
    expect(all).toContain('/api/auth/sign-up/email');
    for (const secret of [other.password, other.token, other.token.split('.')[0] as string, other.cookie, user.token]) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/authorization|"cookie"|set-cookie/i);
  });
});
