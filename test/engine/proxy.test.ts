// The engine API's proxy (docs/engines.md) on the real server in-process
// and a real database, against the Alpaca stand-ins (the one mock): the whole
// flow from a registered client to an order placed and its ENGINE_REQUEST
// event; the keys reach the right environment and nothing else of the
// engine's does; every refusal reaches the stand-in zero times; Alpaca's
// answers come back as they are (with the allowed headers only); timeouts,
// connection errors, redirects, the rate limit; a grant revoked in flight;
// no connection held while Alpaca hangs; no key or token in any answer or log.
import { randomUUID } from 'node:crypto';
import { trading } from '@alpacahq/alpaca-trade-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tradingDay } from '../../src/domain/guardrails.ts';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql } from '../support/client.ts';
import { dbKind, queryDatabase } from '../support/databases.ts';
import {
  accessToken,
  type EngineClientCredentials,
  type EngineResponse,
  engineRequest,
  grant,
  grantedCredential,
  marketOrder,
  owner,
  proxyPath,
  randomKey,
  received,
  registerClient,
  revokeGrant,
  setGuardrails,
  storeCredential,
  until,
  verify,
} from '../support/engine.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { median, otherUsersLoad } from '../support/other-users.ts';

let brokers: AlpacaStandIns;
let server: InProcessServer;
let client: EngineClientCredentials;
let token: string;
const POOL_SIZE = 3;
/** Every engine API answer of this file, searched for secrets at the end. */
const answers: string[] = [];
const secrets: string[] = [];

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  // A small pool: a request holding a connection while Alpaca hangs would
  // show at once. A long broker timeout keeps hangs hanging.
  server = await startInProcess({
    env: { ...brokers.env, DATABASE_POOL_SIZE: String(POOL_SIZE), BROKER_TIMEOUT_MS: '30000' },
  });
  client = await registerClient(server.db, 'proxy tests');
  token = await accessToken(server.url, client);
  secrets.push(client.clientSecret, token);
});
afterAll(async () => {
  await brokers?.close();
  await server?.close();
});

async function call(
  method: string,
  path: string,
  options: Parameters<typeof engineRequest>[3] = {},
): Promise<EngineResponse> {
  const res = await engineRequest(server.url, method, path, { token, ...options });
  answers.push(`${res.status} ${JSON.stringify(res.headers)} ${res.text}`);
  return res;
}

/** A verified paper credential granted to the file's client (TRADE unless said otherwise). */
async function granted(options: Parameters<typeof grantedCredential>[3] = {}) {
  const setup = await grantedCredential(server.url, brokers.paper, client.clientId, options);
  secrets.push(setup.credential.apiKey, setup.credential.secretKey);
  return setup;
}

const EVENTS =
  'query($id: UUID!) { credentialEvents(credentialId: $id, first: 100) { edges { node { action engineClientId engineRequest changedFields } } } }';

async function events(who: Awaited<ReturnType<typeof owner>>, id: string) {
  const res = await gql(server.url, EVENTS, { id }, who.session);
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.credentialEvents.edges.map((e: { node: unknown }) => e.node) as {
    action: string;
    engineClientId: string | null;
    engineRequest: string | null;
  }[];
}

const order = marketOrder;

