// Every rule a grant's guardrails hold an engine's orders to (docs/engines.md,
// "Guardrails"), through the proxy on the real server in-process and a real
// database, against the Alpaca stand-ins: each rule lets an order through
// and refuses one, and every refusal reaches the trading API zero times and
// leaves an ENGINE_REFUSED event naming its rule. Facts are read from Alpaca
// only when a rule needs them, and reads are never checked.
import { describe, expect, it } from 'vitest';
import { dbKind } from '../support/databases.ts';
import { freshSymbol, type Granted, order, useGuardrailHarness } from '../support/guardrail-harness.ts';

const h = useGuardrailHarness();

const ALL_CLASSES = ['US_EQUITY', 'CRYPTO', 'US_OPTION'];

/** A fresh equity with a price of its own (exact figures for the notional tests). */
function priced(price: { ask?: string; bid?: string; last?: string }): string {
  const symbol = freshSymbol();
  h.brokers.data.setPrice(symbol, price);
  return symbol;
}

/** An OCC option symbol on a fresh root, with its quote. */
function pricedOption(price: { ask?: string; bid?: string; last?: string }): { symbol: string; root: string } {
  const root = freshSymbol('O').slice(0, 5);
  const symbol = `${root}261218C00050000`;
  h.brokers.data.setPrice(symbol, price);
  return { symbol, root };
}

