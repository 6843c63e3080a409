// What the engine API holds to beyond the happy path (docs/engines.md): one
// credential however its id is cased; what is checked when a request arrives
// is checked again where its event is written (a client revoked or a token
// expired while the body arrived), within a body deadline; Alpaca's answer in
// the trail, which the request role can add but never change; a bounded
// number of live tokens per client; a revoked client's grants revoked with
// their events; the grant list in one statement, under a limit of its own;
// answers passed through as Alpaca encoded them, never inflated.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeEngineClient } from '../../src/engine/clients.ts';
import { GRANTS_LIST_RATE_LIMIT } from '../../src/engine/grant-list.ts';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import {
  accessToken,
  type EngineClientCredentials,
  engineRequest,
  grantedCredential,
  marketOrder,
  owner,
  proxyPath,
  received,
  registerClient,
  requestToken,
  until,
} from '../support/engine.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { countStatements } from '../support/statement-counter.ts';

const LIMIT = 5;
const TOKENS = 3;

let brokers: AlpacaStandIns;
let server: InProcessServer;
let client: EngineClientCredentials;
let token: string;
let recording: string[] | undefined;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  server = await startInProcess({
    env: { ...brokers.env, ENGINE_RATE_LIMIT: String(LIMIT), ENGINE_TOKENS_PER_CLIENT: String(TOKENS) },
    instrument: countStatements((sql) => recording?.push(sql)),
  });
  client = await registerClient(server.db, 'hardening');
  token = await accessToken(server.url, client);
});
afterAll(async () => {
  await brokers?.close();
  await server?.close();
});

const call = (method: string, path: string, options: Parameters<typeof engineRequest>[3] = {}) =>
  engineRequest(server.url, method, path, { token, ...options });

const EVENTS = `query($id: UUID!) { credentialEvents(credentialId: $id, first: 100) {
  edges { node { action credentialId engineClientId engineRequest engineResponse { status brokerRequestId } } } } }`;

async function events(who: Awaited<ReturnType<typeof owner>>, id: string) {
  const res = await gql(server.url, EVENTS, { id }, who.session);
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.credentialEvents.edges.map((e: { node: unknown }) => e.node) as {
    action: string;
    credentialId: string;
    engineRequest: string | null;
    engineResponse: { status: number; brokerRequestId: string | null } | null;
  }[];
}

/** A case variant of a UUID: the hex letters flipped by a pattern of its own. */
function variant(id: string, n: number): string {
  let i = 0;
  return [...id]
    .map((c) => (/[a-f]/i.test(c) ? ((n >> (i++ % 8)) & 1 ? c.toUpperCase() : c.toLowerCase()) : c))
    .join('');
}

/**
 * A request whose headers go out at once and whose body is held until
 * `finish` sends it (or never, when `abort` destroys the socket instead).
 */
function heldRequest(path: string, body: string, bearer = token) {
  const { hostname, port } = new URL(server.url);
  let answer: (res: { status: number; json: any }) => void = () => {};
  const answered = new Promise<{ status: number; json: any }>((resolve) => {
    answer = resolve;
  });
  const req = http.request(
    {
      hostname,
      port,
      method: 'POST',
      path,
      agent: false,
      headers: {
        authorization: `Bearer ${bearer}`,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
    },
    (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        answer({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined });
      });
    },
  );
  req.on('error', () => {});
  req.flushHeaders();
  req.write(body.slice(0, 5));
  return {
    answered,
    finish: () => req.end(body.slice(5)),
    abort: () => req.destroy(),
  };
}

const order = () => marketOrder();

