// The dry run of an order (docs/engines.md, "Guardrails"): POST
// /engine/v1/credentials/{id}/orders:check answers what the real order would
// get from the guardrails, allowed with its estimate and today's usage, or the
// very refusal the real call gives, and forwards nothing to the trading API,
// counts nothing, writes no event and leaves the forwarded requests' rate
// limit alone. On the real server in-process and a real database, against
// the Alpaca stand-ins.
import { describe, expect, it } from 'vitest';
import { tradingDay } from '../../src/domain/guardrails.ts';
import { dbKind } from '../support/databases.ts';
import type { EngineResponse } from '../support/engine.ts';
import { freshSymbol, type Granted, order, useGuardrailHarness } from '../support/guardrail-harness.ts';

/** Low, so that the test of the limit stays short: dry runs and forwarded requests each have this many per minute. */
const RATE_LIMIT = 5;
const h = useGuardrailHarness({ ENGINE_RATE_LIMIT: String(RATE_LIMIT) });

const checkPath = (setup: Granted) => `/engine/v1/credentials/${setup.credential.id}/orders:check`;

/** What a dry run must leave as it was: the trading API, the usage, the audit trail. */
async function untouched(setup: Granted) {
  return {
    changes: h.changes(setup),
    usage: await h.usage(setup),
    events: (await h.events(setup)).map((e) => e.id),
  };
}

async function dryRun(setup: Granted, body: unknown): Promise<EngineResponse> {
  const before = await untouched(setup);
  const res = await h.send('POST', checkPath(setup), body);
  expect(await untouched(setup), `${JSON.stringify(body)} → ${res.status} ${res.text}`).toEqual(before);
  return res;
}

