// The guardrail checks fail closed (docs/engines.md, "Guardrails"): when a
// fact a rule needs cannot be read from Alpaca (an error status, no answer
// within BROKER_TIMEOUT_MS, no price at all), the order is refused with 503
// GUARDRAIL_DATA_UNAVAILABLE, rule marketData, nothing reaches the trading
// API, and the refusal is in the audit trail. An earlier rule's refusal still
// wins over a later rule's missing fact. On the real server in-process and a
// real database, against the Alpaca stand-ins' per-symbol failures.
import { describe, expect, it } from 'vitest';
import type { SymbolArea, SymbolFailure } from '../support/alpaca-stand-in.ts';
import { dbKind } from '../support/databases.ts';
import {
  type ExpectedRefusal,
  freshSymbol,
  type Granted,
  order,
  type Reads,
  useGuardrailHarness,
} from '../support/guardrail-harness.ts';

/** Short, so that a slow answer is a timeout without a long wait, yet far above the stand-ins' few ms on a busy machine. */
const TIMEOUT_MS = 1000;
const h = useGuardrailHarness({ BROKER_TIMEOUT_MS: String(TIMEOUT_MS) });

const FAILURES: [string, (area: SymbolArea) => SymbolFailure][] = [
  ['an error status (500)', (area) => ({ kind: 'status', status: 500, on: [area] })],
  [
    `no answer within BROKER_TIMEOUT_MS (${TIMEOUT_MS} ms)`,
    (area) => ({ kind: 'slow', delayMs: TIMEOUT_MS * 3, on: [area] }),
  ],
];

interface Lookup {
  /** The fact, as the test names it. */
  fact: string;
  /** Where the stand-in spoils it. */
  area: SymbolArea;
  /** The reads of it a refused request makes. */
  reads: Partial<Reads>;
  /** A grant and the request that needs the fact (made before the failure is set). */
  prepare(symbol: string): Promise<{ setup: Granted; method: string; path: string; body: unknown }>;
  expected: (symbol: string) => Pick<ExpectedRefusal, 'message' | 'order' | 'request'>;
}

const LOOKUPS: Lookup[] = [
  {
    fact: 'the asset',
    area: 'asset',
    reads: { asset: 1 },
    prepare: async (symbol) => ({
      setup: await h.granted(),
      method: 'POST',
      path: 'v2/orders',
      body: order({ symbol }),
    }),
    expected: (symbol) => ({
      message: new RegExp(
        `Alpaca's asset for ${symbol} could not be read, and assetClasses needs it; nothing was forwarded`,
      ),
      order: { symbol, estimatedNotional: null, referencePrice: null },
    }),
  },
  {
    fact: 'the price (the quote, then the latest trade)',
    area: 'data',
    reads: { quotes: 1, trades: 1 },
    prepare: async (symbol) => {
      h.brokers.data.setPrice(symbol, { ask: '10', bid: '9.9', last: '9.95' });
      return {
        setup: await h.granted({ guardrails: { maxOrderNotional: '100000' } }),
        method: 'POST',
        path: 'v2/orders',
        body: order({ symbol, qty: '3' }),
      };
    },
    expected: (symbol) => ({
      message: new RegExp(`the reference price of ${symbol} could not be read, and maxOrderNotional needs it`),
      order: { symbol, qty: '3', estimatedNotional: null, referencePrice: null },
    }),
  },
  {
    fact: 'the position',
    area: 'position',
    reads: { position: 1 },
    prepare: async (symbol) => ({
      setup: await h.granted({ positions: [{ symbol, qty: 10 }] }),
      method: 'POST',
      path: 'v2/orders',
      body: order({ symbol, side: 'sell' }),
    }),
    expected: (symbol) => ({
      message: new RegExp(`the position in ${symbol} could not be read, and allowShortSelling needs it`),
    }),
  },
  {
    fact: 'the open orders',
    area: 'orders',
    reads: { orders: 1 },
    prepare: async (symbol) => ({
      setup: await h.granted({ positions: [{ symbol, qty: 10 }] }),
      method: 'POST',
      path: 'v2/orders',
      body: order({ symbol, side: 'sell' }),
    }),
    expected: (symbol) => ({
      message: new RegExp(`the open sell orders in ${symbol} could not be read, and allowShortSelling needs it`),
    }),
  },
  {
    fact: 'the order a replacement replaces',
    area: 'orders',
    reads: { order: 1 },
    prepare: async (symbol) => {
      const setup = await h.granted();
      const placed = await h.passes(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', limit_price: '10' }));
      return { setup, method: 'PATCH', path: `v2/orders/${placed.json.id}`, body: { limit_price: '11' } };
    },
    expected: () => ({
      message: /the order to replace could not be read, and the checks need it; nothing was forwarded/,
      request: 'PATCH /v2/orders/{id}',
      // Nothing to summarise: the order is what could not be read.
      order: null,
    }),
  },
];

describe(`guardrail facts that cannot be read: refused, fail closed (${dbKind})`, () => {
  for (const lookup of LOOKUPS) {
    for (const [how, failure] of FAILURES) {
      it(`${lookup.fact}: ${how} → 503 marketData`, async () => {
        const symbol = freshSymbol('D');
        const { setup, method, path, body } = await lookup.prepare(symbol);
        h.brokers.failSymbol(symbol, failure(lookup.area));
        try {
          const before = h.reads(setup, symbol);
          const started = performance.now();
          await h.refused(setup, method, path, body, {
            status: 503,
            rule: 'marketData',
            ...lookup.expected(symbol),
          });
          const after = h.reads(setup, symbol);
          for (const [kind, n] of Object.entries(lookup.reads)) {
            expect(after[kind as keyof Reads] - before[kind as keyof Reads], kind).toBe(n);
          }
          if (failure(lookup.area).kind === 'slow') {
            // It waited for the deadline, not for the answer.
            const elapsed = performance.now() - started;
            expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS * 0.9);
          }
        } finally {
          h.brokers.clearSymbol(symbol);
        }
        // Once Alpaca answers again, the same request goes through.
        await h.passes(setup, method, path, body);
      });
    }
  }

  it('no price at all: no quote and no trade (404s, or zero ones), a pair or an option without a quote → 503 marketData', async () => {
    const setup = await h.granted({
      guardrails: { maxOrderNotional: '100000', assetClasses: ['US_EQUITY', 'CRYPTO', 'US_OPTION'] },
    });
    const missing = (symbol: string): ExpectedRefusal => ({
      status: 503,
      rule: 'marketData',
      message: new RegExp(`the reference price of ${symbol.replace('/', '\\/')} could not be read`),
      order: { symbol, referencePrice: null },
    });
    const stock = freshSymbol('N');
    h.brokers.data.setPrice(stock, { ask: '10', bid: '9', last: '9.5' });
    h.brokers.failSymbol(stock, { kind: 'no-price' });
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: stock }), missing(stock));
    expect(h.reads(setup, stock)).toMatchObject({ quotes: 1, trades: 1 });
    h.brokers.clearSymbol(stock);

    // Alpaca's other way of saying so: a 200 with a zero quote and a zero trade.
    const empty = freshSymbol('N');
    h.brokers.data.answerMissingStockWith('empty');
    try {
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol: empty }), missing(empty));
    } finally {
      h.brokers.data.answerMissingStockWith('not-found');
    }
    // A quote with neither ask nor bid, and a trade at 0.
    const zero = freshSymbol('N');
    h.brokers.data.setPrice(zero, { ask: '0', bid: '0', last: '0' });
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: zero, side: 'sell' }), missing(zero));

    // A crypto pair and an option Alpaca has no quote for.
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: 'SOL/USD', time_in_force: 'gtc' }), missing('SOL/USD'));
    const option = `${freshSymbol('P').slice(0, 5)}261218P00020000`;
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: option }), missing(option));
  });
});

