// Setting a grant's guardrails in GraphQL (docs/engines.md, "Guardrails"), on
// the real server in-process and a real database: the defaults, every refusal
// of a bad value (naming the field, writing nothing), setEngineGuardrails and
// its events, the kill switch haltEngineAccess, usageToday, and what the
// audit trail shows of engine requests (the order, the rule, Alpaca's answer).
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACTIVE_GRANTS_PER_CREDENTIAL_MAX } from '../../src/domain/engine-grants.ts';
import { tradingDay } from '../../src/domain/guardrails.ts';
import { errorOf, type GraphQLResponse, gql } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { grant, type Owner, owner, registerClient, revokeGrant, storeCredential } from '../support/engine.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { countStatements } from '../support/statement-counter.ts';

const statements: string[] = [];
const server = useInProcessServer({ instrument: countStatements((sql) => statements.push(sql)) });

const GUARDRAILS =
  'guardrails { tradingState symbols assetClasses orderTypes allowShortSelling allowExtendedHours ' +
  'allowAccountWideActions maxOrderNotional maxOrderQuantity maxDailyNotional maxDailyOrders priceCollarPercent }';
const GRANT_FIELDS = `id isActive ${GUARDRAILS} usageToday { tradingDay orders notional }`;
const GRANT = `mutation($input: GrantEngineAccessInput!) { grantEngineAccess(input: $input) { ${GRANT_FIELDS} } }`;
const SET = `mutation($grantId: UUID!, $input: EngineGuardrailsInput!) { setEngineGuardrails(grantId: $grantId, input: $input) { ${GRANT_FIELDS} } }`;
const HALT =
  'mutation($credentialId: UUID) { haltEngineAccess(credentialId: $credentialId) { id credentialId guardrails { tradingState } } }';
const GRANTS = `query($id: UUID!) { credential(id: $id) { engineGrants { ${GRANT_FIELDS} } } }`;
const EVENTS =
  'query($id: UUID!) { credentialEvents(credentialId: $id, first: 100) { edges { node { id action changedFields ' +
  'engineClientId engineRequest clientIp userAgent guardrailRule engineOrder { symbol side type qty notional ' +
  'clientOrderId estimatedNotional referencePrice } engineResponse { status brokerRequestId } } } } }';

/** The defaults a grant has unless told otherwise. */
const DEFAULTS = {
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
};

interface Event {
  id: string;
  action: string;
  changedFields: string[];
  engineClientId: string | null;
  engineRequest: string | null;
  clientIp: string | null;
  userAgent: string | null;
  guardrailRule: string | null;
  engineOrder: Record<string, unknown> | null;
  engineResponse: Record<string, unknown> | null;
}

function ok<T = any>(res: GraphQLResponse, field: string): T {
  expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  return res.body.data?.[field] as T;
}

async function eventsOf(who: Owner, credentialId: string): Promise<Event[]> {
  const res = await gql(server.url, EVENTS, { id: credentialId }, who.session);
  return ok(res, 'credentialEvents').edges.map((e: { node: Event }) => e.node);
}

async function grantsOf(who: Owner, credentialId: string): Promise<Record<string, any>[]> {
  return ok(await gql(server.url, GRANTS, { id: credentialId }, who.session), 'credential').engineGrants;
}

const setGuardrails = (who: Owner, grantId: string, input: Record<string, unknown>) =>
  gql(server.url, SET, { grantId, input }, who.session);

/** A user, a credential of theirs and a grant of a new client on it (with `guardrails`, when given). */
async function granted(guardrails?: Record<string, unknown>, who?: Owner) {
  const user = who ?? (await owner(server.url));
  const credential = await storeCredential(server.url, user);
  const client = await registerClient(server.db);
  const res = await gql(
    server.url,
    GRANT,
    {
      input: {
        credentialId: credential.id,
        clientId: client.clientId,
        scopes: ['TRADE'],
        ...(guardrails ? { guardrails } : {}),
      },
    },
    user.session,
  );
  const made = ok(res, 'grantEngineAccess');
  return { who: user, credential, client, grant: made as Record<string, any> & { id: string } };
}

