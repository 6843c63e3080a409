// The daily caps of a grant (maxDailyOrders, maxDailyNotional), as an engine
// meets them through the proxy (docs/engines.md, "Guardrails"): an accepted
// order counts once, an order Alpaca refuses (4xx, 5xx) is given back, one it
// never answered (504) stays counted; usageToday is the same in GraphQL and in
// GET /engine/v1/grants, on New York's trading day; the events of orders carry
// their summary and never a key, token or secret. Then the point of counting
// in PostgreSQL: concurrent orders spread over two server processes on one
// database never pass a cap together (PostgreSQL only; one process per
// database on PGlite, where the in-process burst below covers it).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { tradingDay } from '../../src/domain/guardrails.ts';
import { createLogger } from '../../src/logger.ts';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql } from '../support/client.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import {
  accessToken,
  type EngineClientCredentials,
  type EngineResponse,
  engineRequest,
  grantedCredential,
  type Owner,
  proxyPath,
  registerClient,
  setGuardrails,
} from '../support/engine.ts';
import type { EngineEvent } from '../support/guardrail-harness.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { startServer, type TestServer } from '../support/server.ts';

/** Short enough for a timeout test to take seconds, long enough for the local stand-ins on a busy machine. */
const TIMEOUT_MS = 1500;

let brokers: AlpacaStandIns;
let server: InProcessServer;
let client: EngineClientCredentials;
let token: string;
/** Every key, secret and token of this file, looked for in the audit trail at the end. */
const secrets: string[] = [];
/** Every credential of this file with its owner and server, whose whole trail is searched for them. */
const trails: { url: string; who: Owner; credentialId: string }[] = [];

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  server = await startInProcess({ env: { ...brokers.env, BROKER_TIMEOUT_MS: String(TIMEOUT_MS) } });
  client = await registerClient(server.db, 'counting tests');
  token = await accessToken(server.url, client);
  secrets.push(client.clientSecret, token);
});
afterAll(async () => {
  await brokers?.close();
  await server?.close();
});

const json = { 'content-type': 'application/json' };

/** A buy limit order: its notional (qty × limit_price) needs no market data. */
const limitBuy = (qty: string, limitPrice: string, overrides: Record<string, unknown> = {}) => ({
  symbol: 'AAPL',
  qty,
  side: 'buy',
  type: 'limit',
  limit_price: limitPrice,
  time_in_force: 'day',
  client_order_id: `count-${randomUUID()}`,
  ...overrides,
});

/** A verified paper credential of a new user, granted to `grantee` with these guardrails. */
async function granted(url: string, grantee: EngineClientCredentials, guardrails?: Record<string, unknown>) {
  const setup = await grantedCredential(url, brokers.paper, grantee.clientId, guardrails ? { guardrails } : {});
  secrets.push(setup.credential.apiKey, setup.credential.secretKey);
  trails.push({ url, who: setup.who, credentialId: setup.credential.id });
  return setup;
}

const placeOn = (url: string, bearer: string, credentialId: string, body: object) =>
  engineRequest(url, 'POST', proxyPath(credentialId, 'v2/orders'), {
    token: bearer,
    body: JSON.stringify(body),
    headers: json,
  });
const place = (credentialId: string, body: object) => placeOn(server.url, token, credentialId, body);

const dryRun = (credentialId: string, body: object) =>
  engineRequest(server.url, 'POST', `/engine/v1/credentials/${credentialId}/orders:check`, {
    token,
    body: JSON.stringify(body),
    headers: json,
  });

/** POSTs of orders that reached the paper stand-in with this key. */
const posts = (apiKey: string) =>
  brokers.paper.requests.filter((r) => r.apiKey === apiKey && r.method === 'POST' && r.path === '/v2/orders');

const USAGE =
  'query($id: UUID!) { credential(id: $id) { engineGrants { id usageToday { tradingDay orders notional } } } }';

/** The grant's usageToday as its owner sees it in GraphQL. */
async function usageOf(url: string, who: Owner, credentialId: string, grantId: string) {
  const res = await gql(url, USAGE, { id: credentialId }, who.session);
  expect(res.body.errors).toBeUndefined();
  const found = res.body.data?.credential.engineGrants.find((g: { id: string }) => g.id === grantId);
  return found.usageToday as { tradingDay: string; orders: number; notional: string };
}