describe(`the dry run of an order (${dbKind})`, () => {
  it('answers an allowed order with its estimate, the price read and today’s usage, as exact strings', async () => {
    const symbol = freshSymbol('C');
    h.brokers.data.setPrice(symbol, { ask: '12.345', bid: '12.3', last: '12.31' });
    const setup = await h.granted({ guardrails: { maxOrderNotional: '1000', maxDailyNotional: '5000' } });
    const today = tradingDay(new Date());

    const market = await dryRun(setup, order({ symbol, qty: '7' }));
    expect(market.status).toBe(200);
    expect(market.json).toEqual({
      allowed: true,
      estimatedNotional: '86.415',
      referencePrice: '12.345',
      usageToday: { tradingDay: today, orders: 0, notional: '0' },
    });
    // The order alone gives it: no price is read for it.
    const quotes = h.reads(setup, symbol).quotes;
    const limit = await dryRun(setup, order({ symbol, type: 'limit', qty: '0.5', limit_price: '12.25' }));
    expect(limit.json).toEqual({
      allowed: true,
      estimatedNotional: '6.125',
      referencePrice: null,
      usageToday: { tradingDay: today, orders: 0, notional: '0' },
    });
    expect(h.reads(setup, symbol).quotes).toBe(quotes);

    // The usage it shows is today's: after a real order, that order's count.
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, qty: '7' }));
    const after = await dryRun(setup, order({ symbol, side: 'sell', qty: '1', notional: undefined }));
    expect(after.status).toBe(403);
    expect(after.json.error.rule).toBe('allowShortSelling');
    const usage = await dryRun(setup, order({ symbol, notional: '100', qty: undefined }));
    expect(usage.json).toEqual({
      allowed: true,
      estimatedNotional: '100',
      referencePrice: null,
      usageToday: { tradingDay: today, orders: 1, notional: '86.415' },
    });
  });

  it('gives an estimate for an order no rule needed a price for: read for the dry run', async () => {
    const symbol = freshSymbol('C');
    h.brokers.data.setPrice(symbol, { ask: '20.5', bid: '20.25' });
    const setup = await h.granted({ guardrails: { allowShortSelling: true } });
    const buy = await dryRun(setup, order({ symbol, qty: '3' }));
    expect(buy.json).toMatchObject({ allowed: true, estimatedNotional: '61.5', referencePrice: '20.5' });
    const sell = await dryRun(setup, order({ symbol, side: 'sell', qty: '3' }));
    expect(sell.json).toMatchObject({ allowed: true, estimatedNotional: '60.75', referencePrice: '20.25' });
  });

  // Each refusal on a credential of its own: a dry run and the real call each take a point of their own limit.
  const refusals: [
    string,
    (symbol: string) => Promise<{ setup: Granted; body: Record<string, unknown> }>,
    { status: number; rule: string },
  ][] = [
    [
      'maxOrderNotional',
      async (symbol) => ({
        setup: await h.granted({ guardrails: { maxOrderNotional: '100' } }),
        body: order({ symbol, qty: '10' }),
      }),
      { status: 403, rule: 'maxOrderNotional' },
    ],
    [
      'symbols',
      async (symbol) => ({ setup: await h.granted({ guardrails: { symbols: ['AAPL'] } }), body: order({ symbol }) }),
      { status: 403, rule: 'symbols' },
    ],
    [
      'tradingState HALTED',
      async (symbol) => ({
        setup: await h.granted({ guardrails: { tradingState: 'HALTED' } }),
        body: order({ symbol, type: 'limit', limit_price: '10' }),
      }),
      { status: 403, rule: 'tradingState' },
    ],
    [
      'allowShortSelling',
      async (symbol) => ({
        setup: await h.granted({ positions: [{ symbol, qty: 2 }] }),
        body: order({ symbol, side: 'sell', qty: '3' }),
      }),
      { status: 403, rule: 'allowShortSelling' },
    ],
    [
      'maxDailyOrders',
      async (symbol) => {
        const setup = await h.granted({ guardrails: { maxDailyOrders: 1 } });
        await h.passes(setup, 'POST', 'v2/orders', order({ symbol }));
        return { setup, body: order({ symbol }) };
      },
      { status: 403, rule: 'maxDailyOrders' },
    ],
    [
      'orderClass (mleg)',
      async () => ({
        setup: await h.granted({ guardrails: { assetClasses: ['US_OPTION'] } }),
        body: {
          order_class: 'mleg',
          qty: '1',
          type: 'market',
          time_in_force: 'day',
          legs: [
            { symbol: 'AAPL250620C00100000', ratio_qty: '1', side: 'buy' },
            { symbol: 'AAPL250620C00110000', ratio_qty: '1', side: 'sell' },
          ],
        },
      }),
      { status: 403, rule: 'orderClass' },
    ],
    [
      'marketData (the price cannot be read)',
      async (symbol) => {
        const setup = await h.granted({ guardrails: { maxOrderNotional: '100' } });
        h.brokers.failSymbol(symbol, { kind: 'status', status: 500, on: ['data'] });
        return { setup, body: order({ symbol }) };
      },
      { status: 503, rule: 'marketData' },
    ],
  ];

  for (const [what, prepare, expected] of refusals) {
    it(`refuses as the real call does: ${what}`, async () => {
      const symbol = freshSymbol('C');
      h.brokers.data.setPrice(symbol, { ask: '50', bid: '49.5' });
      const { setup, body } = await prepare(symbol);
      const checked = await dryRun(setup, body);
      expect(checked.status, checked.text).toBe(expected.status);
      expect(checked.json.error).toMatchObject({
        code: expected.status === 403 ? 'GUARDRAIL_REFUSED' : 'GUARDRAIL_DATA_UNAVAILABLE',
        rule: expected.rule,
        message: expect.stringMatching(/^Refused/),
      });
      const changes = h.changes(setup);
      const real = await h.send('POST', setup.path('v2/orders'), body);
      expect(real.status).toBe(checked.status);
      expect(real.json).toEqual(checked.json);
      expect(h.changes(setup)).toBe(changes);
      // The real call, unlike the dry run, is in the trail.
      expect((await h.events(setup))[0]).toMatchObject({ action: 'ENGINE_REFUSED', guardrailRule: expected.rule });
      h.brokers.clearSymbol(symbol);
    });
  }

  it('leaves the forwarded requests’ rate limit untouched', async () => {
    const setup = await h.granted();
    for (let i = 0; i < RATE_LIMIT; i += 1) {
      expect((await dryRun(setup, order())).status).toBe(200);
    }
    // Every forwarded request of the minute is still there.
    for (let i = 0; i < RATE_LIMIT; i += 1) {
      expect((await h.send('GET', setup.path('v2/clock'))).status).toBe(200);
    }
    const limited = await h.send('GET', setup.path('v2/clock'));
    expect(limited.status).toBe(429);
    expect(limited.json.error.code).toBe('TOO_MANY_REQUESTS');
  });

  it('needs the TRADE scope: 403 INSUFFICIENT_SCOPE on a READ grant', async () => {
    const setup = await h.granted({ scopes: ['READ'] });
    const res = await dryRun(setup, order());
    expect(res.status).toBe(403);
    expect(res.json.error).toMatchObject({ code: 'INSUFFICIENT_SCOPE', message: expect.stringMatching(/TRADE scope/) });
  });

  it('answers 400 naming the field for a body that is not an order', async () => {
    const setup = await h.granted();
    const cases: [unknown, RegExp][] = [
      [order({ side: 'hold' }), /^side: side must be one of buy, sell/],
      [order({ qty: undefined }), /^qty: qty or notional is required/],
      [order({ notional: '10' }), /^notional: Give qty or notional, not both/],
      [order({ type: 'limit' }), /^limit_price: limit_price is required for a limit order/],
      [[order()], /^The order must be a JSON object/],
      ['{"symbol": "AAPL",', /^The body is not JSON/],
    ];
    for (const [body, message] of cases) {
      const res = await dryRun(setup, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(message) });
    }
  });
});