describe(`guardrail rules of a new order (${dbKind})`, () => {
  it('orderClass: a multi-leg (mleg) order is refused before any lookup; a bracket passes, checked by its entry', async () => {
    const setup = await h.granted({ guardrails: { assetClasses: ALL_CLASSES, maxOrderQuantity: '5' } });
    const reads = h.reads(setup);
    await h.refused(
      setup,
      'POST',
      'v2/orders',
      {
        order_class: 'mleg',
        qty: '1',
        type: 'limit',
        limit_price: '1.5',
        time_in_force: 'day',
        legs: [
          { symbol: 'AAPL250620C00100000', ratio_qty: '1', side: 'buy', position_intent: 'buy_to_open' },
          { symbol: 'AAPL250620C00110000', ratio_qty: '1', side: 'sell', position_intent: 'sell_to_open' },
        ],
      },
      {
        status: 403,
        rule: 'orderClass',
        limit: 'simple,bracket,oco,oto',
        value: 'mleg',
        message: /multi-leg \(mleg\) order is refused/,
        // No top-level symbol or side: there is no single order to summarise.
        order: null,
      },
    );
    // Not an asset, a price, a position or an order was read for it.
    expect(h.reads(setup)).toEqual(reads);

    const bracket = (qty: string) =>
      order({
        qty,
        type: 'limit',
        limit_price: '190',
        order_class: 'bracket',
        take_profit: { limit_price: '200' },
        stop_loss: { stop_price: '180' },
      });
    const placed = await h.passes(setup, 'POST', 'v2/orders', bracket('5'));
    expect(placed.json).toMatchObject({ order_class: 'bracket', qty: '5' });
    expect(placed.json.legs).toHaveLength(2);
    // Its entry is what the rules see: over maxOrderQuantity is refused as any order would be.
    await h.refused(setup, 'POST', 'v2/orders', bracket('6'), {
      status: 403,
      rule: 'maxOrderQuantity',
      limit: '5',
      value: '6',
      message: /quantity 6 is over maxOrderQuantity 5/,
      order: { qty: '6' },
    });
  });

  it('tradingState HALTED: no new order and no replacement; cancelling one order and closing one position still work', async () => {
    const symbol = freshSymbol();
    const setup = await h.granted({ positions: [{ symbol, qty: 10 }] });
    const open = await h.passes(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', limit_price: '90' }));
    await h.set(setup, { tradingState: 'HALTED' });

    await h.refused(setup, 'POST', 'v2/orders', order({ symbol }), {
      status: 403,
      rule: 'tradingState',
      limit: 'HALTED',
      value: 'buy 1',
      message: /tradingState is HALTED: no new or replaced order/,
      order: { symbol, qty: '1' },
    });
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', qty: '2' }), {
      status: 403,
      rule: 'tradingState',
      limit: 'HALTED',
      value: 'sell 2',
      message: /HALTED/,
      order: { qty: '2' },
    });
    await h.refused(
      setup,
      'PATCH',
      `v2/orders/${open.json.id}`,
      { qty: '1' },
      {
        status: 403,
        rule: 'tradingState',
        limit: 'HALTED',
        value: 'buy 1',
        message: /HALTED/,
        request: 'PATCH /v2/orders/{id}',
        order: { symbol, side: 'buy', type: 'limit', qty: '1' },
      },
    );
    // Cancelling one order and closing one position reduce risk: forwarded.
    await h.passes(setup, 'DELETE', `v2/orders/${open.json.id}`, undefined, 204);
    const closed = await h.passes(setup, 'DELETE', `v2/positions/${symbol}`);
    expect(closed.json).toMatchObject({ symbol, side: 'sell', qty: '10' });
  });

  it('tradingState REDUCING: sells up to the long position and buys up to the short one pass; the rest is refused', async () => {
    const [long, short, none] = [freshSymbol(), freshSymbol(), freshSymbol()];
    const setup = await h.granted({
      guardrails: { tradingState: 'REDUCING' },
      positions: [
        { symbol: long, qty: 10 },
        { symbol: short, qty: -5 },
      ],
    });
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: long, side: 'sell', qty: '10.5' }), {
      status: 403,
      rule: 'tradingState',
      limit: 'REDUCING',
      value: 'sell 10.5',
      message: new RegExp(`a sell of 10.5 ${long} is over the long position of 10 held`),
      order: { qty: '10.5' },
    });
    const sold = await h.passes(setup, 'POST', 'v2/orders', order({ symbol: long, side: 'sell', qty: '10' }));
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: short, qty: '6' }), {
      status: 403,
      rule: 'tradingState',
      limit: 'REDUCING',
      value: 'buy 6',
      message: new RegExp(`a buy of 6 ${short} is over the short position of 5 held`),
    });
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol: short, qty: '5' }));
    // No position: a buy would open one.
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: none }), {
      status: 403,
      rule: 'tradingState',
      limit: 'REDUCING',
      value: 'buy 1',
      message: /over the short position of 0 held/,
    });
    // A sell of a short position would grow it.
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: short, side: 'sell' }), {
      status: 403,
      rule: 'tradingState',
      limit: 'REDUCING',
      value: 'sell 1',
      message: /over the long position of 0 held/,
    });
    await h.passes(setup, 'DELETE', `v2/orders/${sold.json.id}`, undefined, 204);
    await h.passes(setup, 'DELETE', `v2/positions/${short}`);
  });

  it('assetClasses: an equity is refused under [CRYPTO], BTC/USD passes; an OCC symbol is US_OPTION without asking Alpaca', async () => {
    const setup = await h.granted({ guardrails: { assetClasses: ['CRYPTO'] } });
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: 'AAPL' }), {
      status: 403,
      rule: 'assetClasses',
      limit: 'CRYPTO',
      value: 'US_EQUITY',
      message: /asset class US_EQUITY of AAPL is not among assetClasses CRYPTO/,
    });
    const crypto = await h.passes(
      setup,
      'POST',
      'v2/orders',
      order({ symbol: 'BTC/USD', qty: '0.01', time_in_force: 'gtc' }),
    );
    expect(crypto.json).toMatchObject({ symbol: 'BTC/USD', asset_class: 'crypto' });
    const option = pricedOption({ ask: '2', bid: '1.9' });
    const assetReads = h.reads(setup).asset;
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: option.symbol }), {
      status: 403,
      rule: 'assetClasses',
      limit: 'CRYPTO',
      value: 'US_OPTION',
      message: new RegExp(`asset class US_OPTION of ${option.symbol} is not among assetClasses CRYPTO`),
    });
    // The pair (with its slash) and the OCC symbol are classified as written.
    expect(h.reads(setup).asset).toBe(assetReads);

    await h.set(setup, { assetClasses: ['US_OPTION'] });
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol: option.symbol }));
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: 'ETH/USD', time_in_force: 'gtc' }), {
      status: 403,
      rule: 'assetClasses',
      limit: 'US_OPTION',
      value: 'CRYPTO',
      message: /CRYPTO of ETH\/USD/,
    });
  });

  it('symbols: upper-case match, a crypto pair with its slash (BTCUSD resolved through Alpaca’s asset), an option by its root', async () => {
    const setup = await h.granted({
      guardrails: { symbols: ['aapl', 'btc/usd'], assetClasses: ALL_CLASSES },
    });
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol: 'aapl' }));
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol: 'BTC/USD', qty: '0.01', time_in_force: 'gtc' }));
    // Written without its slash, the pair is what Alpaca's asset says it is: BTC/USD.
    const assetsBefore = h.reads(setup, 'BTCUSD').asset;
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol: 'BTCUSD', qty: '0.01', time_in_force: 'gtc' }));
    expect(h.reads(setup, 'BTCUSD').asset).toBe(assetsBefore + 1);
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol: 'AAPL250620C00100000' }));

    for (const [symbol, value] of [
      ['MSFT', 'MSFT'],
      ['ETH/USD', 'ETH/USD'],
      ['ETHUSD', 'ETH/USD'],
      ['msft250620C00100000', 'MSFT'],
    ] as const) {
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol, time_in_force: 'gtc' }), {
        status: 403,
        rule: 'symbols',
        limit: 'AAPL,BTC/USD',
        value,
        message: new RegExp(
          `${value.includes('/') ? 'symbol' : '(symbol|option root)'} ${value} is not among symbols AAPL, BTC/USD`,
        ),
        order: { symbol },
      });
    }
  });

  it('symbol: an asset Alpaca does not know (ZZ…) or marks tradable: false (DELIST) is refused', async () => {
    // Under the defaults (assetClasses [US_EQUITY]) a ticker's class is Alpaca's asset's.
    const setup = await h.granted();
    const unknown = `ZZ${freshSymbol('')}`;
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: unknown }), {
      status: 403,
      rule: 'symbol',
      limit: 'tradable',
      value: 'unknown',
      message: new RegExp(`Alpaca does not know the symbol ${unknown}`),
      order: { symbol: unknown },
    });
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: 'DELIST' }), {
      status: 403,
      rule: 'symbol',
      limit: 'tradable',
      value: 'not tradable',
      message: /Alpaca marks DELIST as not tradable/,
    });
    // Every class allowed, but a symbols list to match: the asset is read all the same.
    const listed = await h.granted({ guardrails: { assetClasses: ALL_CLASSES, symbols: ['DELIST', 'AAPL'] } });
    await h.refused(listed, 'POST', 'v2/orders', order({ symbol: 'delist' }), {
      status: 403,
      rule: 'symbol',
      limit: 'tradable',
      value: 'not tradable',
      message: /not tradable/,
    });
    await h.refused(listed, 'POST', 'v2/orders', order({ symbol: unknown }), {
      status: 403,
      rule: 'symbol',
      limit: 'tradable',
      value: 'unknown',
      message: /does not know/,
    });
  });

  it('orderTypes: only the listed types pass', async () => {
    const setup = await h.granted({ guardrails: { orderTypes: ['MARKET', 'LIMIT'] } });
    await h.passes(setup, 'POST', 'v2/orders', order());
    await h.passes(setup, 'POST', 'v2/orders', order({ type: 'limit', limit_price: '150' }));
    for (const [type, extra] of [
      ['STOP', { stop_price: '150' }],
      ['STOP_LIMIT', { stop_price: '150', limit_price: '149' }],
      ['TRAILING_STOP', { trail_percent: '2' }],
    ] as const) {
      await h.refused(setup, 'POST', 'v2/orders', order({ type: type.toLowerCase(), ...extra }), {
        status: 403,
        rule: 'orderTypes',
        limit: 'MARKET,LIMIT',
        value: type,
        message: new RegExp(`order type ${type} is not among orderTypes MARKET, LIMIT`),
        order: { type: type.toLowerCase() },
      });
    }
  });

  it('allowExtendedHours: an extended-hours order is refused until the grant allows it', async () => {
    const setup = await h.granted();
    const extended = () => order({ type: 'limit', limit_price: '150', extended_hours: true });
    await h.refused(setup, 'POST', 'v2/orders', extended(), {
      status: 403,
      rule: 'allowExtendedHours',
      limit: 'false',
      value: 'true',
      message: /extended-hours order is not allowed \(allowExtendedHours is false\)/,
    });
    await h.passes(setup, 'POST', 'v2/orders', order({ type: 'limit', limit_price: '150', extended_hours: false }));
    await h.set(setup, { allowExtendedHours: true });
    const placed = await h.passes(setup, 'POST', 'v2/orders', extended());
    expect(placed.json.extended_hours).toBe(true);
  });

  it('maxOrderQuantity: qty, and a notional order divided by the reference price; equal to the cap passes', async () => {
    const symbol = priced({ ask: '200', bid: '199', last: '199.5' });
    const setup = await h.granted({ guardrails: { maxOrderQuantity: '10' } });
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, qty: '10' }));
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, qty: '10.000000001' }), {
      status: 403,
      rule: 'maxOrderQuantity',
      limit: '10',
      value: '10.000000001',
      message: /quantity 10.000000001 is over maxOrderQuantity 10/,
      order: { qty: '10.000000001', notional: null },
    });
    // 2000 USD at the ask of 200: 10 shares.
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, qty: undefined, notional: '2000' }));
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, qty: undefined, notional: '2000.01' }), {
      status: 403,
      rule: 'maxOrderQuantity',
      limit: '10',
      value: '10.00005',
      message: /quantity 10.00005 is over maxOrderQuantity 10/,
      order: { qty: null, notional: '2000.01', referencePrice: '200' },
    });
  });

  it('maxOrderNotional: every notional formula, equal to the cap passes and a cent under it refuses', async () => {
    const symbol = priced({ ask: '200', bid: '199', last: '199.5' });
    const option = pricedOption({ ask: '2.5', bid: '2.4' });
    const setup = await h.granted({ guardrails: { allowShortSelling: true, assetClasses: ALL_CLASSES } });
    // [what, order, the notional it counts, the reference price read (null: none needed)]
    const cases: [string, Record<string, unknown>, string, string | null][] = [
      ['a notional order: its amount', { notional: '1500', qty: undefined }, '1500', null],
      ['a buy limit: qty × limit', { type: 'limit', qty: '10', limit_price: '150' }, '1500', null],
      [
        'a sell limit: qty × the bid when higher',
        { side: 'sell', type: 'limit', qty: '10', limit_price: '150' },
        '1990',
        '199',
      ],
      [
        'a sell limit: qty × the limit when higher',
        { side: 'sell', type: 'limit', qty: '10', limit_price: '210' },
        '2100',
        '199',
      ],
      ['a buy stop: qty × the ask when higher', { type: 'stop', qty: '10', stop_price: '150' }, '2000', '200'],
      ['a buy stop: qty × the stop when higher', { type: 'stop', qty: '10', stop_price: '250' }, '2500', '200'],
      [
        'a buy stop limit: qty × limit',
        { type: 'stop_limit', qty: '10', stop_price: '205', limit_price: '206' },
        '2060',
        null,
      ],
      [
        'a sell stop limit: qty × the bid when higher',
        { side: 'sell', type: 'stop_limit', qty: '10', stop_price: '190', limit_price: '180' },
        '1990',
        '199',
      ],
      ['a buy at market: qty × the ask', { qty: '10' }, '2000', '200'],
      ['a sell at market: qty × the bid', { side: 'sell', qty: '10' }, '1990', '199'],
      [
        'a trailing stop: qty × the reference price',
        { type: 'trailing_stop', qty: '10', trail_percent: '5' },
        '2000',
        '200',
      ],
    ];
    for (const [what, fields, notional, reference] of cases) {
      const quotes = h.reads(setup, symbol).quotes;
      await h.set(setup, { maxOrderNotional: notional });
      const res = await h.passes(setup, 'POST', 'v2/orders', order({ symbol, ...fields }));
      expect(res.status, what).toBe(200);
      const event = (await h.events(setup))[0];
      expect(event?.engineOrder, what).toMatchObject({ estimatedNotional: notional, referencePrice: reference });
      expect(h.reads(setup, symbol).quotes - quotes, `${what}: quotes read`).toBe(reference === null ? 0 : 1);
      const cap = (Number(notional) - 0.01).toFixed(2);
      await h.set(setup, { maxOrderNotional: cap });
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol, ...fields }), {
        status: 403,
        rule: 'maxOrderNotional',
        limit: cap,
        value: notional,
        message: new RegExp(
          `estimated notional ${Number(notional).toLocaleString('en-US', { minimumFractionDigits: 2 })} USD is over maxOrderNotional ${Number(cap).toLocaleString('en-US', { minimumFractionDigits: 2 })} USD`,
        ),
        order: { estimatedNotional: notional, referencePrice: reference },
      });
    }
    // Options: the contract multiplier, 100. Three contracts at the ask of 2.5: 750; at a limit of 2: 600.
    for (const [fields, notional] of [
      [{ qty: '3' }, '750'],
      [{ qty: '3', type: 'limit', limit_price: '2' }, '600'],
    ] as const) {
      await h.set(setup, { maxOrderNotional: notional });
      await h.passes(setup, 'POST', 'v2/orders', order({ symbol: option.symbol, ...fields }));
      await h.set(setup, { maxOrderNotional: String(Number(notional) - 1) });
      await h.refused(setup, 'POST', 'v2/orders', order({ symbol: option.symbol, ...fields }), {
        status: 403,
        rule: 'maxOrderNotional',
        limit: String(Number(notional) - 1),
        value: notional,
        message: /over maxOrderNotional/,
        order: { estimatedNotional: notional },
      });
    }
  });

  it('maxDailyNotional: the orders accepted today add up; reaching the cap passes, going over it refuses', async () => {
    const symbol = priced({ ask: '100', bid: '99' });
    const setup = await h.granted({ guardrails: { maxDailyNotional: '3000' } });
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', qty: '10', limit_price: '100' }));
    expect(await h.usage(setup)).toMatchObject({ orders: 1, notional: '1000' });
    // A market buy is priced at the ask: 20 × 100.
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, qty: '20' }));
    expect(await h.usage(setup)).toMatchObject({ orders: 2, notional: '3000' });
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', qty: '1', limit_price: '0.01' }), {
      status: 403,
      rule: 'maxDailyNotional',
      limit: '3000',
      value: '3000.01',
      message: /0\.01 USD more would bring today's notional to 3,000\.01 USD, over maxDailyNotional 3,000 USD/,
      order: { estimatedNotional: '0.01' },
    });
    // A refusal counts nothing.
    expect(await h.usage(setup)).toMatchObject({ orders: 2, notional: '3000' });
  });

  it('priceCollarPercent: limit and stop prices within the percentage of the reference price', async () => {
    const symbol = priced({ ask: '200', bid: '190' });
    const setup = await h.granted({
      guardrails: { priceCollarPercent: '5' },
      positions: [{ symbol, qty: 100 }],
    });
    // A buy is measured from the ask (200): 5 % is 10.
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', limit_price: '210' }));
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', limit_price: '190' }));
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, type: 'limit', limit_price: '210.5' }), {
      status: 403,
      rule: 'priceCollarPercent',
      limit: '5',
      value: '5.25',
      message: /limit_price 210.5 is 5.25% from the reference price 200, over priceCollarPercent 5/,
      order: { referencePrice: '200' },
    });
    // A sell from the bid (190): 5 % is 9.5.
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', type: 'limit', limit_price: '180.5' }));
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', type: 'stop', stop_price: '171' }), {
      status: 403,
      rule: 'priceCollarPercent',
      limit: '5',
      value: '10',
      message: /stop_price 171 is 10.00% from the reference price 190/,
      order: { referencePrice: '190' },
    });
    // A stop limit: both prices are held to it.
    await h.refused(
      setup,
      'POST',
      'v2/orders',
      order({ symbol, type: 'stop_limit', stop_price: '205', limit_price: '211' }),
      { status: 403, rule: 'priceCollarPercent', limit: '5', value: '5.5', message: /limit_price 211 is 5.50%/ },
    );
    // An order without a limit or stop price has nothing to hold to it, and reads no price for it.
    const quotes = h.reads(setup, symbol).quotes;
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol }));
    expect(h.reads(setup, symbol).quotes).toBe(quotes);
  });

  it('allowShortSelling: a sell beyond the long position less the open sell orders is refused; so is an option sell_to_open', async () => {
    const symbol = freshSymbol();
    const option = pricedOption({ ask: '2', bid: '1.9' });
    const setup = await h.granted({
      guardrails: { assetClasses: ['US_EQUITY', 'US_OPTION'] },
      positions: [{ symbol, qty: 10 }],
    });
    await h.passes(
      setup,
      'POST',
      'v2/orders',
      order({ symbol, side: 'sell', type: 'limit', qty: '4', limit_price: '120' }),
    );
    // 10 held, 4 already being sold: 6 left.
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', qty: '7' }), {
      status: 403,
      rule: 'allowShortSelling',
      limit: '6',
      value: '7',
      message: new RegExp(
        `a sell of 7 ${symbol} is over the 10 held less 4 in open sell orders \\(allowShortSelling is false\\)`,
      ),
      order: { qty: '7' },
    });
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', qty: '6' }));
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', qty: '0.5' }), {
      status: 403,
      rule: 'allowShortSelling',
      limit: '0',
      value: '0.5',
      message: /over the 10 held less 10 in open sell orders/,
    });
    // Nothing held at all.
    await h.refused(setup, 'POST', 'v2/orders', order({ symbol: freshSymbol(), side: 'sell' }), {
      status: 403,
      rule: 'allowShortSelling',
      limit: '0',
      value: '1',
      message: /over the 0 held less 0 in open sell orders/,
    });
    await h.refused(
      setup,
      'POST',
      'v2/orders',
      order({ symbol: option.symbol, side: 'sell', position_intent: 'sell_to_open' }),
      {
        status: 403,
        rule: 'allowShortSelling',
        limit: 'false',
        value: 'sell_to_open',
        message: /option sell that opens a position \(sell_to_open\) is not allowed/,
      },
    );
    await h.set(setup, { allowShortSelling: true });
    await h.passes(setup, 'POST', 'v2/orders', order({ symbol, side: 'sell', qty: '100' }));
    await h.passes(
      setup,
      'POST',
      'v2/orders',
      order({ symbol: option.symbol, side: 'sell', position_intent: 'sell_to_open' }),
    );
  });

  it('maxDailyOrders: the orders accepted today are counted; one more than the cap is refused', async () => {
    const setup = await h.granted({ guardrails: { maxDailyOrders: 2 } });
    await h.passes(setup, 'POST', 'v2/orders', order());
    await h.passes(setup, 'POST', 'v2/orders', order());
    expect((await h.usage(setup)).orders).toBe(2);
    await h.refused(setup, 'POST', 'v2/orders', order(), {
      status: 403,
      rule: 'maxDailyOrders',
      limit: '2',
      value: '3',
      message: /this would be order 3 today, over maxDailyOrders 2/,
    });
    expect((await h.usage(setup)).orders).toBe(2);
    // Cancelling is not an order.
    const placed = (await h.events(setup)).length;
    const open = h.brokers.paper.orders(setup.credential.apiKey)[0];
    await h.passes(setup, 'DELETE', `v2/orders/${open?.id}`, undefined, 204);
    expect((await h.events(setup)).length).toBe(placed + 1);
    expect((await h.usage(setup)).orders).toBe(2);
  });

  it('allowAccountWideActions: DELETE v2/orders and DELETE v2/positions are refused until the grant allows them', async () => {
    const symbol = freshSymbol();
    const setup = await h.granted({ positions: [{ symbol, qty: 3 }] });
    await h.passes(setup, 'POST', 'v2/orders', order({ type: 'limit', limit_price: '100' }));
    for (const [path, action] of [
      ['v2/orders', 'DELETE /v2/orders'],
      ['v2/positions', 'DELETE /v2/positions'],
      ['v2/positions?cancel_orders=true', 'DELETE /v2/positions'],
    ] as const) {
      await h.refused(setup, 'DELETE', path, undefined, {
        status: 403,
        rule: 'allowAccountWideActions',
        limit: 'false',
        value: action,
        message: /is not allowed \(allowAccountWideActions is false\)/,
        request: action,
        order: null,
      });
    }
    // Whatever the trading state, once allowed.
    await h.set(setup, { allowAccountWideActions: true, tradingState: 'HALTED' });
    expect((await h.passes(setup, 'DELETE', 'v2/orders', undefined, 207)).json).toHaveLength(1);
    expect((await h.passes(setup, 'DELETE', 'v2/positions', undefined, 207)).json).toHaveLength(1);
  });

  it('reads are checked by nothing new: no lookup for a GET under the strictest guardrails', async () => {
    const setup = await h.granted({
      guardrails: {
        tradingState: 'HALTED',
        symbols: ['ZZZZ'],
        assetClasses: ['CRYPTO'],
        orderTypes: ['MARKET'],
        maxOrderNotional: '0.01',
        maxOrderQuantity: '0.000000001',
        maxDailyNotional: '0.01',
        maxDailyOrders: 1,
        priceCollarPercent: '0.01',
      },
      positions: [{ symbol: 'AAPL', qty: 1 }],
    });
    const reads = h.reads(setup);
    const requests = h.brokers.paper.counts(setup.credential.apiKey).total;
    for (const path of ['v2/account', 'v2/positions/AAPL', 'v2/orders?status=all', 'v2/assets/AAPL']) {
      expect((await h.send('GET', setup.path(path))).status, path).toBe(200);
    }
    // Exactly the engine's own reads went out: no asset, price, position or order looked up for a check.
    expect(h.brokers.paper.counts(setup.credential.apiKey).total).toBe(requests + 4);
    expect(h.reads(setup)).toEqual({
      ...reads,
      asset: reads.asset + 1,
      position: reads.position + 1,
      orders: reads.orders + 1,
    });
    expect(h.brokers.data.counts(setup.credential.apiKey).total).toBe(0);
    const trail = await h.events(setup);
    expect(trail.slice(0, 4).map((e) => [e.action, e.guardrailRule])).toEqual(
      Array.from({ length: 4 }, () => ['ENGINE_REQUEST', null]),
    );
  });
});