describe(`the first rule that fails decides (${dbKind})`, () => {
  it('an earlier rule’s refusal wins over a later rule’s missing fact, and reads nothing for it', async () => {
    const symbol = freshSymbol('E');
    h.brokers.data.setPrice(symbol, { ask: '10', bid: '9.9' });
    const setup = await h.granted({
      guardrails: {
        orderTypes: ['MARKET'],
        symbols: [symbol, 'AAPL'],
        maxOrderQuantity: '10',
        maxOrderNotional: '1000',
      },
      positions: [{ symbol, qty: 100 }],
    });
    h.brokers.failSymbol(symbol, { kind: 'status', status: 500, on: ['data', 'position', 'orders'] });
    try {
      const before = h.reads(setup, symbol);
      // orderTypes comes before maxOrderNotional, whose price would fail.
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', side: 'sell', limit_price: '10' }), {
        status: 403,
        rule: 'orderTypes',
        limit: 'MARKET',
        value: 'LIMIT',
        message: /order type LIMIT is not among orderTypes MARKET/,
      });
      // maxOrderQuantity (qty given) comes before maxOrderNotional.
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol, qty: '11' }), {
        status: 403,
        rule: 'maxOrderQuantity',
        limit: '10',
        value: '11',
        message: /quantity 11 is over maxOrderQuantity 10/,
      });
      // symbols comes before allowShortSelling, whose position would fail.
      const other = freshSymbol('E');
      h.brokers.failSymbol(other, { kind: 'status', status: 500, on: ['data', 'position', 'orders'] });
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol: other, side: 'sell' }), {
        status: 403,
        rule: 'symbols',
        limit: [symbol, 'AAPL'].sort().join(','),
        value: other,
        message: new RegExp(`symbol ${other} is not among symbols`),
      });
      h.brokers.clearSymbol(other);
      const after = h.reads(setup, symbol);
      expect({ quotes: after.quotes, trades: after.trades, position: after.position, orders: after.orders }).toEqual({
        quotes: before.quotes,
        trades: before.trades,
        position: before.position,
        orders: before.orders,
      });
    } finally {
      h.brokers.clearSymbol(symbol);
    }
  });

  it('an earlier rule’s missing fact wins over a later rule’s refusal', async () => {
    const symbol = freshSymbol('E');
    // REDUCING needs the position (tradingState, first); orderTypes would refuse the order too.
    const setup = await h.granted({
      guardrails: { tradingState: 'REDUCING', orderTypes: ['LIMIT'] },
      positions: [{ symbol, qty: 100 }],
    });
    h.brokers.failSymbol(symbol, { kind: 'status', status: 500, on: ['position'] });
    try {
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell' }), {
        status: 503,
        rule: 'marketData',
        message: new RegExp(`the position in ${symbol} could not be read, and tradingState needs it`),
      });
    } finally {
      h.brokers.clearSymbol(symbol);
    }
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell' }), {
      status: 403,
      rule: 'orderTypes',
      limit: 'LIMIT',
      value: 'MARKET',
      message: /order type MARKET is not among orderTypes LIMIT/,
    });
  });
});