/** Every value `setEngineGuardrails` must refuse, with the field it names (setting limits). */
const INVALID: [string, Record<string, unknown>, string][] = [
  ['a negative cap', { maxOrderNotional: '-5' }, 'maxOrderNotional'],
  ['a zero cap', { maxDailyNotional: '0' }, 'maxDailyNotional'],
  ['a zero quantity cap', { maxOrderQuantity: '0.000' }, 'maxOrderQuantity'],
  ['more than 9 decimals', { maxOrderQuantity: '0.0000000001' }, 'maxOrderQuantity'],
  ['more than 18 digits before the point', { maxDailyNotional: '1000000000000000000' }, 'maxDailyNotional'],
  ['a number instead of a string', { maxOrderNotional: 5000 }, 'maxOrderNotional'],
  ['an exponent', { maxOrderNotional: '5e3' }, 'maxOrderNotional'],
  ['a zero collar', { priceCollarPercent: '0' }, 'priceCollarPercent'],
  ['a collar over 1000 %', { priceCollarPercent: '1000.5' }, 'priceCollarPercent'],
  ['zero daily orders', { maxDailyOrders: 0 }, 'maxDailyOrders'],
  ['an empty assetClasses', { assetClasses: [] }, 'assetClasses'],
  ['an empty orderTypes', { orderTypes: [] }, 'orderTypes'],
  ['an unknown order type', { orderTypes: ['ICEBERG'] }, 'orderTypes'],
  ['an empty symbols list', { symbols: [] }, 'symbols'],
  ['more than 500 symbols', { symbols: Array.from({ length: 501 }, (_, i) => `S${i}`) }, 'symbols'],
  ['a symbol with a space', { symbols: ['AAPL', 'BRK B'] }, 'symbols'],
  ['a symbol of 16 characters', { symbols: ['ABCDEFGHIJKLMNOP'] }, 'symbols'],
  ['an empty symbol', { symbols: [''] }, 'symbols'],
  ['a pair with two slashes', { symbols: ['BTC/USD/X'] }, 'symbols'],
  ['a symbol with a dollar sign', { symbols: ['$AAPL'] }, 'symbols'],
  ['a cleared tradingState', { tradingState: null }, 'tradingState'],
  ['a cleared assetClasses', { assetClasses: null }, 'assetClasses'],
  ['a cleared flag', { allowShortSelling: null }, 'allowShortSelling'],
];

