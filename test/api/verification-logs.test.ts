// The broker calls of verifyCredential as the server process logs them (a
// real process, its stdout and stderr captured, logging at its most verbose):
// one line per call with environment, status, duration and Alpaca's
// X-Request-ID; and no key, in any form, in any log line or response.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaStandIns, type StandInBehaviour, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { eventually, jsonLines } from '../support/poll.ts';
import { startServer, type TestServer } from '../support/server.ts';

let brokers: AlpacaStandIns;
let server: TestServer;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  server = await startServer({ env: { ...brokers.env, LOG_LEVEL: 'trace', BROKER_TIMEOUT_MS: '2000' } });
});
afterAll(async () => {
  await server?.close();
  await brokers?.close();
});

function forms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  return [value, bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), JSON.stringify(value)];
}

interface BrokerLine {
  msg: string;
  component: string;
  broker: string;
  environment: string;
  status: number | null;
  outcome: string;
  durationMs: number;
  requestId: string | null;
}

describe(`broker call logs (${dbKind})`, () => {
  it('logs each broker call once, with environment, status, duration and X-Request-ID, and never a key', async () => {
    const session = await signUp(server.url);
    const account = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
    const accountId = account.body.data?.getOrCreateAccount.account.id;
    const secrets: string[] = [];
    const responses: string[] = [];

    const cases: { prefix: string; paper?: StandInBehaviour; live?: StandInBehaviour }[] = [
      { prefix: 'PK', paper: { kind: 'account', secretKey: '' } },
      { prefix: 'PK', live: { kind: 'account', secretKey: '' } },
      { prefix: 'AK' },
      { prefix: 'PK', paper: { kind: 'status', status: 503 } },
      { prefix: 'PK', paper: { kind: 'status', status: 429 } },
      { prefix: 'AK', live: { kind: 'garbage' } },
      { prefix: 'PK', paper: { kind: 'hang' } },
      { prefix: 'PK', paper: { kind: 'reset' } },
    ];
    for (const { prefix, paper, live } of cases) {
      const apiKey = `${prefix}LEAKKEY${randomUUID().replaceAll('-', '').toUpperCase()}`;
      const secretKey = `LEAK-secret-${randomUUID()}`;
      secrets.push(apiKey, secretKey);
      const withSecret = (b?: StandInBehaviour) => (b?.kind === 'account' ? { ...b, secretKey } : b);
      if (paper) brokers.paper.setKey(apiKey, withSecret(paper) as StandInBehaviour);
      if (live) brokers.live.setKey(apiKey, withSecret(live) as StandInBehaviour);
      const stored = await gql(
        server.url,
        'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }',
        { input: { accountId, credentialType: 'alpaca', apiKey, secretKey } },
        session,
      );
      responses.push(stored.text);
      const res = await gql(
        server.url,
        'mutation($id: UUID!) { verifyCredential(id: $id) { id apiKeyHint verification { status environment brokerAccountNumber brokerAccountStatus message } } }',
        { id: stored.body.data?.storeCredential.id },
        session,
      );
      expect(res.body.errors).toBeUndefined();
      responses.push(res.text);
    }
    brokers.paper.release();

    const requests = [
      ...brokers.paper.requests.map((r) => ({ ...r, environment: 'paper' })),
      ...brokers.live.requests.map((r) => ({ ...r, environment: 'live' })),
    ];
    expect(requests.length).toBe(10);
    // The lines reach us through a pipe: wait for them, then for the request
    // line of one more request, written after them all (any extra broker line
    // would be in by then), instead of sleeping for a guessed time.
    const brokerLinesNow = () => jsonLines(server.logs).filter((l) => l.msg === 'broker call') as BrokerLine[];
    await eventually('a broker call line per broker request', () => brokerLinesNow().length >= requests.length);
    await gql(server.url, 'query LogMarker { __typename }');
    await eventually('the marker request line', () =>
      jsonLines(server.logs).some((l) => l.operation === 'query LogMarker'),
    );
    const brokerLines = brokerLinesNow();
    expect(brokerLines.length).toBe(requests.length);
    for (const line of brokerLines) {
      expect(line).toMatchObject({ component: 'broker', broker: 'alpaca' });
      expect(['paper', 'live']).toContain(line.environment);
      expect(typeof line.durationMs).toBe('number');
    }
    // Every answer that came back is logged with its X-Request-ID and status.
    const answered = brokerLines.filter((l) => l.requestId !== null);
    expect(answered.length).toBe(8);
    for (const line of answered) {
      const request = requests.find((r) => r.requestId === line.requestId);
      expect(request?.environment).toBe(line.environment);
      expect(line.status).toEqual(expect.any(Number));
    }
    expect(brokerLines.map((l) => l.status).sort()).toEqual([200, 200, 200, 401, 401, 401, 429, 503, null, null]);
    expect(brokerLines.filter((l) => l.outcome === 'timeout')).toHaveLength(1);
    expect(brokerLines.filter((l) => l.outcome === 'connection')).toHaveLength(1);

    const everything = [...server.logs, ...responses].join('\n');
    for (const secret of secrets) {
      for (const form of forms(secret)) expect(everything).not.toContain(form);
    }
    expect(everything).not.toContain('LEAK');
    // The secrets did reach the broker stand-in, so the search looked for the right values.
    expect(requests.filter((r) => secrets.includes(r.secretKey ?? '')).length).toBe(10);
  });
});