describe(`engine proxy (${dbKind})`, () => {
  it('places an order end to end: right keys at the right environment, nothing else of the engine’s, its event', async () => {
    const { who, credential } = await granted();
    const before = received(brokers.paper, credential.apiKey).length;
    const placed = order();
    const res = await call('POST', proxyPath(credential.id, 'v2/orders'), {
      body: JSON.stringify(placed),
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': 'my-engine/1.0',
        cookie: 'session=engine-cookie',
        'x-engine-private': 'do-not-forward',
        'apca-api-key-id': 'ENGINE-CHOSEN-KEY',
        'x-forwarded-host': 'evil.example',
        'sec-fetch-mode': 'cors',
        origin: 'https://some-site.example',
      },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ symbol: 'AAPL', client_order_id: placed.client_order_id, status: 'accepted' });

    const seen = received(brokers.paper, credential.apiKey);
    // The order, after the one read its guardrails needed (its asset's class, under the default assetClasses).
    expect(seen.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v2/assets/AAPL', 'POST /v2/orders']);
    const sent = seen.at(-1);
    expect(sent).toMatchObject({ method: 'POST', path: '/v2/orders', query: '', secretKey: credential.secretKey });
    expect(JSON.parse(sent?.body ?? '')).toEqual(placed);
    // The engine's own headers: only content-type and accept travel.
    expect(sent?.headers['content-type']).toBe('application/json');
    expect(sent?.headers.accept).toBe('application/json');
    expect(sent?.headers['apca-api-key-id']).toBe(credential.apiKey);
    for (const name of ['authorization', 'cookie', 'x-engine-private', 'x-forwarded-host', 'origin']) {
      expect(sent?.headers[name], name).toBeUndefined();
    }
    expect(sent?.headers['user-agent']).not.toBe('my-engine/1.0');
    expect(JSON.stringify(sent?.headers)).not.toContain(token);
    expect(brokers.live.requests.filter((r) => r.apiKey === credential.apiKey)).toEqual([]);

    // Alpaca's answer: its status and body, with content-type, x-request-id, x-ratelimit-* and no other of its headers.
    expect(res.headers['x-request-id']).toBe(sent?.requestId);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['x-ratelimit-limit']).toBe('200');
    expect(res.headers['x-ratelimit-remaining']).toBe('199');
    expect(res.headers['x-ratelimit-reset']).toMatch(/^\d+$/);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['x-stand-in-private']).toBeUndefined();

    // The audit trail: the request, as a template, with the client.
    const trail = await events(who, credential.id);
    expect(trail[0]).toEqual({
      action: 'ENGINE_REQUEST',
      engineClientId: client.clientId,
      engineRequest: 'POST /v2/orders',
      changedFields: [],
    });
    expect(trail.map((e) => e.action)).toEqual(['ENGINE_REQUEST', 'ACCESS_GRANTED', 'VERIFIED', 'STORED']);

    // The order is there at Alpaca: by id, by client_order_id, in the list (query passed as sent).
    const id = res.json.id as string;
    const byId = await call('GET', proxyPath(credential.id, `v2/orders/${id}`));
    expect(byId.json).toMatchObject({ id, client_order_id: placed.client_order_id });
    const byClientId = await call(
      'GET',
      proxyPath(credential.id, `v2/orders:by_client_order_id?client_order_id=${placed.client_order_id}`),
    );
    expect(byClientId.json).toMatchObject({ id });
    const list = await call('GET', proxyPath(credential.id, 'v2/orders?status=all&limit=5&direction=desc'));
    expect(list.json.map((o: { id: string }) => o.id)).toEqual([id]);
    expect(received(brokers.paper, credential.apiKey).at(-1)?.query).toBe('status=all&limit=5&direction=desc');
    // Templates only, never an id or a query value.
    expect((await events(who, credential.id)).slice(0, 3).map((e) => e.engineRequest)).toEqual([
      'GET /v2/orders',
      'GET /v2/orders:by_client_order_id',
      'GET /v2/orders/{id}',
    ]);
  });

  it('is a drop-in for Alpaca’s own TypeScript SDK: base URL and OAuth token changed, nothing else', async () => {
    const { who, credential } = await granted();
    const config = new trading.Configuration({
      basePath: `${server.url}/engine/v1/credentials/${credential.id}/alpaca`,
      accessToken: token,
    });
    const orders = new trading.OrdersApi(config);
    const account = await new trading.AccountsApi(config).getAccount();
    expect(account.accountNumber).toBe('PA3ABCDEFGH1');
    const clientOrderId = `sdk-${randomUUID()}`;
    const placed = await orders.postOrder({
      postOrderRequest: { symbol: 'AAPL', qty: '2', side: 'buy', type: 'market', timeInForce: 'day', clientOrderId },
    });
    expect(placed).toMatchObject({ symbol: 'AAPL', qty: '2', clientOrderId, status: 'accepted' });
    const open = await orders.getAllOrders({ status: 'open', limit: 10 });
    expect(open.map((o) => o.id)).toEqual([placed.id]);
    await orders.deleteOrderByOrderID({ orderId: placed.id as string });
    expect(await orders.getAllOrders({ status: 'open' })).toEqual([]);
    const clock = await new trading.ClockApi(config).legacyClock();
    expect(clock.isOpen).toBe(true);
    // The SDK's fetch (Fetch-Metadata headers and all) was taken for what it is: an engine, not a browser.
    expect(
      received(brokers.paper, credential.apiKey)
        .slice(-6)
        .map((r) => `${r.method} ${r.path}?${r.query}`),
    ).toEqual([
      'GET /v2/account?',
      'POST /v2/orders?',
      'GET /v2/orders?status=open&limit=10',
      `DELETE /v2/orders/${placed.id}?`,
      'GET /v2/orders?status=open',
      'GET /v2/clock?',
    ]);
    const trail = (await events(who, credential.id)).filter((e) => e.action === 'ENGINE_REQUEST');
    expect(trail.map((e) => e.engineRequest)).toEqual([
      'GET /v2/clock',
      'GET /v2/orders',
      'DELETE /v2/orders/{id}',
      'GET /v2/orders',
      'POST /v2/orders',
      'GET /v2/account',
    ]);
  });

  it('lists the client’s active grants at GET /engine/v1/grants', async () => {
    const { who, credential, grantId } = await granted({ scopes: ['READ'] });
    const res = await call('GET', '/engine/v1/grants');
    expect(res.status).toBe(200);
    const mine = res.json.grants.find((g: { id: string }) => g.id === grantId);
    expect(mine).toEqual({
      id: grantId,
      credentialId: credential.id,
      accountId: who.accountId,
      nickname: 'alpaca',
      scopes: ['READ'],
      environment: 'PAPER',
      expiresAt: null,
      // The engine sees its own limits (the defaults here) and what it used today.
      guardrails: {
        tradingState: 'ACTIVE',
        symbols: null,
        assetClasses: ['US_EQUITY'],
        orderTypes: ['MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP'],
        allowShortSelling: false,
        allowExtendedHours: false,
        allowAccountWideActions: false,
        maxOrderNotional: null,
        maxOrderQuantity: null,
        maxDailyNotional: null,
        maxDailyOrders: null,
        priceCollarPercent: null,
      },
      usageToday: { tradingDay: tradingDay(new Date()), orders: 0, notional: '0' },
    });
    expect(res.json.hasMore).toBe(false);
    // A revoked grant is not listed; another client sees none of these.
    await revokeGrant(server.url, who, grantId);
    const after = await call('GET', '/engine/v1/grants');
    expect(after.json.grants.map((g: { id: string }) => g.id)).not.toContain(grantId);
    const other = await registerClient(server.db);
    const theirs = await engineRequest(server.url, 'GET', '/engine/v1/grants', {
      token: await accessToken(server.url, other),
    });
    expect(theirs.json).toEqual({ grants: [], hasMore: false });
  });

  it('answers every allowed READ route, and TRADE’s replace, cancel and close', async () => {
    const { who, credential, grantId } = await granted();
    brokers.paper.setKey(credential.apiKey, {
      kind: 'account',
      secretKey: credential.secretKey,
      positions: [
        { symbol: 'AAPL', qty: 10 },
        { symbol: 'MSFT', qty: 5 },
        { symbol: 'BRK.B', qty: 2 },
      ],
    });
    for (const path of [
      'v2/account',
      'v2/account/activities',
      'v2/positions',
      'v2/positions/AAPL',
      'v2/orders',
      'v2/assets',
      'v2/assets/BRK.B',
      'v2/clock',
      'v2/calendar?start=2026-12-01&end=2026-12-01',
    ]) {
      expect((await call('GET', proxyPath(credential.id, path))).status, path).toBe(200);
    }
    const placed = await call('POST', proxyPath(credential.id, 'v2/orders'), {
      body: JSON.stringify(order({ type: 'limit', limit_price: '100' })),
      headers: { 'content-type': 'application/json' },
    });
    const replaced = await call('PATCH', proxyPath(credential.id, `v2/orders/${placed.json.id}`), {
      body: JSON.stringify({ limit_price: '101' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ replaces: placed.json.id, limit_price: '101' });
    const cancelled = await call('DELETE', proxyPath(credential.id, `v2/orders/${replaced.json.id}`));
    expect(cancelled.status).toBe(204);
    expect(cancelled.text).toBe('');
    await call('POST', proxyPath(credential.id, 'v2/orders'), {
      body: JSON.stringify(order()),
      headers: { 'content-type': 'application/json' },
    });
    // Acting on the whole account needs allowAccountWideActions (off by default): refused, reaching Alpaca zero times.
    const changes = brokers.paper.counts(credential.apiKey).changes;
    for (const path of ['v2/orders', 'v2/positions']) {
      const refused = await call('DELETE', proxyPath(credential.id, path));
      expect(refused.status, path).toBe(403);
      expect(refused.json.error).toMatchObject({ code: 'GUARDRAIL_REFUSED', rule: 'allowAccountWideActions' });
    }
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(changes);
    await setGuardrails(server.url, who, grantId, { allowAccountWideActions: true });
    const cancelAll = await call('DELETE', proxyPath(credential.id, 'v2/orders'));
    expect(cancelAll.status).toBe(207);
    expect(cancelAll.json).toHaveLength(1);
    expect((await call('DELETE', proxyPath(credential.id, 'v2/positions/AAPL'))).json).toMatchObject({
      symbol: 'AAPL',
      side: 'sell',
    });
    const closeAll = await call('DELETE', proxyPath(credential.id, 'v2/positions?cancel_orders=true'));
    expect(closeAll.status).toBe(207);
    expect(closeAll.json.map((p: { symbol: string }) => p.symbol)).toEqual(['MSFT', 'BRK.B']);
    // Alpaca's own refusals pass through as they came.
    const gone = await call('GET', proxyPath(credential.id, 'v2/positions/AAPL'));
    expect(gone.status).toBe(404);
    expect(gone.json).toEqual({ code: 40410000, message: 'position does not exist' });
  });

  it('refuses without a valid token (401), reaching Alpaca zero times', async () => {
    const { credential } = await granted();
    const path = proxyPath(credential.id, 'v2/account');
    const expired = await accessToken(server.url, client);
    await server.db.unscopedClient.engineToken.updateMany({
      where: { tokenHash: (await import('node:crypto')).createHash('sha256').update(expired).digest('hex') },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    const cases: [string, Record<string, string>][] = [
      ['no header', {}],
      [
        'not bearer',
        { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
      ],
      ['unknown token', { authorization: `Bearer eat_${randomUUID()}` }],
      ['the client secret as a token', { authorization: `Bearer ${client.clientSecret}` }],
      ['a user session token', { authorization: 'Bearer some.session-token' }],
      ['expired', { authorization: `Bearer ${expired}` }],
    ];
    for (const [name, headers] of cases) {
      const res = await engineRequest(server.url, 'GET', path, { headers });
      answers.push(res.text);
      expect(res.status, name).toBe(401);
      expect(res.json, name).toEqual({ error: { code: 'UNAUTHENTICATED', message: expect.any(String) } });
      expect(res.headers['www-authenticate']).toBe('Bearer realm="engine"');
    }
    // Even a path that would be refused answers 401 first.
    expect((await engineRequest(server.url, 'GET', proxyPath(credential.id, 'v2/../x'))).status).toBe(401);
    // Alpaca saw the verification only.
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(1);
  });

  it('answers 404 with one body for an absent credential, another user’s, another client’s grant, a revoked or expired grant', async () => {
    const mine = await granted();
    // Another user's credential, granted to another client only; one revoked; one expiring.
    const aliceOnly = await grantedCredential(server.url, brokers.paper, (await registerClient(server.db)).clientId);
    secrets.push(aliceOnly.credential.secretKey);
    const revoked = await granted();
    await revokeGrant(server.url, revoked.who, revoked.grantId);
    const expiring = await granted();
    // Long enough that the first call surely comes before it, on a busy machine too.
    const soon = new Date(Date.now() + 4000).toISOString();
    await grant(server.url, expiring.who, {
      credentialId: expiring.credential.id,
      clientId: client.clientId,
      scopes: ['TRADE'],
      expiresAt: soon,
    });
    expect((await call('GET', proxyPath(expiring.credential.id, 'v2/account'))).status).toBe(200);
    await until(async () => (await call('GET', proxyPath(expiring.credential.id, 'v2/account'))).status === 404);

    const counts = () =>
      [mine, aliceOnly, revoked, expiring].map((s) => received(brokers.paper, s.credential.apiKey).length);
    const before = counts();
    const bodies = new Set<string>();
    for (const id of [
      randomUUID(),
      aliceOnly.credential.id,
      revoked.credential.id,
      expiring.credential.id,
      'not-a-uuid',
    ]) {
      for (const [method, path] of [
        ['GET', 'v2/account'],
        ['POST', 'v2/orders'],
      ] as const) {
        const res = await call(method, proxyPath(id, path), {
          ...(method === 'POST'
            ? { body: JSON.stringify(order()), headers: { 'content-type': 'application/json' } }
            : {}),
        });
        expect(res.status, `${id} ${method}`).toBe(404);
        bodies.add(res.text);
      }
    }
    expect([...bodies]).toEqual([
      JSON.stringify({
        error: { code: 'NOT_FOUND', message: 'No credential with this id is granted to this client.' },
      }),
    ]);
    expect(counts()).toEqual(before);
  });

  it('refuses what the grant’s scope does not allow (403 INSUFFICIENT_SCOPE), reaching Alpaca zero times', async () => {
    const { credential } = await granted({ scopes: ['READ'] });
    const before = received(brokers.paper, credential.apiKey).length;
    const orderId = randomUUID();
    for (const [method, path, body] of [
      ['POST', 'v2/orders', JSON.stringify(order())],
      ['PATCH', `v2/orders/${orderId}`, JSON.stringify({ qty: '2' })],
      ['DELETE', `v2/orders/${orderId}`, undefined],
      ['DELETE', 'v2/orders', undefined],
      ['DELETE', 'v2/positions', undefined],
      ['DELETE', 'v2/positions/AAPL', undefined],
    ] as const) {
      const res = await call(method, proxyPath(credential.id, path), {
        ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json.error.code).toBe('INSUFFICIENT_SCOPE');
      expect(res.json.error.message).toMatch(/TRADE/);
    }
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(before);
    // READ still reads.
    expect((await call('GET', proxyPath(credential.id, 'v2/account'))).status).toBe(200);
  });

  it('refuses every path or method outside the lists, and every path trick (403 ROUTE_NOT_ALLOWED), forwarding nothing', async () => {
    const { credential } = await granted();
    const id = credential.id;
    const orderId = randomUUID();
    const base = `/engine/v1/credentials/${id}/alpaca`;
    const tricks: [string, string][] = [
      ['GET', `${base}/v2/account/../orders`],
      ['GET', `${base}/v2/../v2/account`],
      ['GET', `${base}/v2/./account`],
      ['GET', `${base}/./v2/account`],
      ['GET', `${base}/v2/orders/%2e%2e`],
      ['GET', `${base}/v2%2Faccount`],
      ['GET', `${base}/v2%2faccount`],
      ['GET', `${base}/v2/orders%2F${orderId}`],
      ['GET', `${base}/v2%5Caccount`],
      ['GET', `${base}/v2\\account`],
      ['GET', `${base}/v2/%61ccount`],
      ['GET', `${base}/v2/account%00`],
      ['GET', `${base}//v2/account`],
      ['GET', `${base}/v2//account`],
      ['GET', `${base}/v2/account/`],
      ['GET', `${base}/`],
      ['GET', base],
      ['GET', `${base}/V2/account`],
      ['GET', `${base}/v2/Account`],
      ['GET', `${base}/v2/accounts`],
      ['GET', `${base}/v2/account/configurations`],
      ['GET', `${base}/v2/account/portfolio/history`],
      ['GET', `${base}/v2/watchlists`],
      ['GET', `${base}/v1/account`],
      ['GET', `${base}/v2/orders/not-an-order-id`],
      ['GET', `${base}/v2/orders/${orderId}/extra`],
      ['GET', `${base}/v2/positions/AAPL/extra`],
      ['GET', `${base}/v2/orders:by_client_order_id/x`],
      ['GET', `${base}/https://evil.example/v2/account`],
      ['GET', `${base}/@evil.example/v2/account`],
      ['GET', `/engine/v1/credentials/${id}/../${id}/alpaca/v2/account`],
      ['GET', `/graphql/../engine/v1/credentials/${id}/alpaca/v2/account`],
      ['GET', `/engine/v1/credentials/${id}/alpaca/v2/account/..`],
      ['PUT', `${base}/v2/orders`],
      ['POST', `${base}/v2/account`],
      ['PATCH', `${base}/v2/orders`],
      ['POST', `${base}/v2/orders/${orderId}`],
      ['DELETE', `${base}/v2/account`],
      ['POST', `${base}/v2/positions`],
      ['HEAD', `${base}/v2/account`],
      ['OPTIONS', `${base}/v2/account`],
      ['TRACE', `${base}/v2/account`],
      ['POST', '/engine/v1/grants'],
    ];
    const before = received(brokers.paper, credential.apiKey).length;
    for (const [method, path] of tricks) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(403);
      if (method !== 'HEAD') expect(res.json?.error?.code, `${method} ${path}`).toBe('ROUTE_NOT_ALLOWED');
    }
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(before);
    expect(brokers.live.requests.filter((r) => r.apiKey === credential.apiKey)).toEqual([]);
  });

  it('refuses bodies that are too large (413) or not JSON (400), and bodies where none belongs', async () => {
    const { credential } = await granted();
    const path = proxyPath(credential.id, 'v2/orders');
    const before = received(brokers.paper, credential.apiKey).length;
    const big = JSON.stringify({ ...order(), pad: 'x'.repeat(16 * 1024) });
    const json = { 'content-type': 'application/json' };
    const cases: [string, Parameters<typeof engineRequest>[3], number][] = [
      ['too large', { body: big, headers: json }, 413],
      ['too large, chunked', { body: big, headers: { ...json, 'transfer-encoding': 'chunked' }, chunked: true }, 413],
      ['not JSON', { body: '{"symbol": "AAPL",', headers: json }, 400],
      ['not UTF-8', { body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), headers: json }, 400],
      ['no body', {}, 400],
    ];
    for (const [name, options, status] of cases) {
      const res = await call('POST', path, options);
      expect(res.status, name).toBe(status);
      expect(res.json.error.code, name).toBe(status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST');
    }
    const withBody = await call('GET', proxyPath(credential.id, 'v2/account'), { body: '{}', headers: json });
    expect(withBody.status).toBe(400);
    // Exactly 16 KiB of JSON is fine.
    const exact = JSON.stringify({ ...order(), pad: '' });
    const padded = JSON.stringify({ ...order(), pad: 'x'.repeat(16 * 1024 - exact.length) });
    expect(Buffer.byteLength(padded)).toBe(16 * 1024);
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(before);
    expect((await call('POST', path, { body: padded, headers: json })).status).toBe(200);
  });

  it('refuses an inactive (409 CREDENTIAL_INACTIVE) or unverified credential (409 CREDENTIAL_NOT_VERIFIED); a transient UNREACHABLE keeps it usable', async () => {
    const UPDATE =
      'mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id } }';
    const { who, credential } = await granted();
    const path = proxyPath(credential.id, 'v2/account');
    // Verified, then Alpaca unreachable at a re-check: the environment that verified the keys stays.
    brokers.paper.setKey(credential.apiKey, { kind: 'status', status: 503 });
    expect(await verify(server.url, who, credential.id)).toMatchObject({ status: 'UNREACHABLE', environment: null });
    brokers.paper.setKey(credential.apiKey, { kind: 'account', secretKey: credential.secretKey });
    expect((await call('GET', path)).status).toBe(200);
    expect(
      (await call('GET', '/engine/v1/grants')).json.grants.find(
        (g: { credentialId: string }) => g.credentialId === credential.id,
      )?.environment,
    ).toBe('PAPER');

    await gql(server.url, UPDATE, { id: credential.id, input: { isActive: false } }, who.session);
    const before = received(brokers.paper, credential.apiKey).length;
    const inactive = await call('GET', path);
    expect(inactive.status).toBe(409);
    expect(inactive.json.error.code).toBe('CREDENTIAL_INACTIVE');
    await gql(server.url, UPDATE, { id: credential.id, input: { isActive: true } }, who.session);

    // New keys: not verified until checked again; INVALID is not verified either.
    await gql(server.url, UPDATE, { id: credential.id, input: { secretKey: 'sk-new-secret' } }, who.session);
    secrets.push('sk-new-secret');
    const stale = await call('GET', path);
    expect(stale.status).toBe(409);
    expect(stale.json.error.code).toBe('CREDENTIAL_NOT_VERIFIED');
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(before);
    expect(await verify(server.url, who, credential.id)).toMatchObject({ status: 'INVALID' });
    expect((await call('GET', path)).json.error.code).toBe('CREDENTIAL_NOT_VERIFIED');
    const grants = await call('GET', '/engine/v1/grants');
    expect(
      grants.json.grants.find((g: { credentialId: string }) => g.credentialId === credential.id)?.environment,
    ).toBeNull();
    // A never-verified one too.
    const fresh = await storeCredential(server.url, who);
    await grant(server.url, who, { credentialId: fresh.id, clientId: client.clientId, scopes: ['READ'] });
    expect((await call('GET', proxyPath(fresh.id, 'v2/account'))).json.error.code).toBe('CREDENTIAL_NOT_VERIFIED');
    expect(received(brokers.paper, fresh.apiKey)).toEqual([]);
  });

  it('forwards to the environment that verified the keys: a live credential goes to live only', async () => {
    const who = await owner(server.url);
    const credential = await storeCredential(server.url, who, { apiKey: randomKey('AK') });
    secrets.push(credential.secretKey);
    brokers.live.setKey(credential.apiKey, { kind: 'account', secretKey: credential.secretKey });
    expect(await verify(server.url, who, credential.id)).toMatchObject({ status: 'VERIFIED', environment: 'LIVE' });
    await grant(server.url, who, { credentialId: credential.id, clientId: client.clientId, scopes: ['READ'] });
    expect((await call('GET', proxyPath(credential.id, 'v2/clock'))).status).toBe(200);
    expect(received(brokers.live, credential.apiKey).map((r) => r.path)).toEqual(['/v2/account', '/v2/clock']);
    expect(received(brokers.paper, credential.apiKey)).toEqual([]);
  });

  it('passes Alpaca’s errors and its own 429 through as they came; never follows a redirect', async () => {
    const { credential } = await granted();
    const path = proxyPath(credential.id, 'v2/account');
    brokers.paper.setKey(credential.apiKey, { kind: 'status', status: 500 });
    const failed = await call('GET', path);
    expect(failed.status).toBe(500);
    expect(failed.json).toEqual({ message: 'stand-in status 500' });

    brokers.paper.setKey(credential.apiKey, { kind: 'rate-limited', retryAfterSeconds: 7 });
    const limited = await call('GET', path);
    expect(limited.status).toBe(429);
    expect(limited.json).toEqual({ code: 42910000, message: 'rate limit exceeded' });
    expect(limited.headers['x-ratelimit-remaining']).toBe('0');
    // Only content-type, x-request-id and x-ratelimit-* come back (so not Alpaca's Retry-After).
    expect(limited.headers['retry-after']).toBeUndefined();

    const before = brokers.live.requests.length;
    brokers.paper.setKey(credential.apiKey, {
      kind: 'redirect',
      status: 307,
      location: `${brokers.live.url}/v2/account`,
    });
    const redirected = await call('GET', path);
    expect(redirected.status).toBe(307);
    expect(redirected.headers.location).toBeUndefined();
    expect(brokers.live.requests.length).toBe(before);
  });

  it('answers 502 BROKER_UNREACHABLE when the connection fails, and sends a write once', async () => {
    const { credential } = await granted();
    brokers.paper.setKey(credential.apiKey, { kind: 'reset' });
    const before = received(brokers.paper, credential.apiKey).length;
    const res = await call('POST', proxyPath(credential.id, 'v2/orders'), {
      body: JSON.stringify(order()),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(502);
    expect(res.json.error.code).toBe('BROKER_UNREACHABLE');
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(before + 1);
  });

  it('forwards nothing when the ENGINE_REQUEST event cannot be written', async () => {
    const { who, credential } = await granted();
    const before = received(brokers.paper, credential.apiKey).length;
    // A real failure of the event's INSERT: the request role loses the right for a moment
    // (on PostgreSQL from a connection of the test's own; PGlite has only the app's).
    const admin = (sql: string) =>
      server.testDb.url ? queryDatabase(server.testDb.url, sql) : server.db.unscopedClient.$executeRawUnsafe(sql);
    await admin('REVOKE INSERT ON credential_events FROM app_user');
    let res: EngineResponse;
    try {
      res = await call('POST', proxyPath(credential.id, 'v2/orders'), {
        body: JSON.stringify(order()),
        headers: { 'content-type': 'application/json' },
      });
    } finally {
      await admin('GRANT INSERT ON credential_events TO app_user');
    }
    expect(res.status).toBe(500);
    expect(res.json.error.code).toBe('INTERNAL_SERVER_ERROR');
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(before);
    expect((await events(who, credential.id))[0]?.action).toBe('ACCESS_GRANTED');
    // And the point it took is given back only when a check refused it; this one failed, so it stays counted.
    expect((await call('GET', proxyPath(credential.id, 'v2/account'))).status).toBe(200);
  });

  it('lets a request revoked in flight finish, and refuses the next', async () => {
    const { who, credential, grantId } = await granted();
    brokers.paper.setKey(credential.apiKey, { kind: 'held', secretKey: credential.secretKey });
    const heldBefore = brokers.paper.held;
    const inFlight = call('GET', proxyPath(credential.id, 'v2/account'));
    await until(() => brokers.paper.held === heldBefore + 1);
    const revoked = await revokeGrant(server.url, who, grantId);
    expect(revoked.body.data?.revokeEngineAccess).toMatchObject({ id: grantId, isActive: false });
    brokers.paper.proceed();
    expect((await inFlight).status).toBe(200);
    const count = received(brokers.paper, credential.apiKey).length;
    const next = await call('GET', proxyPath(credential.id, 'v2/account'));
    expect(next.status).toBe(404);
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(count);
    // The trail: the request, then the revocation.
    expect((await events(who, credential.id)).slice(0, 2).map((e) => e.action)).toEqual([
      'ACCESS_REVOKED',
      'ENGINE_REQUEST',
    ]);
  });

  it('holds no connection while Alpaca hangs: 15 hung engine requests, pool of 3, other users still answered', async () => {
    const hangers = await Promise.all(Array.from({ length: 3 }, () => owner(server.url)));
    const hung = await Promise.all(
      Array.from({ length: 15 }, (_, i) => granted({ who: hangers[i % 3], behaviour: () => ({ kind: 'hang' }) })),
    );
    const others = await Promise.all(Array.from({ length: 5 }, () => owner(server.url)));
    const load = () => otherUsersLoad(server.url, others);
    await load();
    const quiet = await load();
    const hangingBefore = brokers.paper.hanging;
    const pending = hung.map(({ credential }) => call('GET', proxyPath(credential.id, 'v2/account')));
    await until(() => brokers.paper.hanging === hangingBefore + 15);
    // All 15 wait at Alpaca, and not one database connection (PGlite: its one backend) is in use.
    await until(() => server.db.connections().active === 0);
    const during = await load();
    expect(brokers.paper.hanging).toBe(hangingBefore + 15);
    console.info(
      `[${dbKind}] 15 engine requests hanging at Alpaca, pool of ${POOL_SIZE}: ${during.length} other-user ` +
        `GraphQL requests answered, median ${median(during).toFixed(1)} ms (max ${(during.at(-1) as number).toFixed(1)}) ` +
        `against ${median(quiet).toFixed(1)} ms without: ratio ${(median(during) / median(quiet)).toFixed(2)}`,
    );
    brokers.paper.release();
    for (const res of await Promise.all(pending)) {
      expect(res.status).toBe(502);
      expect(res.json.error.code).toBe('BROKER_UNREACHABLE');
    }
  });
});

describe(`engine proxy with a short BROKER_TIMEOUT_MS and a low ENGINE_RATE_LIMIT (${dbKind})`, () => {
  let quick: InProcessServer;
  let quickToken: string;
  let quickClient: EngineClientCredentials;
  // Short, but not so short that a busy machine makes the stand-in's normal
  // answers (grantedCredential verifies through this server) miss it.
  const TIMEOUT_MS = 2000;
  const LIMIT = 5;
  beforeAll(async () => {
    quick = await startInProcess({
      env: { ...brokers.env, BROKER_TIMEOUT_MS: String(TIMEOUT_MS), ENGINE_RATE_LIMIT: String(LIMIT) },
    });
    quickClient = await registerClient(quick.db);
    quickToken = await accessToken(quick.url, quickClient);
    secrets.push(quickToken, quickClient.clientSecret);
  });
  afterAll(() => quick?.close());

  const quickCall = async (method: string, path: string, options: Parameters<typeof engineRequest>[3] = {}) => {
    const res = await engineRequest(quick.url, method, path, { token: quickToken, ...options });
    answers.push(res.text);
    return res;
  };

  it('answers 504 BROKER_TIMEOUT for a write that timed out, sent exactly once; it can be looked up by client_order_id', async () => {
    const { credential } = await grantedCredential(quick.url, brokers.paper, quickClient.clientId);
    secrets.push(credential.secretKey);
    const placed = order();
    // A dry run first: the asset the checks read is then known, and only the order itself is slow.
    const checked = await quickCall('POST', `/engine/v1/credentials/${credential.id}/orders:check`, {
      body: JSON.stringify(placed),
      headers: { 'content-type': 'application/json' },
    });
    expect(checked.json).toMatchObject({ allowed: true });
    brokers.paper.setKey(credential.apiKey, { kind: 'slow', delayMs: TIMEOUT_MS * 3, secretKey: credential.secretKey });
    const before = received(brokers.paper, credential.apiKey).length;
    const res = await quickCall('POST', proxyPath(credential.id, 'v2/orders'), {
      body: JSON.stringify(placed),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(504);
    expect(res.json.error.code).toBe('BROKER_TIMEOUT');
    expect(res.json.error.message).toMatch(/client_order_id/);
    const sent = received(brokers.paper, credential.apiKey).slice(before);
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v2/orders']);

    // The engine looks it up: the order exists.
    brokers.paper.setKey(credential.apiKey, { kind: 'account', secretKey: credential.secretKey });
    const found = await quickCall(
      'GET',
      proxyPath(credential.id, `v2/orders:by_client_order_id?client_order_id=${placed.client_order_id}`),
    );
    expect(found.status).toBe(200);
    expect(found.json.client_order_id).toBe(placed.client_order_id);
    expect(received(brokers.paper, credential.apiKey).filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('gives up on a body that stops arriving, and on no answer at all', async () => {
    const { credential } = await grantedCredential(quick.url, brokers.paper, quickClient.clientId);
    brokers.paper.setKey(credential.apiKey, { kind: 'hang' });
    const res = await quickCall('GET', proxyPath(credential.id, 'v2/account'));
    expect(res.status).toBe(504);
    brokers.paper.setKey(credential.apiKey, { kind: 'hang-body' });
    // The status went out with the headers; the engine sees the answer cut short.
    await expect(quickCall('GET', proxyPath(credential.id, 'v2/account'))).rejects.toThrow();
    brokers.paper.release();
  });

  it(`forwards at most ENGINE_RATE_LIMIT (${LIMIT}) requests per credential per minute: 429 with Retry-After`, async () => {
    const { credential } = await grantedCredential(quick.url, brokers.paper, quickClient.clientId);
    const other = await grantedCredential(quick.url, brokers.paper, quickClient.clientId);
    const before = received(brokers.paper, credential.apiKey).length;
    // A burst: the point is taken before forwarding, so concurrency cannot beat it.
    const burst = await Promise.all(
      Array.from({ length: LIMIT + 3 }, () => quickCall('GET', proxyPath(credential.id, 'v2/clock'))),
    );
    // Forwarded: Alpaca's 200, or (this server's deadline is short, the machine may be busy) a 504.
    expect(burst.filter((r) => r.status === 200 || r.status === 504)).toHaveLength(LIMIT);
    const refused = burst.filter((r) => r.status === 429);
    expect(refused).toHaveLength(3);
    for (const r of refused) {
      expect(r.json.error.code).toBe('TOO_MANY_REQUESTS');
      const retryAfter = Number(r.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    expect(received(brokers.paper, credential.apiKey)).toHaveLength(before + LIMIT);
    // Another credential has its own.
    expect((await quickCall('GET', proxyPath(other.credential.id, 'v2/clock'))).status).not.toBe(429);
    expect(received(brokers.paper, other.credential.apiKey).at(-1)?.path).toBe('/v2/clock');
  });
});

describe.runIf(dbKind === 'postgres')('engine rate limit across instances (postgres)', () => {
  it('is one limit for all instances on one database', async () => {
    const LIMIT = 4;
    const first = await startInProcess({ env: { ...brokers.env, ENGINE_RATE_LIMIT: String(LIMIT) } });
    const second = await startInProcess({
      env: { ...brokers.env, ENGINE_RATE_LIMIT: String(LIMIT) },
      database: first.testDb,
    });
    try {
      const engine = await registerClient(first.db);
      const tokens = [await accessToken(first.url, engine), await accessToken(second.url, engine)];
      const { credential } = await grantedCredential(first.url, brokers.paper, engine.clientId);
      const before = received(brokers.paper, credential.apiKey).length;
      const burst = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          engineRequest([first.url, second.url][i % 2] as string, 'GET', proxyPath(credential.id, 'v2/clock'), {
            token: tokens[i % 2] as string,
          }),
        ),
      );
      const statuses = burst.map((r) => r.status).sort();
      // Admitted ones answer 200 (or 504 on a machine so loaded that the stand-in was late).
      expect(
        statuses.filter((s) => s === 200 || s === 504),
        statuses.join(','),
      ).toHaveLength(LIMIT);
      expect(
        statuses.filter((s) => s === 429),
        statuses.join(','),
      ).toHaveLength(10 - LIMIT);
      expect(received(brokers.paper, credential.apiKey)).toHaveLength(before + LIMIT);
    } finally {
      await second.close();
      await first.close();
    }
  });
});

describe(`what leaves the server (${dbKind})`, () => {
  it('no key, secret or token in any answer or log line; one engine log line per request', async () => {
    // Traffic of its own, so the test asserts when run alone (-t); the
    // secrets and answers of the file's other tests are searched as well.
    const { credential } = await granted();
    const engineLines = () => server.logs.filter((l) => l.includes('"msg":"engine request"')).length;
    const linesBefore = engineLines();
    const placed = order();
    const body = JSON.stringify(placed);
    const headers = { 'content-type': 'application/json' };
    expect((await call('POST', proxyPath(credential.id, 'v2/orders'), { body, headers })).status).toBe(200);
    expect((await call('GET', proxyPath(credential.id, 'v2/orders?status=all&limit=5'))).status).toBe(200);
    const byClientId = proxyPath(
      credential.id,
      `v2/orders:by_client_order_id?client_order_id=${placed.client_order_id}`,
    );
    expect((await call('GET', byClientId)).status).toBe(200);
    expect((await call('GET', proxyPath(credential.id, 'v2/../v2/account'))).status).toBe(403);
    // One line per engine request, forwarded or refused (in-process: written before the answer is read).
    expect(engineLines() - linesBefore).toBe(4);
    expect(secrets).toEqual(
      expect.arrayContaining([client.clientSecret, token, credential.apiKey, credential.secretKey]),
    );
    const everything = [...answers, ...server.logs];
    for (const secret of secrets) {
      for (const text of everything)
        expect(text.includes(secret), `${secret.slice(0, 6)}… in ${text.slice(0, 200)}`).toBe(false);
    }
    const lines = server.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'engine request');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const forwarded = lines.find((l) => l.outcome === 'forwarded' && l.request === 'POST /v2/orders');
    expect(forwarded).toMatchObject({
      component: 'engine',
      clientId: client.clientId,
      method: 'POST',
      status: 200,
      durationMs: expect.any(Number),
      requestId: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    expect(lines.find((l) => l.outcome === 'ROUTE_NOT_ALLOWED')).toMatchObject({ status: 403, request: null });
    // The broker call line of a forward: environment and template, no path value or query.
    const brokerLines = server.logs.filter((l) => l.includes('"broker call"') && l.includes('"request"'));
    expect(brokerLines.length).toBeGreaterThanOrEqual(3);
    for (const line of brokerLines) expect(line).not.toMatch(/co-[0-9a-f]{8}|status=all|limit=/);
  });
});