describe(`engine hardening (${dbKind})`, () => {
  it('counts one credential once however its id is cased: the limit, the events, the answers', async () => {
    const { who, credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    const before = received(brokers.paper, credential.apiKey).length;
    const variants = Array.from({ length: 3 * LIMIT }, (_, n) => variant(credential.id, n + 1));
    expect(new Set(variants).size).toBeGreaterThan(LIMIT);
    const answers = await Promise.all(variants.map((id) => call('GET', proxyPath(id, 'v2/account'))));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(LIMIT);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(2 * LIMIT);
    expect(received(brokers.paper, credential.apiKey).length - before).toBe(LIMIT);
    const trail = (await events(who, credential.id)).filter((e) => e.action === 'ENGINE_REQUEST');
    expect(trail).toHaveLength(LIMIT);
    for (const event of trail) expect(event.credentialId).toBe(credential.id);
    // Someone else's credential id, upper-cased, is as absent as ever.
    const theirs = await owner(server.url);
    expect((await call('GET', proxyPath(theirs.accountId.toUpperCase(), 'v2/account'))).status).toBe(404);
  });

  it('re-checks the client where the event is written: revoked while the body arrived, nothing is forwarded', async () => {
    const revoked = await registerClient(server.db, 'revoked in flight');
    const revokedToken = await accessToken(server.url, revoked);
    const { credential } = await grantedCredential(server.url, brokers.paper, revoked.clientId);
    const before = brokers.paper.counts(credential.apiKey).changes;
    const held = heldRequest(proxyPath(credential.id, 'v2/orders'), JSON.stringify(order()), revokedToken);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await revokeEngineClient(server.db, revoked.clientId);
    held.finish();
    const res = await held.answered;
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('UNAUTHENTICATED');
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(before);
  });

  it('re-checks the token where the event is written: expired while the body arrived, nothing is forwarded', async () => {
    const shortLived = await startInProcess({
      env: { ...brokers.env, ENGINE_TOKEN_TTL_SECONDS: '1' },
      database: dbKind === 'postgres' ? server.testDb : undefined,
    });
    try {
      const engine = await registerClient(shortLived.db, 'short tokens');
      const expiring = await accessToken(shortLived.url, engine);
      const { credential } = await grantedCredential(shortLived.url, brokers.paper, engine.clientId);
      const { hostname, port } = new URL(shortLived.url);
      const body = JSON.stringify(order());
      const res = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            hostname,
            port,
            method: 'POST',
            path: proxyPath(credential.id, 'v2/orders'),
            agent: false,
            headers: {
              authorization: `Bearer ${expiring}`,
              'content-type': 'application/json',
              'content-length': String(body.length),
            },
          },
          (answer) => {
            answer.resume();
            resolve(answer.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.flushHeaders();
        setTimeout(() => req.end(body), 1500);
      });
      expect(res).toBe(401);
      expect(brokers.paper.counts(credential.apiKey).changes).toBe(0);
    } finally {
      await shortLived.close();
    }
  });

  it(`gives the body 10 s, then answers 408 REQUEST_TIMEOUT and forwards nothing`, async () => {
    const { credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    const started = Date.now();
    const held = heldRequest(proxyPath(credential.id, 'v2/orders'), JSON.stringify(order()));
    const res = await held.answered;
    expect(res.status).toBe(408);
    expect(res.json.error.code).toBe('REQUEST_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(0);
    held.abort();
  }, 30_000);

  it('logs a client that closes its connection mid-body as a client abort, not as a failure', async () => {
    const { credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    const from = server.logs.length;
    const held = heldRequest(proxyPath(credential.id, 'v2/orders'), JSON.stringify(order()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    held.abort();
    await until(() => server.logs.slice(from).some((l) => l.includes('"engine request"')));
    const lines = server.logs.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.msg === 'engine request');
    expect(line).toMatchObject({ outcome: 'CLIENT_CLOSED', status: 499 });
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(0);
  });

  it('records Alpaca’s status and X-Request-ID beside each forwarded request, null when nothing came back', async () => {
    const { who, credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    const placed = order();
    const accepted = await call('POST', proxyPath(credential.id, 'v2/orders'), { body: JSON.stringify(placed) });
    expect(accepted.status).toBe(200);
    // The same client_order_id again: Alpaca refuses it (422).
    const refused = await call('POST', proxyPath(credential.id, 'v2/orders'), { body: JSON.stringify(placed) });
    expect(refused.status).toBe(422);
    const trail = (await events(who, credential.id)).filter((e) => e.action === 'ENGINE_REQUEST');
    expect(trail.map((e) => e.engineResponse)).toEqual([
      { status: 422, brokerRequestId: refused.headers['x-request-id'] },
      { status: 200, brokerRequestId: accepted.headers['x-request-id'] },
    ]);
  });

  it('keeps the trail append-only for the request role: an answer is added once, never changed or removed', async () => {
    const { who, credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    expect((await call('GET', proxyPath(credential.id, 'v2/clock'))).status).toBe(200);
    const userId = who.session.user.id;
    const [row] = await server.db.withUser(
      userId,
      (tx) => tx.$queryRaw<{ eventId: string }[]>`SELECT event_id::text AS "eventId" FROM engine_responses LIMIT 1`,
    );
    expect(row?.eventId).toMatch(/^[0-9a-f-]{36}$/);
    const attempts = [
      (tx: any) => tx.$executeRaw`UPDATE engine_responses SET status = 200`,
      (tx: any) => tx.$executeRaw`DELETE FROM engine_responses`,
      (tx: any) =>
        tx.$executeRaw`INSERT INTO engine_responses (event_id, user_id, status) VALUES (${row?.eventId}::uuid, ${userId}, 200)`,
    ];
    for (const attempt of attempts) await expect(server.db.withUser(userId, attempt)).rejects.toThrow();
  });

  it(`holds at most ENGINE_TOKENS_PER_CLIENT (${TOKENS}) live tokens per client: a new one ends the oldest`, async () => {
    const many = await registerClient(server.db, 'many tokens');
    const tokens: string[] = [];
    for (let i = 0; i < 2 * TOKENS; i++) tokens.push(await accessToken(server.url, many));
    const grants = async (t: string) =>
      (await engineRequest(server.url, 'GET', '/engine/v1/grants', { token: t })).status;
    expect(await Promise.all(tokens.map(grants))).toEqual([...Array(TOKENS).fill(401), ...Array(TOKENS).fill(200)]);
    // At once, too: the client's issuances take turns.
    const burst = await Promise.all(Array.from({ length: 30 }, () => requestToken(server.url, many)));
    expect(burst.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    const live = await server.db.unscopedClient.engineToken.count({
      where: { clientId: many.clientId, expiresAt: { gt: new Date() } },
    });
    expect(live).toBe(TOKENS);
  });

  it('revokes every grant of a revoked client, each with ACCESS_REVOKED in its owner’s trail', async () => {
    const leaving = await registerClient(server.db, 'leaving');
    const first = await grantedCredential(server.url, brokers.paper, leaving.clientId);
    const second = await grantedCredential(server.url, brokers.paper, leaving.clientId);
    const revoked = await revokeEngineClient(server.db, leaving.clientId);
    expect(revoked).toMatchObject({ id: leaving.clientId, grantsRevoked: 2, revokedAt: expect.any(Date) });
    for (const { who, credential, grantId } of [first, second]) {
      const res = await gql(
        server.url,
        'query($id: UUID!) { credential(id: $id) { engineGrants { id isActive revokedAt } } }',
        { id: credential.id },
        who.session,
      );
      expect(res.body.data?.credential.engineGrants).toEqual([
        { id: grantId, isActive: false, revokedAt: expect.any(String) },
      ]);
      expect((await events(who, credential.id)).map((e) => e.action).slice(0, 2)).toEqual([
        'ACCESS_REVOKED',
        'ACCESS_GRANTED',
      ]);
    }
    // Again: nothing more to revoke.
    expect(await revokeEngineClient(server.db, leaving.clientId)).toMatchObject({ grantsRevoked: 0 });
  });

  it('lists a client’s grants of many owners in one statement, under a limit of its own', async () => {
    const listing = await registerClient(server.db, 'listing');
    const listingToken = await accessToken(server.url, listing);
    for (let i = 0; i < 4; i++) await grantedCredential(server.url, brokers.paper, listing.clientId);
    const seen: string[] = [];
    recording = seen;
    const res = await engineRequest(server.url, 'GET', '/engine/v1/grants', { token: listingToken });
    recording = undefined;
    expect(res.status).toBe(200);
    expect(res.json.grants).toHaveLength(4);
    // One message, one round trip: the scope and the one statement, whatever the number of owners.
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/engine_client_grants/);
    let status = 200;
    for (let i = 1; i < GRANTS_LIST_RATE_LIMIT && status === 200; i++) {
      status = (await engineRequest(server.url, 'GET', '/engine/v1/grants', { token: listingToken })).status;
    }
    expect(status).toBe(200);
    const over = await engineRequest(server.url, 'GET', '/engine/v1/grants', { token: listingToken });
    expect(over.status).toBe(429);
    expect(over.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('passes answers on as Alpaca encoded them: asks for identity, never inflates a compressed one', async () => {
    const { credential } = await grantedCredential(server.url, brokers.paper, client.clientId);
    // Alpaca honouring the request: it asked for identity, so the answer is plain.
    brokers.paper.setKey(credential.apiKey, {
      kind: 'account',
      secretKey: credential.secretKey,
      gzip: true,
      activities: 800,
    });
    const plain = await call('GET', proxyPath(credential.id, 'v2/account/activities'));
    const askedPlain = received(brokers.paper, credential.apiKey).at(-1);
    expect(askedPlain?.headers['accept-encoding']).toBe('identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(plain.text)).toHaveLength(800);
    // Alpaca compressing anyway: the bytes pass through as they came, labelled.
    brokers.paper.setKey(credential.apiKey, {
      kind: 'account',
      secretKey: credential.secretKey,
      gzip: 'always',
      activities: 800,
    });
    const { hostname, port } = new URL(server.url);
    const raw = await new Promise<{ encoding: string | undefined; bytes: number }>((resolve, reject) => {
      http
        .get(
          {
            hostname,
            port,
            path: proxyPath(credential.id, 'v2/account/activities'),
            agent: false,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            let bytes = 0;
            res.on('data', (c: Buffer) => {
              bytes += c.length;
            });
            res.on('end', () => resolve({ encoding: res.headers['content-encoding'], bytes }));
          },
        )
        .on('error', reject);
    });
    const sent = received(brokers.paper, credential.apiKey).at(-1);
    expect(sent?.response).toMatchObject({ contentEncoding: 'gzip' });
    expect(raw).toEqual({ encoding: 'gzip', bytes: sent?.response?.bytes });
    expect(raw.bytes).toBeLessThan(plain.text.length / 5);
  });
});