describe(`guardrails of a grant: defaults and refusals (${dbKind})`, () => {
  let bob: Awaited<ReturnType<typeof granted>>;

  beforeAll(async () => {
    bob = await granted();
  });

  it('gives a grant made without guardrails the defaults, and leaves no GUARDRAILS_CHANGED event', async () => {
    expect(bob.grant.guardrails).toEqual(DEFAULTS);
    const events = await eventsOf(bob.who, bob.credential.id);
    expect(events.map((e) => e.action)).toEqual(['ACCESS_GRANTED', 'STORED']);
  });

  it('gives a grant row written without the guardrail columns (as before them) the defaults', async () => {
    const client = await registerClient(server.db);
    const [row] = await server.db.unscopedClient.$queryRawUnsafe<{ id: string }[]>(
      `INSERT INTO engine_grants (user_id, credential_id, client_id, scopes)
       VALUES ($1, $2::uuid, $3, ARRAY['READ']) RETURNING id::text AS id`,
      bob.who.session.user.id,
      bob.credential.id,
      client.clientId,
    );
    const grants = await grantsOf(bob.who, bob.credential.id);
    expect(grants.find((g) => g.id === row?.id)?.guardrails).toEqual(DEFAULTS);
  });

  it('applies grantEngineAccess guardrails over the defaults, with one event naming the fields that differ', async () => {
    const {
      who,
      credential,
      client,
      grant: made,
    } = await granted({
      maxOrderNotional: '5000.50',
      tradingState: 'ACTIVE',
      assetClasses: ['CRYPTO', 'US_EQUITY', 'CRYPTO'],
      symbols: ['aapl', 'BTC/usd'],
    });
    expect(made.guardrails).toEqual({
      ...DEFAULTS,
      maxOrderNotional: '5000.5',
      assetClasses: ['US_EQUITY', 'CRYPTO'],
      symbols: ['AAPL', 'BTC/USD'],
    });
    const events = await eventsOf(who, credential.id);
    expect(events.map((e) => [e.action, e.changedFields, e.engineClientId])).toEqual([
      ['GUARDRAILS_CHANGED', ['symbols', 'assetClasses', 'maxOrderNotional'], client.clientId],
      ['ACCESS_GRANTED', [], client.clientId],
      ['STORED', [], null],
    ]);
    // The request's origin, as ACCESS_GRANTED has it.
    expect(events[0]).toMatchObject({ clientIp: events[1]?.clientIp, userAgent: events[1]?.userAgent });
    expect(events[0]?.userAgent).toEqual(expect.any(String));
    // Stored upper case.
    const stored = await server.db.unscopedClient.engineGrant.findUniqueOrThrow({
      where: { id: made.id },
      select: { symbols: true },
    });
    expect(stored.symbols).toEqual(['AAPL', 'BTC/USD']);

    // Guardrails equal to the defaults leave no event.
    const same = await granted({ tradingState: 'ACTIVE', assetClasses: ['US_EQUITY'], maxOrderNotional: null });
    expect(same.grant.guardrails).toEqual(DEFAULTS);
    expect((await eventsOf(same.who, same.credential.id)).map((e) => e.action)).toEqual(['ACCESS_GRANTED', 'STORED']);
  });

  it('keeps exact decimals at the bounds: 18 digits before the point and 9 after', async () => {
    const res = await setGuardrails(bob.who, bob.grant.id, {
      maxDailyNotional: '999999999999999999.999999999',
      maxOrderQuantity: '0.000000001',
      priceCollarPercent: '1000',
      maxDailyOrders: 1_000_000,
    });
    expect(ok(res, 'setEngineGuardrails').guardrails).toMatchObject({
      maxDailyNotional: '999999999999999999.999999999',
      maxOrderQuantity: '0.000000001',
      priceCollarPercent: '1000',
      maxDailyOrders: 1_000_000,
    });
    const cleared = await setGuardrails(bob.who, bob.grant.id, {
      maxDailyNotional: null,
      maxOrderQuantity: null,
      priceCollarPercent: null,
      maxDailyOrders: null,
    });
    expect(ok(cleared, 'setEngineGuardrails').guardrails).toEqual(DEFAULTS);
  });

  it('refuses every invalid value with BAD_USER_INPUT naming the field, and writes nothing', async () => {
    const before = await eventsOf(bob.who, bob.credential.id);
    for (const [what, input, field] of INVALID) {
      const res = await setGuardrails(bob.who, bob.grant.id, input);
      expect(errorOf(res), what).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(res.body.data?.setEngineGuardrails ?? null, what).toBeNull();
      expect(res.status, what).toBeLessThan(500);
    }
    // A valid field beside an invalid one is not applied either.
    const mixed = await setGuardrails(bob.who, bob.grant.id, { maxOrderNotional: '100', orderTypes: [] });
    expect(errorOf(mixed)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'orderTypes' });
    expect((await grantsOf(bob.who, bob.credential.id)).find((g) => g.id === bob.grant.id)?.guardrails).toEqual(
      DEFAULTS,
    );
    expect(await eventsOf(bob.who, bob.credential.id)).toEqual(before);
  });

  it('names the nested field on grantEngineAccess (guardrails.<field>), and grants nothing', async () => {
    const who = await owner(server.url);
    const credential = await storeCredential(server.url, who);
    const client = await registerClient(server.db);
    for (const [what, input, field] of INVALID) {
      const res = await gql(
        server.url,
        GRANT,
        { input: { credentialId: credential.id, clientId: client.clientId, scopes: ['READ'], guardrails: input } },
        who.session,
      );
      expect(errorOf(res), what).toMatchObject({ code: 'BAD_USER_INPUT', field: `guardrails.${field}` });
    }
    expect(await grantsOf(who, credential.id)).toEqual([]);
    expect((await eventsOf(who, credential.id)).map((e) => e.action)).toEqual(['STORED']);
  });

  it('refuses a Decimal written as a number or negative in the document itself, before anything runs', async () => {
    for (const [value, message] of [
      ['5000', 'A Decimal must be a decimal number sent as a string, like "5000" or "0.25".'],
      ['0.25', 'A Decimal must be a decimal number sent as a string, like "5000" or "0.25".'],
      ['"-5"', 'A Decimal must not be negative.'],
    ]) {
      statements.length = 0;
      const res = await gql(
        server.url,
        `mutation { setEngineGuardrails(grantId: "${bob.grant.id}", input: { maxOrderNotional: ${value} }) { id } }`,
        undefined,
        bob.who.session,
      );
      expect(res.status).toBe(400);
      expect(res.body.errors?.[0]).toMatchObject({
        message,
        locations: [{ line: 1, column: expect.any(Number) }],
        extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
      });
      expect(statements.filter((sql) => /engine_grants/.test(sql))).toEqual([]);
    }
  });
});

