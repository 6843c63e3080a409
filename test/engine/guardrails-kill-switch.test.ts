// The kill switch is fast and final (docs/engines.md, "Guardrails"): while
// engines keep sending orders to every instance, haltEngineAccess answers,
// and from that moment no order is admitted anywhere: every order sent after
// the answer is refused with rule tradingState, every ENGINE_REQUEST of an
// order happened before it, and nothing more reaches Alpaca than what was
// admitted before it. A change of limits (setEngineGuardrails) takes effect
// on the very next request on another instance. Two server processes on one
// PostgreSQL database; on PGlite (one process per database) the same on one
// in-process instance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { type GraphQLResponse, gql } from '../support/client.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';
import {
  accessToken,
  type EngineClientCredentials,
  type EngineResponse,
  engineRequest,
  grantedCredential,
  marketOrder,
  type Owner,
  proxyPath,
  registerClient,
  setGuardrails,
} from '../support/engine.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { eventually } from '../support/poll.ts';
import { startServer, type TestServer } from '../support/server.ts';

/** The rate limit is not the subject here: high enough for the engines' loops never to meet it. */
const ENV = { ENGINE_RATE_LIMIT: '1000000' };
/** Order loops per instance. */
const LOOPS_PER_INSTANCE = 3;
/** Orders each loop sends after the kill switch answered, at least. */
const SENT_AFTER_HALT = 5;

let brokers: AlpacaStandIns;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
});
afterAll(async () => {
  await brokers?.close();
});

/** What a test needs of the instances it runs on. */
interface Setup {
  /** Every instance's URL; the first one takes the user's GraphQL calls. */
  urls: string[];
  client: EngineClientCredentials;
  token: string;
}

const HALT =
  'mutation($credentialId: UUID) { haltEngineAccess(credentialId: $credentialId) { id guardrails { tradingState } } }';
const EVENTS =
  'query($id: UUID!, $after: String) { credentialEvents(credentialId: $id, first: 100, after: $after) { edges { node { ' +
  'action occurredAt engineClientId engineRequest guardrailRule engineOrder { symbol side type qty clientOrderId } ' +
  'engineResponse { status } } } pageInfo { hasNextPage endCursor } } }';

interface Event {
  action: string;
  occurredAt: string;
  engineClientId: string | null;
  engineRequest: string | null;
  guardrailRule: string | null;
  engineOrder: { symbol: string; side: string; type: string; qty: string | null; clientOrderId: string | null } | null;
  engineResponse: { status: number } | null;
}

async function eventsOf(url: string, who: Owner, credentialId: string): Promise<Event[]> {
  const events: Event[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await gql(url, EVENTS, { id: credentialId, after }, who.session);
    expect(res.body.errors).toBeUndefined();
    const page = res.body.data?.credentialEvents;
    events.push(...page.edges.map((e: { node: Event }) => e.node));
    if (!page.pageInfo.hasNextPage) return events;
    after = page.pageInfo.endCursor;
  }
}

const order = marketOrder;