describe(`facts are read from Alpaca only when a rule needs them (${dbKind})`, () => {
  /** The reads one order made, about its symbol. */
  async function readsOf(setup: Granted, body: Record<string, unknown>) {
    const symbol = body.symbol as string;
    const before = h.reads(setup, symbol);
    await h.passes(setup, 'POST', 'v2/orders', body);
    const after = h.reads(setup, symbol);
    return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
  }
  const none = { asset: 0, position: 0, orders: 0, order: 0, quotes: 0, trades: 0 };

  it('a market buy under the defaults reads only its asset (for its class), once: the asset is cached', async () => {
    const setup = await h.granted();
    const symbol = freshSymbol();
    expect(await readsOf(setup, order({ symbol }))).toEqual({ ...none, asset: 1 });
    expect(await readsOf(setup, order({ symbol }))).toEqual(none);
    // Under every class, an order needs nothing at all.
    const open = await h.granted({ guardrails: { assetClasses: ALL_CLASSES } });
    expect(await readsOf(open, order({ symbol: freshSymbol() }))).toEqual(none);
  });

  it('a sell under allowShortSelling: false reads the position and the open orders, and no price', async () => {
    const symbol = freshSymbol();
    const setup = await h.granted({ positions: [{ symbol, qty: 5 }] });
    expect(await readsOf(setup, order({ symbol, side: 'sell' }))).toEqual({
      ...none,
      asset: 1,
      position: 1,
      orders: 1,
    });
    const query = h.brokers.paper.requests
      .filter((r) => r.apiKey === setup.credential.apiKey && r.kind === 'orders')
      .at(-1)?.query;
    expect(Object.fromEntries(new URLSearchParams(query))).toEqual({
      status: 'open',
      side: 'sell',
      nested: 'true',
      limit: '500',
      symbols: symbol,
    });
  });

  it('a market buy under maxOrderNotional reads the quote (its ask), and no position', async () => {
    const symbol = priced({ ask: '50', bid: '49' });
    const setup = await h.granted({ guardrails: { maxOrderNotional: '1000' } });
    expect(await readsOf(setup, order({ symbol, qty: '4' }))).toEqual({ ...none, asset: 1, quotes: 1 });
    expect((await h.events(setup))[0]?.engineOrder).toMatchObject({ estimatedNotional: '200', referencePrice: '50' });
  });

  it('a quote with an ask of 0 falls back to the latest trade', async () => {
    const symbol = priced({ ask: '0', bid: '49', last: '51.25' });
    const setup = await h.granted({ guardrails: { maxOrderNotional: '1000' } });
    expect(await readsOf(setup, order({ symbol, qty: '4' }))).toEqual({ ...none, asset: 1, quotes: 1, trades: 1 });
    expect((await h.events(setup))[0]?.engineOrder).toMatchObject({
      estimatedNotional: '205',
      referencePrice: '51.25',
    });
    // A sell uses the bid, which is there: no trade read.
    const sell = await h.granted({ guardrails: { maxOrderNotional: '1000', allowShortSelling: true } });
    expect(await readsOf(sell, order({ symbol, side: 'sell', qty: '4' }))).toEqual({ ...none, quotes: 1 });
    expect((await h.events(sell))[0]?.engineOrder).toMatchObject({ estimatedNotional: '196', referencePrice: '49' });
  });

  it('a crypto pair and an option are priced at their own market data endpoints', async () => {
    const option = pricedOption({ ask: '3', bid: '2.9' });
    const setup = await h.granted({ guardrails: { maxOrderNotional: '100000', assetClasses: ALL_CLASSES } });
    expect(await readsOf(setup, order({ symbol: 'ETH/USD', qty: '2', time_in_force: 'gtc' }))).toEqual({
      ...none,
      quotes: 1,
    });
    expect((await h.events(setup))[0]?.engineOrder).toMatchObject({
      estimatedNotional: '7001.5',
      referencePrice: '3500.75',
    });
    expect(await readsOf(setup, order({ symbol: option.symbol, qty: '2' }))).toEqual({ ...none, quotes: 1 });
    expect((await h.events(setup))[0]?.engineOrder).toMatchObject({ estimatedNotional: '600', referencePrice: '3' });
    const paths = h.brokers.data.requests
      .filter((r) => r.apiKey === setup.credential.apiKey)
      .map((r) => `${r.path}?${r.query}`);
    expect(paths).toEqual([
      '/v1beta3/crypto/us/latest/quotes?symbols=ETH%2FUSD',
      `/v1beta1/options/quotes/latest?symbols=${option.symbol}`,
    ]);
  });
});