describe(`setEngineGuardrails (${dbKind})`, () => {
  it('changes the given fields, with one event naming exactly those that changed, and none for a no-op', async () => {
    const { who, credential, client, grant: made } = await granted();
    const input = {
      maxOrderNotional: '5000',
      symbols: ['msft', 'aapl', 'AAPL'],
      tradingState: 'ACTIVE',
      allowShortSelling: false,
      orderTypes: ['LIMIT', 'MARKET'],
    };
    const first = ok(await setGuardrails(who, made.id, input), 'setEngineGuardrails');
    expect(first.guardrails).toEqual({
      ...DEFAULTS,
      maxOrderNotional: '5000',
      symbols: ['AAPL', 'MSFT'],
      orderTypes: ['MARKET', 'LIMIT'],
    });
    // The same values again, written differently: nothing changes.
    ok(
      await setGuardrails(who, made.id, { ...input, maxOrderNotional: '5000.000', symbols: ['MSFT', 'aapl'] }),
      'setEngineGuardrails',
    );
    ok(await setGuardrails(who, made.id, {}), 'setEngineGuardrails');
    const cleared = ok(
      await setGuardrails(who, made.id, { maxOrderNotional: null, symbols: null, tradingState: 'REDUCING' }),
      'setEngineGuardrails',
    );
    expect(cleared.guardrails).toEqual({ ...DEFAULTS, orderTypes: ['MARKET', 'LIMIT'], tradingState: 'REDUCING' });
    const events = await eventsOf(who, credential.id);
    expect(events.map((e) => [e.action, e.changedFields, e.engineClientId])).toEqual([
      ['GUARDRAILS_CHANGED', ['tradingState', 'symbols', 'maxOrderNotional'], client.clientId],
      ['GUARDRAILS_CHANGED', ['symbols', 'orderTypes', 'maxOrderNotional'], client.clientId],
      ['ACCESS_GRANTED', [], client.clientId],
      ['STORED', [], null],
    ]);
    // The trigger bumps the version the proxy checks against once per real change.
    const row = await server.db.unscopedClient.engineGrant.findUniqueOrThrow({
      where: { id: made.id },
      select: { guardrailsVersion: true },
    });
    expect(row.guardrailsVersion).toBe(3);
  });

  it('serialises concurrent changes of one grant: each event names what really changed', async () => {
    const { who, credential, grant: made } = await granted();
    const results = await Promise.all(
      Array.from({ length: 4 }, () => setGuardrails(who, made.id, { maxOrderNotional: '100' })),
    );
    for (const res of results) expect(ok(res, 'setEngineGuardrails').guardrails.maxOrderNotional).toBe('100');
    const changes = (await eventsOf(who, credential.id)).filter((e) => e.action === 'GUARDRAILS_CHANGED');
    expect(changes.map((e) => e.changedFields)).toEqual([['maxOrderNotional']]);
  });

  it("answers NOT_FOUND for a revoked, an expired, another user's or an absent grant, and changes none", async () => {
    const { who, credential, grant: revoked } = await granted();
    expect(errorOf(await revokeGrant(server.url, who, revoked.id)).code).toBeUndefined();
    const client = await registerClient(server.db);
    const expiring = await grant(server.url, who, {
      credentialId: credential.id,
      clientId: client.clientId,
      scopes: ['READ'],
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    await server.db.unscopedClient.engineGrant.update({
      where: { id: expiring.id },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    const other = await granted();
    const absent = await setGuardrails(who, randomUUID(), { maxOrderNotional: '1' });
    expect(errorOf(absent)).toMatchObject({ code: 'NOT_FOUND', message: 'Engine grant not found.' });
    for (const id of [revoked.id, expiring.id, other.grant.id]) {
      const res = await setGuardrails(who, id, { maxOrderNotional: '1' });
      expect(res.body).toEqual(absent.body);
    }
    // Invalid input on a grant that is not there: still NOT_FOUND (nothing says it exists).
    expect(errorOf(await setGuardrails(who, other.grant.id, { orderTypes: [] })).code).toBe('NOT_FOUND');
    expect((await grantsOf(who, credential.id)).map((g) => g.guardrails)).toEqual([DEFAULTS, DEFAULTS]);
    expect((await grantsOf(other.who, other.credential.id))[0]?.guardrails).toEqual(DEFAULTS);
    expect((await eventsOf(other.who, other.credential.id)).map((e) => e.action)).toEqual(['ACCESS_GRANTED', 'STORED']);
  });
});

describe(`haltEngineAccess, the kill switch (${dbKind})`, () => {
  it('halts every grant in force, or those on one credential, with an event per grant changed', async () => {
    const who = await owner(server.url);
    const [a, b] = [await storeCredential(server.url, who), await storeCredential(server.url, who)];
    const [x, y, z] = [
      await registerClient(server.db),
      await registerClient(server.db),
      await registerClient(server.db),
    ];
    const ax = await grant(server.url, who, { credentialId: a.id, clientId: x.clientId, scopes: ['TRADE'] });
    const ay = await grant(server.url, who, { credentialId: a.id, clientId: y.clientId, scopes: ['TRADE'] });
    const az = await grant(server.url, who, { credentialId: a.id, clientId: z.clientId, scopes: ['READ'] });
    await revokeGrant(server.url, who, az.id);
    const bx = await grant(server.url, who, { credentialId: b.id, clientId: x.clientId, scopes: ['TRADE'] });
    ok(await setGuardrails(who, ay.id, { tradingState: 'REDUCING' }), 'setEngineGuardrails');
    const eventsBefore = (await eventsOf(who, b.id)).length;

    const onA = ok(await gql(server.url, HALT, { credentialId: a.id }, who.session), 'haltEngineAccess');
    expect(onA).toEqual([
      { id: ay.id, credentialId: a.id, guardrails: { tradingState: 'HALTED' } },
      { id: ax.id, credentialId: a.id, guardrails: { tradingState: 'HALTED' } },
    ]);
    const aEvents = await eventsOf(who, a.id);
    expect(
      aEvents
        .slice(0, 2)
        .map((e) => [e.action, e.changedFields, e.engineClientId])
        .sort(),
    ).toEqual(
      [
        ['GUARDRAILS_CHANGED', ['tradingState'], x.clientId],
        ['GUARDRAILS_CHANGED', ['tradingState'], y.clientId],
      ].sort(),
    );
    expect(aEvents[0]?.userAgent).toEqual(expect.any(String));
    expect(aEvents[2]).toMatchObject({ action: 'GUARDRAILS_CHANGED', changedFields: ['tradingState'] });
    expect((await eventsOf(who, b.id)).length).toBe(eventsBefore);

    // All of the caller's: only b's grant was still trading.
    const all = ok(await gql(server.url, HALT, {}, who.session), 'haltEngineAccess');
    expect(all).toEqual([{ id: bx.id, credentialId: b.id, guardrails: { tradingState: 'HALTED' } }]);
    expect(await eventsOf(who, b.id)).toHaveLength(eventsBefore + 1);
    // Everything halted already: nothing changes, no event.
    expect(ok(await gql(server.url, HALT, {}, who.session), 'haltEngineAccess')).toEqual([]);
    expect(ok(await gql(server.url, HALT, { credentialId: a.id }, who.session), 'haltEngineAccess')).toEqual([]);
    expect(await eventsOf(who, a.id)).toEqual(aEvents);
    // The revoked grant stayed as it was.
    const grants = await grantsOf(who, a.id);
    expect(grants.find((g) => g.id === az.id)?.guardrails.tradingState).toBe('ACTIVE');
  });

  it('halts each grant once when two kill switches race', async () => {
    const who = await owner(server.url);
    const credential = await storeCredential(server.url, who);
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const client = await registerClient(server.db);
      ids.push(
        (await grant(server.url, who, { credentialId: credential.id, clientId: client.clientId, scopes: ['TRADE'] }))
          .id,
      );
    }
    const answers = await Promise.all([gql(server.url, HALT, {}, who.session), gql(server.url, HALT, {}, who.session)]);
    const halted = answers.flatMap((res) => ok<{ id: string }[]>(res, 'haltEngineAccess').map((g) => g.id));
    expect(halted.sort()).toEqual([...ids].sort());
    const events = (await eventsOf(who, credential.id)).filter((e) => e.action === 'GUARDRAILS_CHANGED');
    expect(events).toHaveLength(3);
  });

  it("answers NOT_FOUND for another user's credential or an absent one, and halts nothing", async () => {
    const victim = await granted();
    const attacker = await owner(server.url);
    const foreign = await gql(server.url, HALT, { credentialId: victim.credential.id }, attacker.session);
    const absent = await gql(server.url, HALT, { credentialId: randomUUID() }, attacker.session);
    expect(errorOf(absent)).toMatchObject({ code: 'NOT_FOUND', message: 'Credential not found.' });
    expect(foreign.body).toEqual(absent.body);
    // The attacker's own (empty) set of grants: halting all touches nobody else's.
    expect(ok(await gql(server.url, HALT, {}, attacker.session), 'haltEngineAccess')).toEqual([]);
    expect((await grantsOf(victim.who, victim.credential.id))[0]?.guardrails.tradingState).toBe('ACTIVE');
    expect((await eventsOf(victim.who, victim.credential.id)).map((e) => e.action)).toEqual([
      'ACCESS_GRANTED',
      'STORED',
    ]);
  });

  it(`refuses a grant to an ${ACTIVE_GRANTS_PER_CREDENTIAL_MAX + 1}th client on one credential (LIMIT_EXCEEDED), writing nothing`, async () => {
    const who = await owner(server.url);
    const credential = await storeCredential(server.url, who);
    const clients = [];
    for (let i = 0; i < ACTIVE_GRANTS_PER_CREDENTIAL_MAX; i += 1) {
      const client = await registerClient(server.db);
      clients.push(client);
      await grant(server.url, who, { credentialId: credential.id, clientId: client.clientId, scopes: ['READ'] });
    }
    const events = await eventsOf(who, credential.id);
    const extra = await registerClient(server.db);
    const refused = await gql(
      server.url,
      GRANT,
      { input: { credentialId: credential.id, clientId: extra.clientId, scopes: ['READ'] } },
      who.session,
    );
    expect(errorOf(refused).code).toBe('LIMIT_EXCEEDED');
    expect(refused.body.errors?.[0]?.extensions?.limit).toBe('ACTIVE_GRANTS_PER_CREDENTIAL');
    expect(await eventsOf(who, credential.id)).toEqual(events);
    // Replacing a client's own grant is still allowed, and so is a grant once one is revoked.
    await grant(server.url, who, { credentialId: credential.id, clientId: clients[0]!.clientId, scopes: ['TRADE'] });
    const [newest] = await grantsOf(who, credential.id);
    expect(errorOf(await revokeGrant(server.url, who, newest!.id)).code).toBeUndefined();
    await grant(server.url, who, { credentialId: credential.id, clientId: extra.clientId, scopes: ['READ'] });
  });
});

describe(`usageToday (${dbKind})`, () => {
  it("is zeros on today's trading day (America/New_York) before the first order", async () => {
    const before = tradingDay(new Date());
    const { grant: made } = await granted();
    const after = tradingDay(new Date());
    expect(made.usageToday.orders).toBe(0);
    expect(made.usageToday.notional).toBe('0');
    // Midnight in New York may fall between the two readings.
    expect([before, after]).toContain(made.usageToday.tradingDay);
  });

  it("shows today's counts, and zeros when the latest counts are of another day", async () => {
    const { who, credential, grant: made } = await granted();
    const other = await granted(undefined, who);
    const userId = who.session.user.id;
    // As the proxy counts (src/engine/admission.ts): today's row, keyed by the database's trading day.
    await server.db.unscopedClient.$executeRawUnsafe(
      `INSERT INTO engine_grant_usage (grant_id, trading_day, user_id, orders, notional) VALUES
         ($1::uuid, engine_trading_day(now()), $2, 3, 1234.500000000),
         ($1::uuid, engine_trading_day(now()) - 1, $2, 40, 99),
         ($3::uuid, engine_trading_day(now()) - 1, $2, 7, 700)`,
      made.id,
      userId,
      other.grant.id,
    );
    const [today] = await server.db.unscopedClient.$queryRawUnsafe<{ day: string }[]>(
      'SELECT engine_trading_day(now())::text AS day',
    );
    const [grantNow] = await grantsOf(who, credential.id);
    expect(grantNow?.usageToday).toEqual({ tradingDay: today?.day, orders: 3, notional: '1234.5' });
    const [otherNow] = await grantsOf(who, other.credential.id);
    expect(otherNow?.usageToday).toEqual({ tradingDay: today?.day, orders: 0, notional: '0' });
  });

  it('reads the usage of a whole list of grants with the grants, and the trading day once', async () => {
    const { who, credential } = await granted();
    for (let i = 0; i < 3; i += 1) {
      const client = await registerClient(server.db);
      await grant(server.url, who, { credentialId: credential.id, clientId: client.clientId, scopes: ['READ'] });
    }
    statements.length = 0;
    const res = await gql(
      server.url,
      '{ accounts { credentials { engineGrants { id usageToday { tradingDay orders notional } } } } }',
      undefined,
      who.session,
    );
    expect(ok(res, 'accounts')[0].credentials[0].engineGrants).toHaveLength(4);
    expect(statements.filter((sql) => /engine_grant_usage/.test(sql))).toHaveLength(1);
    expect(statements.filter((sql) => /engine_trading_day/.test(sql))).toHaveLength(1);
  });
});

describe(`engine events in the audit trail (${dbKind})`, () => {
  it('shows the order, the rule and Alpaca’s answer; null on every other kind of event', async () => {
    const { who, credential, client, grant: made } = await granted();
    ok(await setGuardrails(who, made.id, { maxOrderNotional: '100' }), 'setEngineGuardrails');
    const userId = who.session.user.id;
    // Written as the proxy writes them (src/engine/admission.ts): events, then the answer's companion row.
    const insert = (action: string, rule: string | null, order: unknown) =>
      server.db.unscopedClient.$queryRawUnsafe<{ id: string }[]>(
        `INSERT INTO credential_events (user_id, credential_id, action, changed_fields, engine_client_id, engine_request,
                                        guardrail_rule, engine_order)
         VALUES ($1, $2::uuid, $3, '{}', $4, 'POST /v2/orders', $5, $6::jsonb) RETURNING id::text AS id`,
        userId,
        credential.id,
        action,
        client.clientId,
        rule,
        order === null ? null : JSON.stringify(order),
      );
    const order = {
      symbol: 'AAPL',
      side: 'buy',
      type: 'limit',
      qty: '10',
      notional: null,
      clientOrderId: 'my-order-1',
      estimatedNotional: '1505.000000001',
      referencePrice: '150.25',
    };
    const [refused] = await insert('ENGINE_REFUSED', 'maxOrderNotional', order);
    const [answered] = await insert('ENGINE_REQUEST', null, { ...order, clientOrderId: null });
    const [unanswered] = await insert('ENGINE_REQUEST', null, null);
    await server.db.unscopedClient.$executeRawUnsafe(
      `INSERT INTO engine_responses (event_id, user_id, status, broker_request_id) VALUES ($1::uuid, $2, 201, 'req-42')`,
      answered?.id,
      userId,
    );
    const events = await eventsOf(who, credential.id);
    const byId = new Map(events.map((e) => [e.id, e]));
    expect(byId.get(refused!.id)).toMatchObject({
      action: 'ENGINE_REFUSED',
      guardrailRule: 'maxOrderNotional',
      engineOrder: order,
      engineResponse: null,
    });
    expect(byId.get(answered!.id)).toMatchObject({
      action: 'ENGINE_REQUEST',
      guardrailRule: null,
      engineOrder: { ...order, clientOrderId: null },
      engineResponse: { status: 201, brokerRequestId: 'req-42' },
    });
    expect(byId.get(unanswered!.id)).toMatchObject({ engineOrder: null, engineResponse: null });
    const others = events.filter((e) => !['ENGINE_REFUSED', 'ENGINE_REQUEST'].includes(e.action));
    expect(others.map((e) => e.action)).toEqual(['GUARDRAILS_CHANGED', 'ACCESS_GRANTED', 'STORED']);
    for (const event of others) {
      expect(event).toMatchObject({ guardrailRule: null, engineOrder: null, engineResponse: null });
    }
  });

  it('pages through engine events with their answers, one statement per page', async () => {
    const { who, credential, client } = await granted();
    const userId = who.session.user.id;
    await server.db.unscopedClient.$executeRawUnsafe(
      `WITH e AS (
         INSERT INTO credential_events (user_id, credential_id, action, changed_fields, engine_client_id, engine_request)
         SELECT $1, $2::uuid, 'ENGINE_REQUEST', '{}', $3, 'GET /v2/account' FROM generate_series(1, 5)
         RETURNING id, user_id)
       INSERT INTO engine_responses (event_id, user_id, status) SELECT id, user_id, 200 FROM e`,
      userId,
      credential.id,
      client.clientId,
    );
    const page = (after?: string) =>
      gql(
        server.url,
        'query($id: UUID!, $after: String) { credentialEvents(credentialId: $id, first: 3, after: $after) { edges { node { id action engineResponse { status } } } pageInfo { hasNextPage endCursor } } }',
        { id: credential.id, after },
        who.session,
      );
    statements.length = 0;
    const first = ok(await page(), 'credentialEvents');
    expect(statements.filter((sql) => /credential_events|engine_responses/.test(sql))).toHaveLength(1);
    const second = ok(await page(first.pageInfo.endCursor), 'credentialEvents');
    type Node = { id: string; action: string; engineResponse: { status: number } | null };
    const nodes: Node[] = [...first.edges, ...second.edges].map((e: { node: Node }) => e.node);
    expect(nodes.map((n) => n.action)).toEqual([
      'ENGINE_REQUEST',
      'ENGINE_REQUEST',
      'ENGINE_REQUEST',
      'ENGINE_REQUEST',
      'ENGINE_REQUEST',
      'ACCESS_GRANTED',
    ]);
    expect(new Set(nodes.map((n) => n.id)).size).toBe(6);
    expect(nodes.slice(0, 5).every((n) => n.engineResponse?.status === 200)).toBe(true);
    expect(second.pageInfo.hasNextPage).toBe(true);
  });
});