const place = (url: string, token: string, credentialId: string, body: { client_order_id: string }) =>
  engineRequest(url, 'POST', proxyPath(credentialId, 'v2/orders'), {
    token,
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

/** POSTs of orders that reached the paper stand-in with this key, by client_order_id. */
const postedOrders = (apiKey: string) =>
  brokers.paper.requests
    .filter((r) => r.apiKey === apiKey && r.method === 'POST' && r.path === '/v2/orders')
    .map((r) => (JSON.parse(r.body) as { client_order_id: string }).client_order_id);

interface Sent {
  instance: number;
  clientOrderId: string;
  /** Date.now() right before the request went out, and once its answer was in. */
  sentAt: number;
  answeredAt: number;
  res: EngineResponse;
}

async function haltWhileTrading({ urls, client, token }: Setup) {
  const [userUrl] = urls as [string];
  const { who, credential } = await grantedCredential(userUrl, brokers.paper, client.clientId);
  const sent: Sent[] = [];
  let stop = false;
  /** Set when the scenario failed before the switch: the loops end at once. */
  let abandoned = false;
  let haltAnsweredAt = Number.POSITIVE_INFINITY;
  const loop = async (instance: number) => {
    const url = urls[instance] as string;
    let afterHalt = 0;
    while (!abandoned && (!stop || afterHalt < SENT_AFTER_HALT)) {
      const body = order();
      const sentAt = Date.now();
      const res = await place(url, token, credential.id, body);
      sent.push({ instance, clientOrderId: body.client_order_id, sentAt, answeredAt: Date.now(), res });
      if (sentAt > haltAnsweredAt) afterHalt += 1;
    }
  };
  const loops = urls.flatMap((_, instance) => Array.from({ length: LOOPS_PER_INSTANCE }, () => loop(instance)));

  let haltSentAt: number;
  let halted: GraphQLResponse;
  let postsAtAnswer: number;
  try {
    // Trading on every instance before the switch.
    await eventually('orders admitted on every instance', () =>
      urls.every((_, i) => sent.filter((s) => s.instance === i && s.res.status === 200).length >= 10),
    );
    haltSentAt = Date.now();
    halted = await gql(userUrl, HALT, { credentialId: credential.id }, who.session);
    haltAnsweredAt = Date.now();
    postsAtAnswer = postedOrders(credential.apiKey).length;
    stop = true;
  } catch (error) {
    abandoned = true;
    throw error;
  } finally {
    await Promise.all(loops);
  }
  expect(halted.body.errors).toBeUndefined();
  expect(halted.body.data?.haltEngineAccess).toEqual([
    { id: expect.any(String), guardrails: { tradingState: 'HALTED' } },
  ]);

  // Every order sent after the answer: refused by tradingState, on every instance.
  const after = sent.filter((s) => s.sentAt > haltAnsweredAt);
  expect(after.length).toBeGreaterThanOrEqual(urls.length * LOOPS_PER_INSTANCE * SENT_AFTER_HALT);
  const admittedAfter = after.filter((s) => s.res.status !== 403);
  for (const s of after) {
    expect(s.res.status, s.res.text).toBe(403);
    expect(s.res.json.error).toMatchObject({
      code: 'GUARDRAIL_REFUSED',
      rule: 'tradingState',
      limit: 'HALTED',
      value: 'buy 1',
    });
    expect(s.res.json.error.message).toMatch(/tradingState is HALTED/);
  }

  // Alpaca received exactly the orders admitted, none of them sent after the answer; and no more arrive.
  const admitted = sent.filter((s) => s.res.status === 200);
  expect(sent.filter((s) => s.res.status !== 200 && s.res.status !== 403)).toEqual([]);
  const posted = postedOrders(credential.apiKey);
  expect([...posted].sort()).toEqual(admitted.map((s) => s.clientOrderId).sort());
  const sentAfter = new Set(after.map((s) => s.clientOrderId));
  expect(posted.filter((id) => sentAfter.has(id))).toEqual([]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(postedOrders(credential.apiKey)).toHaveLength(posted.length);

  // The trail: every admitted order's event happened before the answer; every refusal has its event.
  const events = (await eventsOf(urls.at(-1) as string, who, credential.id)).filter(
    (e) => e.engineRequest === 'POST /v2/orders',
  );
  const requests = events.filter((e) => e.action === 'ENGINE_REQUEST');
  expect(requests).toHaveLength(admitted.length);
  const lastAdmittedAt = Math.max(...requests.map((e) => Date.parse(e.occurredAt)));
  expect(lastAdmittedAt).toBeLessThanOrEqual(haltAnsweredAt);
  const refusals = events.filter((e) => e.action === 'ENGINE_REFUSED');
  expect(refusals).toHaveLength(sent.filter((s) => s.res.status === 403).length);
  for (const e of refusals) {
    expect(e).toMatchObject({
      engineClientId: client.clientId,
      guardrailRule: 'tradingState',
      engineOrder: { symbol: 'AAPL', side: 'buy', type: 'market', qty: '1', clientOrderId: expect.any(String) },
      engineResponse: null,
    });
  }
  // Every instance's engine sees the halt in its own listing.
  for (const url of urls) {
    const listed = await engineRequest(url, 'GET', '/engine/v1/grants', { token });
    const mine = listed.json.grants.find((g: { credentialId: string }) => g.credentialId === credential.id);
    expect(mine.guardrails.tradingState).toBe('HALTED');
  }

  const figures = {
    instances: urls.length,
    loops: urls.length * LOOPS_PER_INSTANCE,
    haltMs: haltAnsweredAt - haltSentAt,
    admittedBefore: admitted.length,
    postsAtAnswer,
    postsAfterAnswer: posted.length - postsAtAnswer,
    inFlightAtAnswer: sent.filter((s) => s.sentAt <= haltAnsweredAt && s.answeredAt > haltAnsweredAt).length,
    sentAfter: after.length,
    admittedAfter: admittedAfter.length,
    lastAdmittedEventBeforeAnswerMs: haltAnsweredAt - lastAdmittedAt,
  };
  process.stdout.write(`kill switch (${dbKind}): ${JSON.stringify(figures)}\n`);
  expect(figures.admittedAfter).toBe(0);
}

/**
 * Orders checked under ACTIVE and waiting for their quote when the switch is
 * thrown: where each is admitted it is checked again, and refused.
 */
async function haltBetweenCheckAndAdmission({ urls, client, token }: Setup) {
  const [userUrl] = urls as [string];
  // maxOrderNotional makes each market order read its quote, which the stand-in holds back.
  const { who, credential } = await grantedCredential(userUrl, brokers.paper, client.clientId, {
    guardrails: { maxOrderNotional: '1000000' },
  });
  const quotes = () => brokers.data.counts(credential.apiKey).quotes;
  const waiting = urls.flatMap((url) => [0, 1, 2].map(() => ({ url, body: order() })));
  brokers.data.failSymbol('AAPL', { kind: 'slow', delayMs: 3000, on: ['data'] });
  let answers: EngineResponse[];
  try {
    const pending = Promise.all(waiting.map(({ url, body }) => place(url, token, credential.id, body)));
    // Every order has passed its first check (ACTIVE) and asked for its quote.
    await eventually('every order waiting for its quote', () => quotes() >= waiting.length);
    const halted = await gql(userUrl, HALT, { credentialId: credential.id }, who.session);
    expect(halted.body.errors).toBeUndefined();
    answers = await pending;
  } finally {
    brokers.data.clearSymbol('AAPL');
  }
  for (const res of answers) {
    expect(res.status, res.text).toBe(403);
    expect(res.json.error).toMatchObject({ code: 'GUARDRAIL_REFUSED', rule: 'tradingState', limit: 'HALTED' });
  }
  expect(postedOrders(credential.apiKey)).toEqual([]);
  expect(brokers.paper.counts(credential.apiKey).changes).toBe(0);
  const events = await eventsOf(userUrl, who, credential.id);
  expect(events.filter((e) => e.action === 'ENGINE_REQUEST')).toEqual([]);
  const refusals = events.filter((e) => e.action === 'ENGINE_REFUSED');
  expect(refusals.map((e) => e.engineOrder?.clientOrderId).sort()).toEqual(
    waiting.map((w) => w.body.client_order_id).sort(),
  );
  for (const e of refusals) expect(e.guardrailRule).toBe('tradingState');
}

/** setEngineGuardrails through the first instance; the very next order through the last one meets it. */
async function changeMeetsNextRequest({ urls, client, token }: Setup) {
  const [userUrl] = urls as [string];
  const engineUrl = urls.at(-1) as string;
  const { who, credential, grantId } = await grantedCredential(userUrl, brokers.paper, client.clientId, {
    guardrails: { maxOrderNotional: '5000' },
  });
  // qty × limit_price: 1,000 USD.
  const limitBuy = () => order({ qty: '10', type: 'limit', limit_price: '100' });
  const refusedIds: string[] = [];
  for (let round = 0; round < 5; round += 1) {
    expect((await place(engineUrl, token, credential.id, limitBuy())).status).toBe(200);
    await setGuardrails(userUrl, who, grantId, { maxOrderNotional: '500' });
    const changes = brokers.paper.counts(credential.apiKey).changes;
    const body = limitBuy();
    const refused = await place(engineUrl, token, credential.id, body);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.json.error).toMatchObject({
      code: 'GUARDRAIL_REFUSED',
      rule: 'maxOrderNotional',
      limit: '500',
      value: '1000',
    });
    expect(refused.json.error.message).toContain('estimated notional 1,000.00 USD is over maxOrderNotional 500 USD');
    expect(brokers.paper.counts(credential.apiKey).changes).toBe(changes);
    refusedIds.push(body.client_order_id);
    await setGuardrails(userUrl, who, grantId, { maxOrderNotional: '5000' });
  }
  expect((await place(engineUrl, token, credential.id, limitBuy())).status).toBe(200);
  const refusals = (await eventsOf(userUrl, who, credential.id)).filter((e) => e.action === 'ENGINE_REFUSED');
  expect(refusals.map((e) => e.engineOrder?.clientOrderId).sort()).toEqual([...refusedIds].sort());
  for (const e of refusals) expect(e.guardrailRule).toBe('maxOrderNotional');
}

describe.runIf(dbKind === 'postgres')('kill switch and changes of limits on two server processes (postgres)', () => {
  let tdb: TestDatabase;
  let admin: Database;
  let servers: TestServer[] = [];
  const setup = {} as Setup;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    admin = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
    servers = await Promise.all([0, 1].map(() => startServer({ db: tdb, env: { ...brokers.env, ...ENV } })));
    setup.urls = servers.map((s) => s.url);
    setup.client = await registerClient(admin, 'kill switch');
    setup.token = await accessToken(setup.urls[0] as string, setup.client);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await admin?.close();
    await tdb?.drop();
  });

  it('haltEngineAccess on one instance: from its answer on, no order is admitted on either', () =>
    haltWhileTrading(setup));

  it('haltEngineAccess refuses the orders already checked but not yet admitted, on either instance', () =>
    haltBetweenCheckAndAdmission(setup));

  it('setEngineGuardrails on one instance takes effect on the very next request on the other', () =>
    changeMeetsNextRequest(setup));
});

describe.runIf(dbKind === 'pglite')('kill switch and changes of limits on one instance (pglite)', () => {
  let server: InProcessServer;
  const setup = {} as Setup;

  beforeAll(async () => {
    server = await startInProcess({ env: { ...brokers.env, ...ENV } });
    setup.urls = [server.url];
    setup.client = await registerClient(server.db, 'kill switch');
    setup.token = await accessToken(server.url, setup.client);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('haltEngineAccess: from its answer on, no order is admitted', () => haltWhileTrading(setup));

  it('haltEngineAccess refuses the orders already checked but not yet admitted', () =>
    haltBetweenCheckAndAdmission(setup));

  it('setEngineGuardrails takes effect on the very next request', () => changeMeetsNextRequest(setup));
});