/** The grant's usageToday as the engine sees it in GET /engine/v1/grants. */
async function listedUsageOf(url: string, bearer: string, grantId: string) {
  const res = await engineRequest(url, 'GET', '/engine/v1/grants', { token: bearer });
  expect(res.status).toBe(200);
  return res.json.grants.find((g: { id: string }) => g.id === grantId).usageToday;
}

const EVENT_FIELDS =
  'id action occurredAt engineClientId engineRequest guardrailRule changedFields clientIp userAgent ' +
  'engineOrder { symbol side type qty notional clientOrderId estimatedNotional referencePrice } ' +
  'engineResponse { status brokerRequestId }';
const EVENTS = `query($id: UUID!, $after: String) { credentialEvents(credentialId: $id, first: 100, after: $after) { edges { node { ${EVENT_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;

type Event = EngineEvent;

/** The credential's whole trail, newest first, and the GraphQL answers' text. */
async function trailOf(url: string, who: Owner, credentialId: string): Promise<{ events: Event[]; text: string }> {
  const events: Event[] = [];
  let text = '';
  let after: string | undefined;
  for (;;) {
    const res = await gql(url, EVENTS, { id: credentialId, after }, who.session);
    expect(res.body.errors).toBeUndefined();
    text += res.text;
    const page = res.body.data?.credentialEvents;
    events.push(...page.edges.map((e: { node: Event }) => e.node));
    if (!page.pageInfo.hasNextPage) return { events, text };
    after = page.pageInfo.endCursor;
  }
}

const byClientOrderId = (events: Event[], clientOrderId: string) =>
  events.filter((e) => e.engineOrder?.clientOrderId === clientOrderId);

/**
 * A refusal by a daily cap: 403 GUARDRAIL_REFUSED naming the rule, its limit
 * and the value the order would have reached, a message that says so.
 */
function expectDailyCapRefusal(res: EngineResponse, rule: string, limit: string, value: string) {
  expect(res.status, res.text).toBe(403);
  expect(res.json.error).toMatchObject({ code: 'GUARDRAIL_REFUSED', rule, limit, value });
  expect(res.json.error.message).toContain(rule);
  expect(res.json.error.message).toMatch(/^Refused by the grant's guardrails: .+\.$/);
}

describe(`daily caps: what counts, what is given back (${dbKind})`, () => {
  it('counts each accepted order once toward both caps, and refuses the order over either', async () => {
    const { who, credential, grantId } = await granted(server.url, client, {
      maxDailyOrders: 3,
      maxDailyNotional: '1000',
    });
    const first = limitBuy('2', '100.25');
    expect((await place(credential.id, first)).status).toBe(200);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 1, notional: '200.5' });
    expect((await place(credential.id, limitBuy('3', '250'))).status).toBe(200);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 2, notional: '950.5' });

    // 49.5 USD more fits exactly (a cap is a maximum); 49.51 would not.
    const changes = brokers.paper.counts(credential.apiKey).changes;
    const over = limitBuy('1', '49.51');
    const refused = await place(credential.id, over);
    expectDailyCapRefusal(refused, 'maxDailyNotional', '1000', '1000.01');
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(changes);
    const exact = await place(credential.id, limitBuy('1', '49.5'));
    expect(exact.status).toBe(200);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 3, notional: '1000' });

    // Now the fourth order of the day, whatever its size.
    const fourth = limitBuy('0.001', '1');
    expectDailyCapRefusal(await place(credential.id, fourth), 'maxDailyNotional', '1000', '1000.001');
    await setGuardrails(server.url, who, grantId, { maxDailyNotional: null });
    const fifth = limitBuy('1', '1');
    expectDailyCapRefusal(await place(credential.id, fifth), 'maxDailyOrders', '3', '4');
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(changes + 1);
    expect(posts(credential.apiKey)).toHaveLength(3);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 3, notional: '1000' });

    // Each refusal left ENGINE_REFUSED with the rule and the order's summary.
    const { events } = await trailOf(server.url, who, credential.id);
    for (const [refusedOrder, rule, estimate] of [
      [over, 'maxDailyNotional', '49.51'],
      [fourth, 'maxDailyNotional', '0.001'],
      [fifth, 'maxDailyOrders', '1'],
    ] as const) {
      expect(byClientOrderId(events, refusedOrder.client_order_id)).toEqual([
        expect.objectContaining({
          action: 'ENGINE_REFUSED',
          engineClientId: client.clientId,
          engineRequest: 'POST /v2/orders',
          guardrailRule: rule,
          engineOrder: {
            symbol: 'AAPL',
            side: 'buy',
            type: 'limit',
            qty: refusedOrder.qty,
            notional: null,
            clientOrderId: refusedOrder.client_order_id,
            estimatedNotional: estimate,
            referencePrice: null,
          },
          engineResponse: null,
        }),
      ]);
    }
  });

  it('gives the count back when Alpaca refuses the order (422, a client_order_id used already)', async () => {
    const { who, credential, grantId } = await granted(server.url, client, {
      maxDailyOrders: 2,
      maxDailyNotional: '300',
    });
    const first = limitBuy('1', '100');
    expect((await place(credential.id, first)).status).toBe(200);
    const changes = brokers.paper.counts(credential.apiKey).changes;

    const duplicate = limitBuy('2', '100', { client_order_id: first.client_order_id });
    const refused = await place(credential.id, duplicate);
    // Alpaca's answer, as it came: the order reached it and it said no.
    expect(refused.status).toBe(422);
    expect(refused.json).toEqual({ code: 40010001, message: 'client_order_id must be unique' });
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(changes + 1);
    const usage = await usageOf(server.url, who, credential.id, grantId);
    expect(usage).toMatchObject({ orders: 1, notional: '100' });
    expect(await listedUsageOf(server.url, token, grantId)).toEqual(usage);

    // What was given back is room for the next order: 1 + 1 orders, 100 + 200 USD, both caps met exactly.
    expect((await place(credential.id, limitBuy('2', '100'))).status).toBe(200);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 2, notional: '300' });
    expectDailyCapRefusal(await place(credential.id, limitBuy('1', '0.01')), 'maxDailyNotional', '300', '300.01');

    // The refused one's event says how Alpaca answered; its summary is what was counted, then given back.
    const { events } = await trailOf(server.url, who, credential.id);
    const answered = byClientOrderId(events, first.client_order_id);
    expect(answered.map((e) => [e.action, e.engineOrder?.qty, e.engineResponse?.status])).toEqual([
      ['ENGINE_REQUEST', '2', 422],
      ['ENGINE_REQUEST', '1', 200],
    ]);
    expect(answered[0]?.engineResponse?.brokerRequestId).toEqual(expect.any(String));
  });

  it('gives the count back when Alpaca answers 5xx', async () => {
    const { who, credential, grantId } = await granted(server.url, client, {
      maxDailyOrders: 1,
      maxDailyNotional: '500',
    });
    const placed = limitBuy('5', '100');
    // A dry run first: the asset the checks read is then known, and only the order itself meets the failure.
    expect((await dryRun(credential.id, placed)).json).toMatchObject({ allowed: true });
    brokers.paper.setKey(credential.apiKey, { kind: 'status', status: 500 });
    const failed = await place(credential.id, placed);
    expect(failed.status).toBe(500);
    expect(failed.json).toEqual({ message: 'stand-in status 500' });
    expect(posts(credential.apiKey)).toHaveLength(1);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 0, notional: '0' });

    // The same order again, once Alpaca is back: the one order of the day, all 500 USD of it.
    brokers.paper.setKey(credential.apiKey, { kind: 'account', secretKey: credential.secretKey });
    expect((await place(credential.id, placed)).status).toBe(200);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 1, notional: '500' });
    const { events } = await trailOf(server.url, who, credential.id);
    expect(byClientOrderId(events, placed.client_order_id).map((e) => e.engineResponse?.status)).toEqual([200, 500]);
  });

  it('keeps the count when Alpaca does not answer in time (504): the order may well exist', async () => {
    const { who, credential, grantId } = await granted(server.url, client, {
      maxDailyOrders: 1,
      maxDailyNotional: '500',
    });
    const placed = limitBuy('2', '100');
    expect((await dryRun(credential.id, placed)).json).toMatchObject({ allowed: true });
    brokers.paper.setKey(credential.apiKey, { kind: 'slow', delayMs: TIMEOUT_MS * 3, secretKey: credential.secretKey });
    const timedOut = await place(credential.id, placed);
    expect(timedOut.status).toBe(504);
    expect(timedOut.json.error.code).toBe('BROKER_TIMEOUT');
    // It did reach Alpaca, which placed it.
    expect(brokers.paper.orders(credential.apiKey).map((o) => o.client_order_id)).toEqual([placed.client_order_id]);
    const usage = await usageOf(server.url, who, credential.id, grantId);
    expect(usage).toMatchObject({ orders: 1, notional: '200' });
    expect(await listedUsageOf(server.url, token, grantId)).toEqual(usage);

    // Counted: the next order is the second of the day.
    brokers.paper.setKey(credential.apiKey, { kind: 'account', secretKey: credential.secretKey });
    const changes = brokers.paper.counts(credential.apiKey).changes;
    const next = limitBuy('1', '100');
    expectDailyCapRefusal(await place(credential.id, next), 'maxDailyOrders', '1', '2');
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(changes);
    const { events } = await trailOf(server.url, who, credential.id);
    expect(byClientOrderId(events, placed.client_order_id)).toEqual([
      expect.objectContaining({ action: 'ENGINE_REQUEST', engineResponse: null }),
    ]);
    expect(byClientOrderId(events, next.client_order_id)).toEqual([
      expect.objectContaining({ action: 'ENGINE_REFUSED', guardrailRule: 'maxDailyOrders' }),
    ]);
  });

  it('shows the same usageToday in GraphQL and in GET /engine/v1/grants, on the New York trading day', async () => {
    const before = tradingDay(new Date());
    const { who, credential, grantId } = await granted(server.url, client, { maxDailyNotional: '100000' });
    const empty = await usageOf(server.url, who, credential.id, grantId);
    expect(empty).toMatchObject({ orders: 0, notional: '0' });
    expect(await listedUsageOf(server.url, token, grantId)).toEqual(empty);
    for (const [qty, price] of [
      ['3', '101.125'],
      ['0.5', '99.99'],
      ['7', '0.000000001'],
    ] as const) {
      expect((await place(credential.id, limitBuy(qty, price))).status).toBe(200);
    }
    const usage = await usageOf(server.url, who, credential.id, grantId);
    const after = tradingDay(new Date());
    // 303.375 + 49.995 + 0.000000007, exact.
    expect(usage).toMatchObject({ orders: 3, notional: '353.370000007' });
    expect(await listedUsageOf(server.url, token, grantId)).toEqual(usage);
    // Midnight in New York may fall between the two readings, never anything else.
    expect([before, after]).toContain(usage.tradingDay);
  });

  it('gives ENGINE_REQUEST events of orders their summary: estimatedNotional, and referencePrice when one was read', async () => {
    // Only maxOrderNotional needs a price here; the other orders are priced by what they say, or not at all.
    const { who, credential } = await granted(server.url, client, { maxOrderNotional: '100000' });
    const withCap = { symbol: 'AAPL', qty: '3', side: 'buy', type: 'market', time_in_force: 'day' };
    const cases: [Record<string, unknown>, Record<string, string | null>][] = [
      // qty × the ask read for the cap.
      [withCap, { qty: '3', notional: null, estimatedNotional: '570.36', referencePrice: '190.12' }],
      // qty × limit_price: the order alone gives it.
      [
        { symbol: 'AAPL', qty: '2', side: 'buy', type: 'limit', limit_price: '150.5', time_in_force: 'day' },
        { qty: '2', notional: null, estimatedNotional: '301', referencePrice: null },
      ],
      // A notional order's amount.
      [
        { symbol: 'AAPL', notional: '250.75', side: 'buy', type: 'market', time_in_force: 'day' },
        { qty: null, notional: '250.75', estimatedNotional: '250.75', referencePrice: null },
      ],
    ];
    for (const [body, expected] of cases) {
      const clientOrderId = `summary-${randomUUID()}`;
      const res = await place(credential.id, { ...body, client_order_id: clientOrderId });
      expect(res.status, res.text).toBe(200);
      const { events } = await trailOf(server.url, who, credential.id);
      expect(byClientOrderId(events, clientOrderId)).toEqual([
        expect.objectContaining({
          action: 'ENGINE_REQUEST',
          engineRequest: 'POST /v2/orders',
          guardrailRule: null,
          engineOrder: {
            symbol: 'AAPL',
            side: 'buy',
            type: body.type,
            clientOrderId,
            ...expected,
          },
          engineResponse: { status: 200, brokerRequestId: expect.any(String) },
        }),
      ]);
    }

    // Under the defaults no rule needs a price: a market order's notional is unknown, and none was read.
    const plain = await granted(server.url, client);
    const quotes = brokers.data.counts(plain.credential.apiKey).quotes;
    const clientOrderId = `summary-${randomUUID()}`;
    expect((await place(plain.credential.id, { ...withCap, client_order_id: clientOrderId })).status).toBe(200);
    expect(brokers.data.counts(plain.credential.apiKey).quotes).toBe(quotes);
    const { events } = await trailOf(server.url, plain.who, plain.credential.id);
    expect(byClientOrderId(events, clientOrderId)[0]?.engineOrder).toEqual({
      symbol: 'AAPL',
      side: 'buy',
      type: 'market',
      qty: '3',
      notional: null,
      clientOrderId,
      estimatedNotional: null,
      referencePrice: null,
    });
  });

  it('never lets concurrent orders on one instance pass a cap together', async () => {
    const { who, credential, grantId } = await granted(server.url, client, { maxDailyOrders: 4 });
    const burst = await Promise.all(Array.from({ length: 12 }, () => place(credential.id, limitBuy('1', '10'))));
    expect(burst.filter((r) => r.status === 200)).toHaveLength(4);
    for (const r of burst.filter((r) => r.status !== 200)) expectDailyCapRefusal(r, 'maxDailyOrders', '4', '5');
    expect(posts(credential.apiKey)).toHaveLength(4);
    expect(await usageOf(server.url, who, credential.id, grantId)).toMatchObject({ orders: 4, notional: '40' });
  });
});

/** A market buy of one AAPL: its notional is the ask (190.12 at the stand-in), read from market data. */
const marketBuy = () => ({
  symbol: 'AAPL',
  qty: '1',
  side: 'buy',
  type: 'market',
  time_in_force: 'day',
  client_order_id: `burst-${randomUUID()}`,
});
const ASK = '190.12';

/**
 * `total` market buys at once, spread round-robin over `urls`, on one
 * credential, while every quote takes `quoteDelayMs`: each order is checked
 * against the usage it read before any of them was counted, so only the count
 * taken in the database can hold the cap. The answers, and how long it took.
 */
async function burst(urls: string[], bearer: string, credentialId: string, total: number, quoteDelayMs: number) {
  brokers.data.failSymbol('AAPL', { kind: 'slow', delayMs: quoteDelayMs, on: ['data'] });
  try {
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: total }, (_, i) =>
        placeOn(urls[i % urls.length] as string, bearer, credentialId, marketBuy()),
      ),
    );
    return { answers, ms: Date.now() - started };
  } finally {
    brokers.data.clearSymbol('AAPL');
  }
}

describe.runIf(dbKind === 'postgres')('daily caps across two server processes on one database (postgres)', () => {
  let tdb: TestDatabase;
  let admin: Database;
  let a: TestServer;
  let b: TestServer;
  let shared: EngineClientCredentials;
  let sharedToken: string;
  const ORDERS = 50;
  const QUOTE_DELAY_MS = 300;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    // Migrated here, then both processes start on it; the client is registered as the CLI would.
    admin = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
    [a, b] = await Promise.all([
      startServer({ db: tdb, env: brokers.env }),
      startServer({ db: tdb, env: brokers.env }),
    ]);
    shared = await registerClient(admin, 'two instances');
    sharedToken = await accessToken(a.url, shared);
    secrets.push(shared.clientSecret, sharedToken);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await admin?.close();
    await tdb?.drop();
  });

  /** Admitted (200) answers per instance, for the report. */
  const perInstance = (answers: EngineResponse[]) =>
    [0, 1].map((n) => answers.filter((r, i) => i % 2 === n && r.status === 200).length);

  it(`maxDailyOrders 10: of ${ORDERS} concurrent orders over both instances exactly 10 reach Alpaca`, async () => {
    // maxOrderNotional (far above one share) makes each order read its quote, which is slow.
    const { who, credential, grantId } = await granted(a.url, shared, {
      maxDailyOrders: 10,
      maxOrderNotional: '1000000',
    });
    const { answers, ms } = await burst([a.url, b.url], sharedToken, credential.id, ORDERS, QUOTE_DELAY_MS);
    const allowed = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status !== 200);
    const [viaA, viaB] = perInstance(answers);
    process.stdout.write(
      `two instances, maxDailyOrders 10: ${allowed.length} of ${ORDERS} admitted (${viaA} via A, ${viaB} via B), ` +
        `${refused.length} refused, ${posts(credential.apiKey).length} POSTs at the stand-in, ${ms} ms\n`,
    );
    expect(allowed).toHaveLength(10);
    expect(refused).toHaveLength(40);
    for (const r of refused) expectDailyCapRefusal(r, 'maxDailyOrders', '10', '11');
    expect(posts(credential.apiKey)).toHaveLength(10);
    const usage = await usageOf(a.url, who, credential.id, grantId);
    // 10 × 190.12.
    expect(usage).toMatchObject({ orders: 10, notional: '1901.2' });
    expect(await usageOf(b.url, who, credential.id, grantId)).toEqual(usage);
    expect(await listedUsageOf(b.url, sharedToken, grantId)).toEqual(usage);

    const { events, text } = await trailOf(b.url, who, credential.id);
    const orders = events.filter((e) => e.engineRequest === 'POST /v2/orders');
    expect(orders.filter((e) => e.action === 'ENGINE_REQUEST')).toHaveLength(10);
    const refusals = orders.filter((e) => e.action === 'ENGINE_REFUSED');
    expect(refusals).toHaveLength(40);
    for (const e of refusals) {
      expect(e).toMatchObject({
        guardrailRule: 'maxDailyOrders',
        engineOrder: expect.objectContaining({ qty: '1', estimatedNotional: ASK, referencePrice: ASK }),
      });
    }
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it(`maxDailyNotional for exactly 7 orders: of ${ORDERS} concurrent orders over both instances exactly 7 reach Alpaca`, async () => {
    // 7 × 190.12 = 1330.84; an eighth would bring it to 1520.96.
    const { who, credential, grantId } = await granted(a.url, shared, { maxDailyNotional: '1330.84' });
    const { answers, ms } = await burst([a.url, b.url], sharedToken, credential.id, ORDERS, QUOTE_DELAY_MS);
    const allowed = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status !== 200);
    const [viaA, viaB] = perInstance(answers);
    process.stdout.write(
      `two instances, maxDailyNotional for 7 orders: ${allowed.length} of ${ORDERS} admitted (${viaA} via A, ` +
        `${viaB} via B), ${refused.length} refused, ${posts(credential.apiKey).length} POSTs at the stand-in, ${ms} ms\n`,
    );
    expect(allowed).toHaveLength(7);
    expect(refused).toHaveLength(43);
    for (const r of refused) expectDailyCapRefusal(r, 'maxDailyNotional', '1330.84', '1520.96');
    expect(posts(credential.apiKey)).toHaveLength(7);
    const usage = await usageOf(b.url, who, credential.id, grantId);
    expect(usage).toMatchObject({ orders: 7, notional: '1330.84' });
    expect(await listedUsageOf(a.url, sharedToken, grantId)).toEqual(usage);
    const { events } = await trailOf(a.url, who, credential.id);
    const refusals = events.filter((e) => e.action === 'ENGINE_REFUSED');
    expect(refusals).toHaveLength(43);
    for (const e of refusals) expect(e.guardrailRule).toBe('maxDailyNotional');
  });
});

describe(`the audit trail of engine requests (${dbKind})`, () => {
  it('holds no key, secret, client secret or token anywhere in what GraphQL answers', async () => {
    // The in-process server's (the two processes above are stopped by now; their trail was searched there).
    const here = trails.filter((t) => t.url === server.url);
    expect(here.length).toBeGreaterThan(5);
    for (const { url, who, credentialId } of here) {
      const { events, text } = await trailOf(url, who, credentialId);
      expect(events.some((e) => e.action === 'ENGINE_REQUEST')).toBe(true);
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });
});
