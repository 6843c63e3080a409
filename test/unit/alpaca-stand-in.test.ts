// The Alpaca stand-in itself (test/support/alpaca-stand-in.ts), in-process and
// over HTTP: the shapes it answers, the state tests set on it, its per-symbol
// failures, its counting and its gzip. Tests of the product lean on all of it.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptsGzip } from '../support/alpaca-data-stand-in.ts';
import { type AlpacaStandIns, DEFAULT_PRICES, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';

let brokers: AlpacaStandIns;
beforeAll(async () => {
  brokers = await startAlpacaStandIns();
});
afterAll(async () => {
  await brokers?.close();
});

interface Keys {
  apiKey: string;
  secretKey: string;
}

function paperKey(options: Record<string, unknown> = {}): Keys {
  const keys = { apiKey: `PK${randomUUID().replaceAll('-', '').slice(0, 18).toUpperCase()}`, secretKey: randomUUID() };
  brokers.paper.setKey(keys.apiKey, { kind: 'account', secretKey: keys.secretKey, ...options });
  return keys;
}

async function call(
  base: string,
  path: string,
  keys: Keys | undefined,
  init: { method?: string; body?: unknown } = {},
) {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(keys ? { 'apca-api-key-id': keys.apiKey, 'apca-api-secret-key': keys.secretKey } : {}),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: text ? JSON.parse(text) : undefined,
    ms: performance.now() - started,
  };
}

const data = (path: string, keys?: Keys) => call(brokers.data.url, path, keys);
const paper = (path: string, keys: Keys, init?: { method?: string; body?: unknown }) =>
  call(brokers.paper.url, path, keys, init);
const order = (overrides: Record<string, unknown> = {}) => ({
  symbol: 'AAPL',
  qty: '1',
  side: 'buy',
  type: 'market',
  time_in_force: 'day',
  ...overrides,
});

describe('market data', () => {
  it('serves the keys paper or live accepts, with their secret, and no others', async () => {
    const mine = paperKey();
    const live = { apiKey: `AK${randomUUID().slice(0, 8)}`, secretKey: randomUUID() };
    brokers.live.setKey(live.apiKey, { kind: 'account', secretKey: live.secretKey });
    const failing = { apiKey: `PK${randomUUID().slice(0, 8)}`, secretKey: 'x' };
    brokers.paper.setKey(failing.apiKey, { kind: 'status', status: 500 });

    expect((await data('/v2/stocks/AAPL/quotes/latest', mine)).status).toBe(200);
    expect((await data('/v2/stocks/AAPL/quotes/latest', live)).status).toBe(200);
    for (const keys of [undefined, { ...mine, secretKey: 'wrong' }, failing, { apiKey: 'PKNOBODY', secretKey: 's' }]) {
      const res = await data('/v2/stocks/AAPL/quotes/latest', keys);
      expect(res.status).toBe(401);
      expect(res.json).toEqual({ code: 40110000, message: 'request is not authorized' });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    }
    // The one with the wrong secret reached the stand-in too, and counts.
    expect(brokers.data.counts(mine.apiKey).quotes).toBe(2);
    expect(brokers.env.ALPACA_DATA_URL).toBe(brokers.data.url);
  });

  it('answers Alpaca’s shapes, prices as JSON numbers, with Alpaca’s headers', async () => {
    const keys = paperKey();
    const aapl = DEFAULT_PRICES.AAPL!;
    const quote = await data('/v2/stocks/AAPL/quotes/latest?feed=iex', keys);
    expect(quote.text).toContain(`"ap":${aapl.ask}`);
    expect(quote.json.symbol).toBe('AAPL');
    expect(Object.keys(quote.json.quote).sort()).toEqual(['ap', 'as', 'ax', 'bp', 'bs', 'bx', 'c', 't', 'z']);
    expect(quote.json.quote).toMatchObject({ ap: Number(aapl.ask), bp: Number(aapl.bid) });
    expect(Date.parse(quote.json.quote.t)).not.toBeNaN();
    for (const name of ['x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) {
      expect(quote.headers.get(name), name).toBeTruthy();
    }
    expect(quote.headers.get('x-stand-in-private')).toBeTruthy();
    expect(quote.headers.get('set-cookie')).toBeTruthy();

    const trade = await data('/v2/stocks/AAPL/trades/latest', keys);
    expect(Object.keys(trade.json.trade).sort()).toEqual(['c', 'i', 'p', 's', 't', 'x', 'z']);
    expect(trade.json.trade.p).toBe(Number(aapl.last));

    const btc = DEFAULT_PRICES['BTC/USD']!;
    const crypto = await data('/v1beta3/crypto/us/latest/quotes?symbols=BTC/USD,ETH%2FUSD', keys);
    expect(Object.keys(crypto.json.quotes).sort()).toEqual(['BTC/USD', 'ETH/USD']);
    expect(crypto.json.quotes['BTC/USD']).toMatchObject({ ap: Number(btc.ask), bp: Number(btc.bid) });
    expect(Object.keys(crypto.json.quotes['BTC/USD']).sort()).toEqual(['ap', 'as', 'bp', 'bs', 't']);
    const cryptoTrade = await data('/v1beta3/crypto/us/latest/trades?symbols=BTC/USD', keys);
    expect(cryptoTrade.json.trades['BTC/USD'].p).toBe(Number(btc.last));

    const contract = 'AAPL250620C00100000';
    const option = await data(`/v1beta1/options/quotes/latest?symbols=${contract}`, keys);
    expect(option.json.quotes[contract]).toMatchObject({ ap: Number(DEFAULT_PRICES[contract]?.ask) });
    expect(Object.keys(option.json.quotes[contract]).sort()).toEqual(['ap', 'as', 'ax', 'bp', 'bs', 'bx', 'c', 't']);
    expect((await data(`/v1beta1/options/trades/latest?symbols=${contract}`, keys)).json.trades[contract].p).toBe(
      Number(DEFAULT_PRICES[contract]?.last),
    );
    expect(brokers.data.counts(keys.apiKey)).toMatchObject({ quotes: 3, trades: 3, total: 6, changes: 0 });
    expect(brokers.data.counts(keys.apiKey, 'BTCUSD')).toMatchObject({ quotes: 1, trades: 1 });
  });

  it('sends the digits a test sets, an absent or zero ask or bid as 0, and no trade without `last`', async () => {
    const keys = paperKey();
    brokers.data.setPrice('tiny', { ask: '0.000012345', bid: 0, last: '123456789.123456789' });
    const quote = await data('/v2/stocks/TINY/quotes/latest', keys);
    expect(quote.text).toContain('"ap":0.000012345');
    expect(quote.json.quote).toMatchObject({ bp: 0, bs: 0 });
    expect(quote.json.quote.as).toBeGreaterThan(0);
    expect((await data('/v2/stocks/TINY/trades/latest', keys)).text).toContain('"p":123456789.123456789');

    brokers.data.setPrice('LASTONLY', { last: 12.5 });
    expect((await data('/v2/stocks/LASTONLY/quotes/latest', keys)).json.quote).toMatchObject({ ap: 0, bp: 0 });
    expect((await data('/v2/stocks/LASTONLY/trades/latest', keys)).json.trade.p).toBe(12.5);
    brokers.data.setPrice('NOTRADE', { ask: 5, bid: 4 });
    expect((await data('/v2/stocks/NOTRADE/trades/latest', keys)).status).toBe(404);
    expect(brokers.data.price('lastonly')).toEqual({ last: '12.5' });

    expect(() => brokers.data.setPrice('BAD', { ask: '-1' })).toThrow(/ask/);
    expect(() => brokers.data.setPrice('BAD', { bid: 'abc' })).toThrow(/bid/);
    expect(() => brokers.data.setPrice('BAD', { last: Number.NaN })).toThrow(/last/);
  });

  it('without data: 404 for a stock (or an empty quote when asked), left out of multi-symbol answers', async () => {
    const keys = paperKey();
    const quote = await data('/v2/stocks/NODATA/quotes/latest', keys);
    expect(quote.status).toBe(404);
    expect(quote.json).toEqual({ code: 40410000, message: 'no quote found' });
    expect((await data('/v2/stocks/NODATA/trades/latest', keys)).json).toEqual({
      code: 40410000,
      message: 'no trade found',
    });
    brokers.data.answerMissingStockWith('empty');
    try {
      const empty = await data('/v2/stocks/NODATA/quotes/latest', keys);
      expect(empty.status).toBe(200);
      expect(empty.json.quote).toMatchObject({ ap: 0, bp: 0, t: '0001-01-01T00:00:00Z' });
      expect((await data('/v2/stocks/NODATA/trades/latest', keys)).json.trade).toMatchObject({ p: 0 });
    } finally {
      brokers.data.answerMissingStockWith('not-found');
    }
    const crypto = await data('/v1beta3/crypto/us/latest/quotes?symbols=BTC/USD,DOGE/USD', keys);
    expect(Object.keys(crypto.json.quotes)).toEqual(['BTC/USD']);
    const option = await data('/v1beta1/options/quotes/latest?symbols=AAPL250620P00050000', keys);
    expect(option.json).toEqual({ quotes: {} });
    expect((await data('/v1beta3/crypto/us/latest/quotes', keys)).status).toBe(400);
    expect((await data('/v2/stocks/AAPL/bars/latest', keys)).status).toBe(404);
  });
});

describe('assets', () => {
  it('knows tickers, the crypto pairs however written, ids, an untradable asset, and what is unknown', async () => {
    const keys = paperKey();
    const aapl = await paper('/v2/assets/AAPL', keys);
    expect(aapl.json).toMatchObject({ symbol: 'AAPL', class: 'us_equity', tradable: true, status: 'active' });
    const btc = await paper('/v2/assets/BTC%2FUSD', keys);
    expect(btc.json).toMatchObject({ symbol: 'BTC/USD', class: 'crypto', tradable: true });
    expect((await paper('/v2/assets/BTCUSD', keys)).json).toEqual(btc.json);
    expect((await paper('/v2/assets/ETHUSD', keys)).json).toMatchObject({ symbol: 'ETH/USD', class: 'crypto' });
    expect((await paper(`/v2/assets/${btc.json.id}`, keys)).json).toEqual(btc.json);
    expect((await paper('/v2/assets/NVDA', keys)).json).toMatchObject({ symbol: 'NVDA', tradable: true });
    expect((await paper('/v2/assets/AAPL250620C00100000', keys)).json).toMatchObject({ class: 'us_option' });
    expect((await paper('/v2/assets/DELIST', keys)).json).toMatchObject({ tradable: false, status: 'inactive' });
    // Asset ids are the same at paper and live, as Alpaca's are.
    expect(brokers.live.asset('AAPL')?.id).toBe(aapl.json.id);

    for (const unknown of ['ZZTOP', 'SOL%2FUSD', 'not-a-ticker']) {
      const res = await paper(`/v2/assets/${unknown}`, keys);
      expect(res.status, unknown).toBe(404);
      expect(res.json.code).toBe(40410000);
      expect(res.json.message).toMatch(/^asset not found for /);
    }
    brokers.setAsset('GONE', null);
    expect((await paper('/v2/assets/GONE', keys)).status).toBe(404);
    brokers.setAsset('GONE', { shortable: false });
    expect((await paper('/v2/assets/GONE', keys)).json).toMatchObject({ symbol: 'GONE', shortable: false });
    expect(brokers.live.asset('GONE')).toMatchObject({ shortable: false });
    brokers.setAsset('SOL/USD', {});
    expect((await paper('/v2/assets/SOLUSD', keys)).json).toMatchObject({ symbol: 'SOL/USD', class: 'crypto' });

    const counted = brokers.paper.counts(keys.apiKey);
    expect(counted.asset).toBe(14);
    expect(counted.changes).toBe(0);
    expect(brokers.paper.counts(keys.apiKey, 'BTC/USD').asset).toBe(3);
    const list = await paper('/v2/assets?status=active', keys);
    expect(
      list.json.every((a: { class: string; status: string }) => a.class === 'us_equity' && a.status === 'active'),
    ).toBe(true);
    expect(list.json.map((a: { symbol: string }) => a.symbol)).toContain('AAPL');
  });
});

describe('positions', () => {
  it('holds long, short, crypto (named without the slash) and options positions, found by symbol or asset id', async () => {
    const contract = 'AAPL250620C00100000';
    const keys = paperKey({
      positions: [
        { symbol: 'AAPL', qty: 10 },
        { symbol: 'TSLA', qty: -5, avgEntryPrice: '250', currentPrice: '240' },
        { symbol: 'BTC/USD', qty: '0.5', currentPrice: '65000.25' },
        { symbol: contract, qty: 2, avgEntryPrice: '1.5', currentPrice: '2.25' },
      ],
    });
    const all = await paper('/v2/positions', keys);
    expect(all.json.map((p: { symbol: string }) => p.symbol)).toEqual(['AAPL', 'TSLA', 'BTCUSD', contract]);
    const [aapl, tsla, btc, option] = all.json;
    expect(aapl).toMatchObject({ qty: '10', side: 'long', asset_class: 'us_equity' });
    expect(tsla).toMatchObject({ qty: '-5', side: 'short', market_value: '-1200', unrealized_pl: '50' });
    expect(btc).toMatchObject({ qty: '0.5', side: 'long', asset_class: 'crypto', market_value: '32500.125' });
    // A contract is worth 100 times its price.
    expect(option).toMatchObject({ asset_class: 'us_option', market_value: '450', cost_basis: '300' });

    for (const path of ['BTCUSD', 'BTC%2FUSD', btc.asset_id]) {
      expect((await paper(`/v2/positions/${path}`, keys)).json, path).toEqual(btc);
    }
    const none = await paper('/v2/positions/MSFT', keys);
    expect(none.status).toBe(404);
    expect(none.json).toEqual({ code: 40410000, message: 'position does not exist' });

    const closed = await paper('/v2/positions/TSLA', keys, { method: 'DELETE' });
    expect(closed.json).toMatchObject({ symbol: 'TSLA', side: 'buy', qty: '5', type: 'market' });
    expect((await paper('/v2/positions/TSLA', keys)).status).toBe(404);
    expect(brokers.paper.counts(keys.apiKey)).toMatchObject({ position: 6, changes: 1 });

    // setKey with positions starts the account's positions over.
    brokers.paper.setKey(keys.apiKey, {
      kind: 'account',
      secretKey: keys.secretKey,
      positions: [{ symbol: 'MSFT', qty: 1 }],
    });
    expect((await paper('/v2/positions', keys)).json.map((p: { symbol: string }) => p.symbol)).toEqual(['MSFT']);
    expect(() => paperKey({ positions: [{ symbol: 'AAPL', qty: 'ten' }] })).toThrow(/qty/);
  });
});

describe('orders', () => {
  it('takes crypto pairs, option symbols, asset ids and fractional quantities; asset_class comes from the asset', async () => {
    const keys = paperKey();
    const place = (body: Record<string, unknown>) => paper('/v2/orders', keys, { method: 'POST', body });
    const crypto = await place(order({ symbol: 'BTCUSD', qty: '0.0015', time_in_force: 'gtc' }));
    expect(crypto.json).toMatchObject({ symbol: 'BTC/USD', asset_class: 'crypto', qty: '0.0015', status: 'accepted' });
    expect(crypto.json.asset_id).toBe(brokers.paper.asset('BTC/USD')?.id);
    const option = await place(order({ symbol: 'AAPL250620C00100000', qty: 2, type: 'limit', limit_price: 1.25 }));
    expect(option.json).toMatchObject({ asset_class: 'us_option', qty: '2', limit_price: '1.25' });
    const byId = await place(order({ symbol: brokers.paper.asset('MSFT')?.id, qty: undefined, notional: '250.5' }));
    expect(byId.json).toMatchObject({ symbol: 'MSFT', notional: '250.5', qty: null, asset_class: 'us_equity' });
    const kept = await place(
      order({
        type: 'limit',
        limit_price: '100',
        extended_hours: true,
        position_intent: 'buy_to_open',
        client_order_id: 'mine-1',
      }),
    );
    expect(kept.json).toMatchObject({
      extended_hours: true,
      position_intent: 'buy_to_open',
      client_order_id: 'mine-1',
    });

    for (const [body, message] of [
      [order({ symbol: 'ZZTOP' }), /asset not found/],
      [order({ symbol: 'DELIST' }), /not tradable/],
      [order({ qty: '0.0000000001' }), /9 decimal/],
      [order({ qty: '-1' }), /qty/],
      [order({ notional: '10' }), /qty or notional/],
      [order({ type: 'limit' }), /limit_price/],
      [order({ type: 'trailing_stop' }), /trail/],
      [order({ client_order_id: 'mine-1' }), /unique/],
    ] as const) {
      const res = await place(body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.json.message).toMatch(message);
    }
    expect(brokers.paper.orders(keys.apiKey)).toHaveLength(4);
  });

  it('answers a bracket’s exits as legs, and a multi-leg order without a symbol', async () => {
    const keys = paperKey();
    const bracket = await paper('/v2/orders', keys, {
      method: 'POST',
      body: order({
        qty: '10',
        order_class: 'bracket',
        take_profit: { limit_price: '210' },
        stop_loss: { stop_price: '180', limit_price: '179.5' },
      }),
    });
    expect(bracket.json.order_class).toBe('bracket');
    expect(bracket.json.legs).toMatchObject([
      { side: 'sell', type: 'limit', limit_price: '210', status: 'held', qty: '10' },
      { side: 'sell', type: 'stop_limit', stop_price: '180', limit_price: '179.5', status: 'held' },
    ]);
    const mleg = await paper('/v2/orders', keys, {
      method: 'POST',
      body: {
        order_class: 'mleg',
        qty: '1',
        type: 'limit',
        limit_price: '-0.5',
        time_in_force: 'day',
        legs: [
          { symbol: 'AAPL250620C00100000', ratio_qty: '1', side: 'buy', position_intent: 'buy_to_open' },
          { symbol: 'AAPL250620C00110000', ratio_qty: '1', side: 'sell', position_intent: 'sell_to_open' },
        ],
      },
    });
    expect(mleg.status).toBe(200);
    expect(mleg.json).toMatchObject({ symbol: '', order_class: 'mleg', side: null, limit_price: '-0.5' });
    expect(mleg.json.legs.map((l: { symbol: string; side: string }) => `${l.side} ${l.symbol}`)).toEqual([
      'buy AAPL250620C00100000',
      'sell AAPL250620C00110000',
    ]);
    const noLegs = await paper('/v2/orders', keys, {
      method: 'POST',
      body: { order_class: 'mleg', qty: '1', type: 'market', time_in_force: 'day', symbol: 'AAPL' },
    });
    expect(noLegs.status).toBe(422);
  });

  it('lists by status, symbols (with or without the slash), side, asset_class, direction and limit', async () => {
    const keys = paperKey();
    const place = async (body: Record<string, unknown>) =>
      (await paper('/v2/orders', keys, { method: 'POST', body })).json.id as string;
    const aapl = await place(order());
    const msft = await place(order({ symbol: 'MSFT', side: 'sell' }));
    const btc = await place(order({ symbol: 'BTC/USD', qty: '0.1', time_in_force: 'gtc' }));
    await paper(`/v2/orders/${aapl}`, keys, { method: 'DELETE' });
    const ids = async (query: string) =>
      (await paper(`/v2/orders${query}`, keys)).json.map((o: { id: string }) => o.id) as string[];

    expect(await ids('')).toEqual([btc, msft]);
    expect(await ids('?status=closed')).toEqual([aapl]);
    expect(await ids('?status=all')).toEqual([btc, msft, aapl]);
    expect(await ids('?status=all&direction=asc')).toEqual([aapl, msft, btc]);
    expect(await ids('?status=all&limit=1')).toEqual([btc]);
    expect(await ids('?status=all&symbols=AAPL,BTCUSD')).toEqual([btc, aapl]);
    expect(await ids('?symbols=BTC/USD')).toEqual([btc]);
    expect(await ids('?side=sell')).toEqual([msft]);
    expect(await ids('?status=all&asset_class=crypto')).toEqual([btc]);
    const byClient = brokers.paper.orders(keys.apiKey).find((o) => o.id === msft)?.client_order_id;
    expect((await paper(`/v2/orders:by_client_order_id?client_order_id=${byClient}`, keys)).json.id).toBe(msft);
    expect(brokers.paper.counts(keys.apiKey)).toMatchObject({ orders: 9, order: 1, changes: 4 });
    expect(brokers.paper.counts(keys.apiKey, 'BTCUSD')).toMatchObject({ orders: 2, changes: 1 });
  });

  it('replaces an order: qty, prices, trail, time_in_force and client_order_id over the original', async () => {
    const keys = paperKey();
    const placed = (
      await paper('/v2/orders', keys, {
        method: 'POST',
        body: order({ qty: '2', type: 'stop_limit', limit_price: '100', stop_price: '99', extended_hours: false }),
      })
    ).json;
    const res = await paper(`/v2/orders/${placed.id}`, keys, {
      method: 'PATCH',
      body: { qty: '3', limit_price: '101', time_in_force: 'gtc', client_order_id: 'replacement-1', side: 'sell' },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      replaces: placed.id,
      symbol: 'AAPL',
      side: 'buy',
      type: 'stop_limit',
      qty: '3',
      limit_price: '101',
      stop_price: '99',
      time_in_force: 'gtc',
      client_order_id: 'replacement-1',
      status: 'accepted',
    });
    expect(res.json.id).not.toBe(placed.id);
    const original = (await paper(`/v2/orders/${placed.id}`, keys)).json;
    expect(original).toMatchObject({ status: 'replaced', replaced_by: res.json.id });
    expect((await paper(`/v2/orders/${placed.id}`, keys, { method: 'PATCH', body: { qty: '4' } })).status).toBe(422);

    const trailing = (
      await paper('/v2/orders', keys, {
        method: 'POST',
        body: order({ side: 'sell', type: 'trailing_stop', trail_percent: '2', time_in_force: 'gtc' }),
      })
    ).json;
    const trail = await paper(`/v2/orders/${trailing.id}`, keys, { method: 'PATCH', body: { trail: '3' } });
    expect(trail.json).toMatchObject({ trail_percent: '3', trail_price: null, replaces: trailing.id });

    const notional = (
      await paper('/v2/orders', keys, { method: 'POST', body: order({ qty: undefined, notional: '50' }) })
    ).json;
    const refused = await paper(`/v2/orders/${notional.id}`, keys, { method: 'PATCH', body: { qty: '1' } });
    expect(refused.status).toBe(422);
    expect(refused.json.message).toMatch(/notional/);
  });
});

describe('per-symbol failures', () => {
  it('status: every read about the symbol, in every area, until cleared; other symbols as usual', async () => {
    const keys = paperKey({ positions: [{ symbol: 'AAPL', qty: 3 }] });
    const placed = (await paper('/v2/orders', keys, { method: 'POST', body: order() })).json;
    const reads = [
      () => paper('/v2/assets/AAPL', keys),
      () => paper('/v2/positions/AAPL', keys),
      () => paper('/v2/positions', keys),
      () => paper('/v2/orders?symbols=AAPL', keys),
      () => paper('/v2/orders', keys),
      () => paper(`/v2/orders/${placed.id}`, keys),
      () => data('/v2/stocks/AAPL/quotes/latest', keys),
      () => data('/v2/stocks/AAPL/trades/latest', keys),
    ];
    brokers.failSymbol('AAPL', { kind: 'status', status: 500 });
    try {
      for (const read of reads) {
        const res = await read();
        expect(res.status).toBe(500);
        expect(res.json).toMatchObject({ code: 50010000 });
        expect(res.headers.get('x-request-id')).toBeTruthy();
      }
      expect((await paper('/v2/assets/MSFT', keys)).status).toBe(200);
      expect((await paper('/v2/orders?symbols=MSFT', keys)).status).toBe(200);
      expect((await data('/v2/stocks/MSFT/quotes/latest', keys)).status).toBe(200);
    } finally {
      brokers.clearSymbol('AAPL');
    }
    for (const read of reads) expect((await read()).status).toBe(200);
  });

  it('`on` names the areas; a crypto pair fails however it is written', async () => {
    const keys = paperKey({ positions: [{ symbol: 'BTC/USD', qty: '1' }] });
    brokers.failSymbol('BTCUSD', { kind: 'status', status: 503, on: ['data', 'position'] });
    try {
      expect((await paper('/v2/assets/BTC%2FUSD', keys)).status).toBe(200);
      expect((await paper('/v2/positions/BTCUSD', keys)).status).toBe(503);
      expect((await data('/v1beta3/crypto/us/latest/quotes?symbols=BTC/USD', keys)).status).toBe(503);
      expect((await data('/v1beta3/crypto/us/latest/quotes?symbols=ETH/USD', keys)).status).toBe(200);
    } finally {
      brokers.clearSymbol('BTC/USD');
    }
    expect((await paper('/v2/positions/BTCUSD', keys)).status).toBe(200);
  });

  it('slow: the answer comes after the delay, the other symbols’ at once', async () => {
    const keys = paperKey();
    const delayMs = 300;
    brokers.paper.failSymbol('MSFT', { kind: 'slow', delayMs, on: ['asset'] });
    brokers.data.failSymbol('MSFT', { kind: 'slow', delayMs });
    try {
      const [slowAsset, slowQuote, quick] = await Promise.all([
        paper('/v2/assets/MSFT', keys),
        data('/v2/stocks/MSFT/quotes/latest', keys),
        paper('/v2/assets/AAPL', keys),
      ]);
      expect(slowAsset.status).toBe(200);
      expect(slowAsset.json.symbol).toBe('MSFT');
      expect(slowQuote.json.symbol).toBe('MSFT');
      // Timers never fire early; a millisecond of slack for the clocks' rounding.
      expect(slowAsset.ms).toBeGreaterThanOrEqual(delayMs - 1);
      expect(slowQuote.ms).toBeGreaterThanOrEqual(delayMs - 1);
      expect(quick.ms).toBeLessThan(slowAsset.ms);
    } finally {
      brokers.clearSymbol('MSFT');
    }
  });

  it('no-price: no quote and no trade for the symbol; its asset and orders as usual', async () => {
    const keys = paperKey();
    brokers.failSymbol('MSFT', { kind: 'no-price' });
    brokers.failSymbol('ETH/USD', { kind: 'no-price' });
    try {
      expect((await data('/v2/stocks/MSFT/quotes/latest', keys)).json).toEqual({
        code: 40410000,
        message: 'no quote found',
      });
      expect((await data('/v2/stocks/MSFT/trades/latest', keys)).status).toBe(404);
      const crypto = await data('/v1beta3/crypto/us/latest/quotes?symbols=BTC/USD,ETH/USD', keys);
      expect(Object.keys(crypto.json.quotes)).toEqual(['BTC/USD']);
      expect((await paper('/v2/assets/MSFT', keys)).status).toBe(200);
      expect((await paper('/v2/orders?symbols=MSFT', keys)).status).toBe(200);
    } finally {
      brokers.clearSymbol('MSFT');
      brokers.clearSymbol('ETH/USD');
    }
    expect((await data('/v2/stocks/MSFT/quotes/latest', keys)).status).toBe(200);
  });
});

describe('counting', () => {
  it('tells changes from reads of each kind, per key and per symbol, across the three stand-ins', async () => {
    const keys = paperKey();
    const other = paperKey();
    const placed = (
      await paper('/v2/orders', keys, { method: 'POST', body: order({ type: 'limit', limit_price: '1' }) })
    ).json;
    await paper(`/v2/orders/${placed.id}`, keys, { method: 'PATCH', body: { limit_price: '2' } });
    await paper('/v2/orders', keys, { method: 'DELETE' });
    await paper('/v2/assets/AAPL', keys);
    await paper('/v2/assets/MSFT', keys);
    await paper('/v2/positions/AAPL', keys);
    await paper('/v2/orders?symbols=AAPL', keys);
    await paper('/v2/account', keys);
    await data('/v2/stocks/AAPL/quotes/latest', keys);
    await data('/v2/stocks/AAPL/trades/latest', keys);
    await paper('/v2/assets/AAPL', other);

    expect(brokers.counts(keys.apiKey)).toEqual({
      total: 10,
      changes: 3,
      asset: 2,
      position: 1,
      orders: 1,
      order: 0,
      quotes: 1,
      trades: 1,
    });
    expect(brokers.counts(keys.apiKey, 'AAPL')).toMatchObject({ changes: 2, asset: 1, quotes: 1, trades: 1 });
    expect(brokers.counts(other.apiKey)).toMatchObject({ total: 1, asset: 1, changes: 0 });

    // A request that reaches the broker is counted, whatever it is answered.
    const stranger = { apiKey: `PK${randomUUID().slice(0, 8)}`, secretKey: 'nope' };
    expect((await paper('/v2/orders', stranger, { method: 'POST', body: order() })).status).toBe(401);
    expect(brokers.counts(stranger.apiKey)).toMatchObject({ total: 1, changes: 1 });
    const last = brokers.paper.requests.at(-1);
    expect(last).toMatchObject({ kind: 'change', symbols: ['AAPL'], response: { status: 401 } });
  });
});

describe('gzip on request', () => {
  function raw(path: string, keys: Keys, acceptEncoding?: string) {
    return new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = http.get(
        `${brokers.paper.url}${path}`,
        {
          headers: {
            'apca-api-key-id': keys.apiKey,
            'apca-api-secret-key': keys.secretKey,
            ...(acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
    });
  }

  it('compresses a key’s answers when Accept-Encoding allows gzip, and only then', async () => {
    const rows = 800;
    const keys = paperKey({ gzip: true, activities: rows });
    const zipped = await raw('/v2/account/activities', keys, 'gzip, deflate, br');
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toBe('Accept-Encoding');
    const inflated = gunzipSync(zipped.body);
    expect(JSON.parse(inflated.toString('utf8'))).toHaveLength(rows);
    expect(inflated.length).toBeGreaterThan(150_000);
    expect(zipped.body.length).toBeLessThan(inflated.length / 10);
    expect(Number(zipped.headers['content-length'])).toBe(zipped.body.length);
    expect(brokers.paper.requests.at(-1)?.response).toEqual({
      status: 200,
      contentEncoding: 'gzip',
      bytes: zipped.body.length,
    });

    for (const refused of [undefined, 'identity', 'gzip;q=0, deflate', 'br']) {
      const plain = await raw('/v2/account/activities', keys, refused);
      expect(plain.headers['content-encoding'], refused).toBeUndefined();
      expect(plain.body.length).toBe(inflated.length);
    }
    expect((await raw('/v2/account', keys, '*')).headers['content-encoding']).toBe('gzip');
    // Without the option, never.
    const plainKey = paperKey({ activities: rows });
    expect((await raw('/v2/account/activities', plainKey, 'gzip')).headers['content-encoding']).toBeUndefined();
  });

  it('reads Accept-Encoding as RFC 9110 does', () => {
    expect(acceptsGzip('gzip')).toBe(true);
    expect(acceptsGzip('GZIP;q=0.5')).toBe(true);
    expect(acceptsGzip('deflate, *')).toBe(true);
    expect(acceptsGzip('*;q=0')).toBe(false);
    expect(acceptsGzip('*, gzip;q=0')).toBe(false);
    expect(acceptsGzip('identity')).toBe(false);
    expect(acceptsGzip('')).toBe(false);
    expect(acceptsGzip(undefined)).toBe(false);
  });
});
