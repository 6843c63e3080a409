// The guardrail rules by example: decimals, the model and its validation,
// reading Alpaca's bodies, what each check needs and decides (each rule both
// allowing and refusing), and the trading day.
import { Decimal as PlainDecimalJs } from 'decimal.js';
import { describe, expect, it } from 'vitest';
import {
  classifySymbol,
  isOrderError,
  openSellQuantity,
  overlayReplacement,
  type ParsedOrder,
  parseAlpacaAsset,
  parseAlpacaOrder,
  parseAlpacaPosition,
  parseOrder,
} from '../../src/domain/alpaca-orders.ts';
import {
  checkDecimalInput,
  Decimal,
  divideRoundingUp,
  formatDecimal,
  groupDigits,
  JsonNumber,
  parseDecimal,
  parseJsonExact,
} from '../../src/domain/decimal.ts';
import { InvalidInputError } from '../../src/domain/errors.ts';
import {
  checkAccountWideAction,
  checkOrder,
  type Decision,
  type OrderFacts,
  planOrderCheck,
  replacedOrderUnavailable,
  type Usage,
} from '../../src/domain/guardrail-checks.ts';
import {
  applyGuardrailsInput,
  DEFAULT_GUARDRAILS,
  GUARDRAIL_FIELDS,
  type Guardrails,
  type GuardrailsInput,
  guardrailsToJson,
  isDefaultGuardrails,
  tradingDay,
} from '../../src/domain/guardrails.ts';

const d = (text: string) => new Decimal(text);
const ok = <T>(value: T) => ({ ok: true as const, value });
const NO_USAGE: Usage = { orders: 0, notional: d('0') };
const EQUITY = (symbol: string) =>
  ok({ symbol, assetClass: 'US_EQUITY' as const, classText: 'us_equity', tradable: true });
const CRYPTO = (symbol: string) => ok({ symbol, assetClass: 'CRYPTO' as const, classText: 'crypto', tradable: true });

function grant(input: GuardrailsInput = {}): Guardrails {
  return applyGuardrailsInput(DEFAULT_GUARDRAILS, input).guardrails;
}

function order(body: Record<string, unknown>): ParsedOrder {
  const parsed = parseOrder(body);
  if (isOrderError(parsed)) throw new Error(`${parsed.field}: ${parsed.error}`);
  return parsed;
}

function alpacaOrder(body: Record<string, unknown>): ParsedOrder {
  const parsed = parseAlpacaOrder(body);
  if (isOrderError(parsed)) throw new Error(`${parsed.field}: ${parsed.error}`);
  return parsed;
}

const buy = (extra: Record<string, unknown> = {}) =>
  order({ symbol: 'AAPL', side: 'buy', type: 'market', qty: '10', ...extra });
const sell = (extra: Record<string, unknown> = {}) =>
  order({ symbol: 'AAPL', side: 'sell', type: 'market', qty: '10', ...extra });

function check(guardrails: Guardrails, o: ParsedOrder, facts: OrderFacts = {}, usage: Usage = NO_USAGE): Decision {
  return checkOrder({ guardrails, order: o, kind: 'new', usage, facts });
}

function refusedBy(decision: Decision): string {
  return decision.allowed ? 'allowed' : decision.rule;
}

function thrown(run: () => unknown): InvalidInputError {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidInputError) return error;
    throw error;
  }
  throw new Error('nothing was thrown');
}

describe('decimals', () => {
  it('parses strings and numbers as Alpaca bodies carry them, exactly', () => {
    expect(parseDecimal('10')?.toString()).toBe('10');
    expect(parseDecimal('0.5')?.toString()).toBe('0.5');
    expect(parseDecimal('.5')?.toString()).toBe('0.5');
    expect(parseDecimal('-3')?.toString()).toBe('-3');
    expect(parseDecimal(10)?.toString()).toBe('10');
    expect(parseDecimal(1.5)?.toString()).toBe('1.5');
    expect(parseDecimal('12345678901234567890.12345678901234567891')?.toFixed()).toBe(
      '12345678901234567890.12345678901234567891',
    );
    expect(parseDecimal(new JsonNumber('0.30000000000000001'))?.toFixed()).toBe('0.30000000000000001');
  });

  it('refuses what is not a plain decimal, or not what was sent', () => {
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '1e3',
      '1E3',
      '',
      ' 1',
      '1 ',
      '0x10',
      'NaN',
      'Infinity',
      '1.2.3',
      '+1',
      null,
      undefined,
      true,
      {},
      [],
      1e21,
      0.1 + 0.2, // printed with 17 digits: the text sent was not that
      '123456789012345678901', // 21 integer digits
      '0.123456789012345678901', // 21 decimals
      new JsonNumber('1e2'),
    ]) {
      expect(parseDecimal(bad), String(bad)).toBeNull();
    }
  });

  it('reads JSON numbers as written', () => {
    const body = parseJsonExact('{"qty": 0.30000000000000001, "legs": [{"ratio_qty": 1}], "symbol": "AAPL"}') as {
      qty: JsonNumber;
      legs: { ratio_qty: JsonNumber }[];
      symbol: string;
    };
    expect(body.qty).toBeInstanceOf(JsonNumber);
    expect(body.qty.text).toBe('0.30000000000000001');
    expect(body.legs[0]?.ratio_qty.text).toBe('1');
    expect(body.symbol).toBe('AAPL');
    expect(JSON.stringify(body)).toBe('{"qty":0.3,"legs":[{"ratio_qty":1}],"symbol":"AAPL"}');
    expect(() => parseJsonExact('{')).toThrow(SyntaxError);
  });

  it('formats in plain notation without trailing zeros, and groups digits for messages', () => {
    expect(formatDecimal(d('5000'))).toBe('5000');
    expect(formatDecimal(d('0.250'))).toBe('0.25');
    expect(formatDecimal(d('1e-30'))).toBe('0.000000000000000000000000000001');
    expect(formatDecimal(d('1e50'))).toBe(`1${'0'.repeat(50)}`);
    expect(formatDecimal(d('-0'))).toBe('0');
    expect(groupDigits('12345.6')).toBe('12,345.6');
    expect(groupDigits('5000')).toBe('5,000');
    expect(groupDigits('999')).toBe('999');
    expect(groupDigits('-1234567.891')).toBe('-1,234,567.891');
  });

  it('multiplies 27-digit numbers exactly', () => {
    const a = '123456789012345678.123456789';
    const exact = (BigInt(a.replace('.', '')) * BigInt(a.replace('.', ''))).toString();
    const product = d(a).mul(d(a)).toFixed();
    expect(product.replace('.', '')).toBe(exact);
  });

  it('checks Decimal input: at most 18 digits before the point and 9 after, not negative', () => {
    expect(checkDecimalInput('5000')).toEqual({ ok: true, value: d('5000') });
    expect(checkDecimalInput('0.25')).toEqual({ ok: true, value: d('0.25') });
    expect(checkDecimalInput('999999999999999999.999999999').ok).toBe(true);
    expect(checkDecimalInput('000001.500000000000').ok).toBe(true);
    const refused: [unknown, RegExp][] = [
      ['-1', /negative/],
      ['1000000000000000000', /18 digits before/],
      ['0.0000000001', /9 digits after/],
      ['1e3', /digits/],
      ['', /digits/],
      [' 5', /digits/],
      ['.5', /digits/],
      [5, /string/],
      [null, /string/],
    ];
    for (const [text, message] of refused) {
      const result = checkDecimalInput(text);
      expect(result.ok, String(text)).toBe(false);
      if (!result.ok) expect(result.message).toMatch(message);
    }
  });

  it('rounds a quotient up, never below the exact value', () => {
    expect(divideRoundingUp(d('1'), d('3'), 9).toString()).toBe('0.333333334');
    expect(divideRoundingUp(d('2'), d('4'), 9).toString()).toBe('0.5');
    expect(divideRoundingUp(d('0.000000003'), d('0.3'), 9).toString()).toBe('0.00000001');
    expect(divideRoundingUp(d('100'), d('0.07'), 9).toString()).toBe('1428.571428572');
    // 81 digits: decimal.js would round the quotient to 80 digits, here 7 exactly.
    const b = d(`1${'0'.repeat(79)}1`);
    const a = d(`7${'0'.repeat(79)}8`);
    expect(a.div(b).toDecimalPlaces(9, Decimal.ROUND_UP).toString()).toBe('7');
    expect(divideRoundingUp(a, b, 9).toString()).toBe('7.000000001');
  });
});

describe('guardrails: model and validation', () => {
  it('has the defaults and the field order of the API', () => {
    expect(GUARDRAIL_FIELDS).toEqual([
      'tradingState',
      'symbols',
      'assetClasses',
      'orderTypes',
      'allowShortSelling',
      'allowExtendedHours',
      'allowAccountWideActions',
      'maxOrderNotional',
      'maxOrderQuantity',
      'maxDailyNotional',
      'maxDailyOrders',
      'priceCollarPercent',
    ]);
    expect(DEFAULT_GUARDRAILS).toEqual({
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
    });
    expect(isDefaultGuardrails(DEFAULT_GUARDRAILS)).toBe(true);
  });

  it('keeps what is left out, sets what is given, clears caps and symbols with null', () => {
    const first = applyGuardrailsInput(DEFAULT_GUARDRAILS, {
      symbols: ['msft', 'aapl', 'AAPL', 'btc/usd'],
      maxOrderNotional: '5000',
      maxDailyOrders: 10,
      assetClasses: ['CRYPTO', 'US_EQUITY', 'CRYPTO'],
    });
    expect(first.guardrails.symbols).toEqual(['AAPL', 'BTC/USD', 'MSFT']);
    expect(first.guardrails.assetClasses).toEqual(['US_EQUITY', 'CRYPTO']);
    expect(first.guardrails.maxOrderNotional?.toString()).toBe('5000');
    expect(first.guardrails.maxDailyOrders).toBe(10);
    expect(first.guardrails.tradingState).toBe('ACTIVE');
    expect(first.changed).toEqual(['symbols', 'assetClasses', 'maxOrderNotional', 'maxDailyOrders']);

    const second = applyGuardrailsInput(first.guardrails, {
      symbols: null,
      maxOrderNotional: null,
      tradingState: 'HALTED',
    });
    expect(second.guardrails.symbols).toBeNull();
    expect(second.guardrails.maxOrderNotional).toBeNull();
    expect(second.guardrails.maxDailyOrders).toBe(10);
    expect(second.changed).toEqual(['tradingState', 'symbols', 'maxOrderNotional']);
    // The input's current value is not touched.
    expect(first.guardrails.symbols).toEqual(['AAPL', 'BTC/USD', 'MSFT']);
    expect(first.guardrails.tradingState).toBe('ACTIVE');
  });

  it('names only the fields whose value changed: lists as sets, decimals by value', () => {
    const current = grant({ symbols: ['AAPL', 'MSFT'], maxOrderNotional: '5000', priceCollarPercent: '5' });
    const same = applyGuardrailsInput(current, {
      symbols: ['msft', 'AAPL', 'aapl'],
      orderTypes: ['TRAILING_STOP', 'STOP_LIMIT', 'STOP', 'LIMIT', 'MARKET'],
      maxOrderNotional: '5000.000',
      priceCollarPercent: d('5'),
      tradingState: 'ACTIVE',
      allowShortSelling: false,
    });
    expect(same.changed).toEqual([]);
    expect(applyGuardrailsInput(current, { maxOrderNotional: '5000.01' }).changed).toEqual(['maxOrderNotional']);
    expect(applyGuardrailsInput(current, { orderTypes: ['MARKET'] }).changed).toEqual(['orderTypes']);
    expect(applyGuardrailsInput(current, { allowExtendedHours: true }).changed).toEqual(['allowExtendedHours']);
  });

  it('takes decimals as text, as its own Decimal or as another copy of decimal.js (Prisma’s)', () => {
    const fromOtherCopy = new PlainDecimalJs('123.456');
    const { guardrails } = applyGuardrailsInput(DEFAULT_GUARDRAILS, {
      maxOrderQuantity: fromOtherCopy,
      maxDailyNotional: d('1000000'),
    });
    expect(guardrails.maxOrderQuantity?.toString()).toBe('123.456');
    expect(guardrails.maxOrderQuantity).toBeInstanceOf(Decimal);
    expect(guardrails.maxDailyNotional?.toString()).toBe('1000000');
  });

  it('refuses invalid values naming the field', () => {
    const cases: [GuardrailsInput, string, RegExp][] = [
      [{ maxOrderNotional: '0' }, 'maxOrderNotional', /greater than 0/],
      [{ maxOrderNotional: '-5' }, 'maxOrderNotional', /negative/],
      [{ maxOrderQuantity: '0.0000000001' }, 'maxOrderQuantity', /9 digits after/],
      [{ maxDailyNotional: '1000000000000000000' }, 'maxDailyNotional', /18 digits before/],
      [{ maxDailyNotional: d('-1') }, 'maxDailyNotional', /negative/],
      [{ maxOrderNotional: 5000 as unknown as string }, 'maxOrderNotional', /string/],
      [{ maxDailyOrders: 0 }, 'maxDailyOrders', /whole number/],
      [{ maxDailyOrders: 1.5 }, 'maxDailyOrders', /whole number/],
      [{ maxDailyOrders: 1_000_001 }, 'maxDailyOrders', /whole number/],
      [{ priceCollarPercent: '0' }, 'priceCollarPercent', /greater than 0/],
      [{ priceCollarPercent: '1000.000000001' }, 'priceCollarPercent', /at most 1000/],
      [{ assetClasses: [] }, 'assetClasses', /empty/],
      [{ orderTypes: [] }, 'orderTypes', /empty/],
      [{ orderTypes: ['MARKET', 'ICEBERG' as 'MARKET'] }, 'orderTypes', /one of/],
      [{ symbols: [] }, 'symbols', /empty/],
      [{ symbols: Array.from({ length: 501 }, (_, i) => `S${i}`) }, 'symbols', /at most 500/],
      [{ tradingState: null }, 'tradingState', /cannot be cleared/],
      [{ tradingState: 'PAUSED' as 'ACTIVE' }, 'tradingState', /one of/],
      [{ assetClasses: null }, 'assetClasses', /cannot be cleared/],
      [{ orderTypes: null }, 'orderTypes', /cannot be cleared/],
      [{ allowShortSelling: null }, 'allowShortSelling', /cannot be cleared/],
      [{ allowExtendedHours: null }, 'allowExtendedHours', /cannot be cleared/],
      [{ allowAccountWideActions: null }, 'allowAccountWideActions', /cannot be cleared/],
    ];
    for (const [input, field, message] of cases) {
      const error = thrown(() => applyGuardrailsInput(DEFAULT_GUARDRAILS, input));
      expect(error.field, JSON.stringify(input).slice(0, 60)).toBe(field);
      expect(error.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(message);
    }
  });

  it('accepts the bounds themselves', () => {
    const { guardrails } = applyGuardrailsInput(DEFAULT_GUARDRAILS, {
      maxDailyOrders: 1_000_000,
      priceCollarPercent: '1000',
      maxOrderNotional: '999999999999999999.999999999',
      maxOrderQuantity: '0.000000001',
      symbols: Array.from({ length: 500 }, (_, i) => `S${i}`),
    });
    expect(guardrails.maxDailyOrders).toBe(1_000_000);
    expect(guardrails.symbols).toHaveLength(500);
  });

  it('takes tickers, crypto pairs and option roots as symbols, upper case, and nothing else', () => {
    const { guardrails } = applyGuardrailsInput(DEFAULT_GUARDRAILS, {
      symbols: ['aapl', 'BRK.B', 'btc/usd', 'SPXW', 'A', 'ABCDEFGHIJKLMNO'],
    });
    expect(guardrails.symbols).toEqual(['A', 'AAPL', 'ABCDEFGHIJKLMNO', 'BRK.B', 'BTC/USD', 'SPXW']);
    for (const bad of [
      '',
      ' AAPL',
      'BRK-B',
      '/USD',
      'BTC/',
      'A/B/C',
      'ABCDEFGHIJKLMNOP',
      'ÄPFEL',
      'AAPL250620C00100000',
    ]) {
      const error = thrown(() => applyGuardrailsInput(DEFAULT_GUARDRAILS, { symbols: ['AAPL', bad] }));
      expect(error.field, bad).toBe('symbols');
    }
  });

  it('writes its JSON form with decimals as strings', () => {
    expect(guardrailsToJson(grant({ maxOrderNotional: '5000.50', symbols: ['aapl'] }))).toEqual({
      ...guardrailsToJson(DEFAULT_GUARDRAILS),
      symbols: ['AAPL'],
      maxOrderNotional: '5000.5',
    });
    expect(Object.keys(guardrailsToJson(DEFAULT_GUARDRAILS))).toEqual([...GUARDRAIL_FIELDS]);
  });
});

describe('reading Alpaca bodies', () => {
  it('reads a new order, with order_type when type is absent and unknown fields ignored', () => {
    const parsed = order({
      symbol: 'AAPL',
      side: 'buy',
      order_type: 'limit',
      qty: 10,
      limit_price: '150.25',
      time_in_force: 'day',
      extended_hours: true,
      client_order_id: 'abc',
      take_profit: { limit_price: '200' },
      something_new: 1,
    });
    expect(parsed).toMatchObject({
      orderClass: 'simple',
      symbol: 'AAPL',
      side: 'buy',
      type: 'LIMIT',
      typeText: 'limit',
      extendedHours: true,
      clientOrderId: 'abc',
      timeInForce: 'day',
      notional: null,
      assetClass: null,
    });
    if (parsed.orderClass !== 'mleg') {
      expect(parsed.qty?.toString()).toBe('10');
      expect(parsed.limitPrice?.toString()).toBe('150.25');
    }
    expect(order({ symbol: 'AAPL', side: 'buy', type: 'market', notional: '500', order_class: '' }).orderClass).toBe(
      'simple',
    );
    expect(order({ order_class: 'mleg', qty: '1', type: 'limit', legs: [] })).toEqual({
      orderClass: 'mleg',
      clientOrderId: null,
    });
  });

  it('names the field of an order that cannot be checked', () => {
    const base = { symbol: 'AAPL', side: 'buy', type: 'market', qty: '1' };
    const cases: [unknown, string][] = [
      [[], 'body'],
      ['order', 'body'],
      [{ ...base, symbol: undefined }, 'symbol'],
      [{ ...base, symbol: 42 }, 'symbol'],
      [{ ...base, symbol: 'AAPL US' }, 'symbol'],
      [{ ...base, side: 'hold' }, 'side'],
      [{ ...base, type: undefined }, 'type'],
      [{ ...base, type: 'iceberg' }, 'type'],
      [{ ...base, type: undefined, order_type: 'iceberg' }, 'order_type'],
      [{ ...base, notional: '5' }, 'notional'],
      [{ ...base, qty: undefined }, 'qty'],
      [{ ...base, qty: '0' }, 'qty'],
      [{ ...base, qty: '-1' }, 'qty'],
      [{ ...base, qty: '1e3' }, 'qty'],
      [{ ...base, qty: 'ten' }, 'qty'],
      [{ ...base, type: 'limit' }, 'limit_price'],
      [{ ...base, type: 'stop_limit', limit_price: '1' }, 'stop_price'],
      [{ ...base, type: 'stop' }, 'stop_price'],
      [{ ...base, limit_price: '-1' }, 'limit_price'],
      [{ ...base, trail_percent: 'x' }, 'trail_percent'],
      [{ ...base, extended_hours: 'true' }, 'extended_hours'],
      [{ ...base, client_order_id: 'x'.repeat(129) }, 'client_order_id'],
      [{ ...base, client_order_id: 7 }, 'client_order_id'],
      [{ ...base, position_intent: 'open' }, 'position_intent'],
      [{ ...base, order_class: 'spread' }, 'order_class'],
      [{ ...base, time_in_force: 1 }, 'time_in_force'],
    ];
    for (const [body, field] of cases) {
      const parsed = parseOrder(body);
      expect(isOrderError(parsed) && parsed.field, JSON.stringify(body)).toBe(field);
    }
    expect(isOrderError(parseOrder({ ...base, client_order_id: 'x'.repeat(128) }))).toBe(false);
  });

  it('reads Alpaca’s order object, nulls and asset class included', () => {
    const original = alpacaOrder({
      id: '61e69015-8549-4bfd-b9c3-01e75843f47d',
      symbol: 'BTC/USD',
      asset_class: 'crypto',
      side: 'sell',
      type: 'limit',
      order_type: 'limit',
      qty: '0.5',
      notional: null,
      limit_price: '60000',
      stop_price: null,
      trail_price: null,
      trail_percent: null,
      extended_hours: false,
      order_class: '',
      client_order_id: 'c1',
      position_intent: null,
      status: 'new',
    });
    expect(original).toMatchObject({ symbol: 'BTC/USD', assetClass: 'CRYPTO', type: 'LIMIT', side: 'sell' });
    const filledNotional = alpacaOrder({
      symbol: 'AAPL',
      asset_class: 'us_equity',
      side: 'buy',
      type: 'market',
      qty: '0.3',
      notional: '50',
    });
    expect(filledNotional).toMatchObject({ qty: null });
    if (filledNotional.orderClass !== 'mleg') expect(filledNotional.notional?.toString()).toBe('50');
  });

  it('lays a replacement over the original, the trail as the original had it', () => {
    const original = alpacaOrder({
      symbol: 'AAPL',
      asset_class: 'us_equity',
      side: 'sell',
      type: 'trailing_stop',
      qty: '10',
      trail_percent: '2',
      client_order_id: 'old',
      time_in_force: 'day',
    });
    const replaced = overlayReplacement(original, { qty: '8', trail: '3', time_in_force: 'gtc', extra: true });
    expect(isOrderError(replaced)).toBe(false);
    expect(replaced).toMatchObject({ symbol: 'AAPL', side: 'sell', type: 'TRAILING_STOP', clientOrderId: 'old' });
    if (!isOrderError(replaced) && replaced.orderClass !== 'mleg') {
      expect(replaced.qty?.toString()).toBe('8');
      expect(replaced.trailPercent?.toString()).toBe('3');
      expect(replaced.trailPrice).toBeNull();
      expect(replaced.timeInForce).toBe('gtc');
    }
    const limit = alpacaOrder({
      symbol: 'AAPL',
      asset_class: 'us_equity',
      side: 'buy',
      type: 'limit',
      qty: '5',
      limit_price: '10',
    });
    const priced = overlayReplacement(limit, { limit_price: '11', client_order_id: 'new' });
    expect(priced).toMatchObject({ clientOrderId: 'new' });
    if (!isOrderError(priced) && priced.orderClass !== 'mleg') {
      expect(priced.limitPrice?.toString()).toBe('11');
      expect(priced.qty?.toString()).toBe('5');
    }
    expect(overlayReplacement(limit, { qty: '0' })).toMatchObject({ field: 'qty' });
    expect(overlayReplacement(limit, { limit_price: 'x' })).toMatchObject({ field: 'limit_price' });
    expect(overlayReplacement(limit, 'x')).toMatchObject({ field: 'body' });
    const notional = alpacaOrder({ symbol: 'AAPL', side: 'buy', type: 'market', notional: '100' });
    expect(overlayReplacement(notional, { qty: '1' })).toMatchObject({ field: 'qty' });
    const mleg = alpacaOrder({ order_class: 'mleg' });
    expect(overlayReplacement(mleg, { qty: '1' })).toBe(mleg);
  });

  it('classifies option symbols and crypto pairs, and leaves the rest to Alpaca', () => {
    expect(classifySymbol('AAPL250620C00100000')).toEqual({
      lookup: false,
      assetClass: 'US_OPTION',
      symbol: 'AAPL250620C00100000',
      root: 'AAPL',
    });
    expect(classifySymbol('spxw251219p05000000')).toMatchObject({ assetClass: 'US_OPTION', root: 'SPXW' });
    expect(classifySymbol('btc/usd')).toEqual({ lookup: false, assetClass: 'CRYPTO', symbol: 'BTC/USD' });
    for (const other of ['AAPL', 'BTCUSD', 'BRK.B', '61e69015-8549-4bfd-b9c3-01e75843f47d', 'AAPL250620X00100000']) {
      expect(classifySymbol(other), other).toEqual({ lookup: true });
    }
  });

  it('reads assets, positions and open sell orders', () => {
    expect(parseAlpacaAsset({ id: 'x', class: 'crypto', symbol: 'BTC/USD', tradable: true, shortable: false })).toEqual(
      {
        symbol: 'BTC/USD',
        assetClass: 'CRYPTO',
        classText: 'crypto',
        tradable: true,
      },
    );
    expect(parseAlpacaAsset({ class: 'us_bond', symbol: 'X', tradable: true })?.assetClass).toBeNull();
    expect(parseAlpacaAsset({ symbol: 'X' })).toBeNull();
    expect(parseAlpacaPosition({ symbol: 'AAPL', qty: '10', side: 'long' })?.toString()).toBe('10');
    expect(parseAlpacaPosition({ symbol: 'AAPL', qty: '-4', side: 'short' })?.toString()).toBe('-4');
    expect(parseAlpacaPosition({ symbol: 'AAPL', qty: '4', side: 'short' })?.toString()).toBe('-4');
    expect(parseAlpacaPosition({ qty: 'x' })).toBeNull();

    const orders = [
      { id: 'a', symbol: 'BTC/USD', side: 'sell', qty: '1.5', filled_qty: '0.5', status: 'partially_filled' },
      { id: 'b', symbol: 'BTC/USD', side: 'buy', qty: '9', filled_qty: '0', status: 'new' },
      { id: 'c', symbol: 'ETH/USD', side: 'sell', qty: '9', filled_qty: '0', status: 'new' },
      { id: 'd', symbol: 'BTC/USD', side: 'sell', qty: '9', filled_qty: '9', status: 'filled' },
      {
        id: 'e',
        symbol: 'BTC/USD',
        side: 'buy',
        qty: '2',
        filled_qty: '2',
        status: 'filled',
        legs: [{ id: 'f', symbol: 'BTC/USD', side: 'sell', qty: '2', filled_qty: '0', status: 'held' }],
      },
      { id: 'g', symbol: 'BTCUSD', side: 'sell', qty: '0.25', filled_qty: null, status: 'new' },
    ];
    expect(openSellQuantity(orders, 'BTCUSD')?.toString()).toBe('3.25');
    expect(openSellQuantity(orders, 'BTC/USD', 'f')?.toString()).toBe('1.25');
    expect(openSellQuantity([], 'AAPL')?.toString()).toBe('0');
    expect(openSellQuantity([{ id: 'n', symbol: 'AAPL', side: 'sell', qty: null, notional: '50' }], 'AAPL')).toBeNull();
    expect(openSellQuantity({ orders: [] }, 'AAPL')).toBeNull();
  });
});

describe('order checks', () => {
  it('refuses a multi-leg order at once, with nothing to read', () => {
    const mleg = order({ order_class: 'mleg', qty: '1', type: 'limit', limit_price: '1', legs: [] });
    const plan = planOrderCheck({ guardrails: grant(), order: mleg, kind: 'new' });
    expect(plan.decided).toMatchObject({
      allowed: false,
      status: 403,
      rule: 'orderClass',
      value: 'mleg',
      summary: null,
    });
    expect(refusedBy(check(grant({ tradingState: 'HALTED' }), mleg))).toBe('orderClass');
  });

  it('passes an order of the default grant without reading anything', () => {
    const plan = planOrderCheck({
      guardrails: grant({ assetClasses: ['US_EQUITY', 'CRYPTO', 'US_OPTION'] }),
      order: buy(),
      kind: 'new',
    });
    expect(plan.decided).toMatchObject({ allowed: true, estimatedNotional: null, referencePrice: null });
    expect(plan.decided?.allowed && plan.decided.countedNotional.toString()).toBe('0');
  });

  describe('tradingState', () => {
    it('HALTED refuses every new or replaced order, with nothing to read', () => {
      const halted = grant({ tradingState: 'HALTED', maxOrderNotional: '1' });
      const plan = planOrderCheck({ guardrails: halted, order: sell(), kind: 'new' });
      expect(plan.decided).toMatchObject({ rule: 'tradingState', limit: 'HALTED', value: 'sell 10' });
      const original = alpacaOrder({
        symbol: 'AAPL',
        asset_class: 'us_equity',
        side: 'sell',
        type: 'limit',
        qty: '10',
        limit_price: '1',
      });
      const smaller = overlayReplacement(original, { qty: '1' }) as ParsedOrder;
      expect(planOrderCheck({ guardrails: halted, order: smaller, kind: 'replace', original }).decided).toMatchObject({
        rule: 'tradingState',
      });
    });

    it('REDUCING lets a sell through up to the long position and a buy up to the short one', () => {
      const reducing = grant({ tradingState: 'REDUCING', allowShortSelling: true });
      const plan = planOrderCheck({ guardrails: reducing, order: sell(), kind: 'new' });
      expect(plan).toEqual({ decided: null, needs: { asset: { symbol: 'AAPL' } } });
      const withAsset = planOrderCheck({
        guardrails: reducing,
        order: sell(),
        kind: 'new',
        facts: { asset: EQUITY('AAPL') },
      });
      expect(withAsset.needs).toEqual({ position: { symbol: 'AAPL' } });

      const asset = EQUITY('AAPL');
      expect(refusedBy(check(reducing, sell(), { asset, position: ok(d('10')) }))).toBe('allowed');
      expect(refusedBy(check(reducing, sell(), { asset, position: ok(d('9.5')) }))).toBe('tradingState');
      expect(refusedBy(check(reducing, sell(), { asset, position: ok(d('-10')) }))).toBe('tradingState');
      expect(refusedBy(check(reducing, buy(), { asset, position: ok(d('-10')) }))).toBe('allowed');
      expect(refusedBy(check(reducing, buy(), { asset, position: ok(d('0')) }))).toBe('tradingState');
      expect(refusedBy(check(reducing, buy(), { asset, position: ok(d('20')) }))).toBe('tradingState');
      const refusal = check(reducing, sell({ qty: '12' }), { asset, position: ok(d('10')) });
      expect(refusal).toMatchObject({ rule: 'tradingState', limit: 'REDUCING', value: 'sell 12' });
      expect(!refusal.allowed && refusal.message).toMatch(/sell of 12 AAPL is over the long position of 10/);
    });

    it('REDUCING prices a notional order to know its quantity', () => {
      const reducing = grant({ tradingState: 'REDUCING', allowShortSelling: true });
      const o = sell({ qty: undefined, notional: '1000' });
      const plan = planOrderCheck({ guardrails: reducing, order: o, kind: 'new', facts: { asset: EQUITY('AAPL') } });
      expect(plan.needs).toEqual({
        position: { symbol: 'AAPL' },
        referencePrice: { symbol: 'AAPL', assetClass: 'US_EQUITY', side: 'bid' },
      });
      const facts = { asset: EQUITY('AAPL'), position: ok(d('10')) };
      expect(refusedBy(check(reducing, o, { ...facts, referencePrice: ok(d('100')) }))).toBe('allowed');
      expect(refusedBy(check(reducing, o, { ...facts, referencePrice: ok(d('99.99')) }))).toBe('tradingState');
      expect(check(reducing, o, facts)).toMatchObject({ status: 503, rule: 'marketData', missing: 'referencePrice' });
    });

    it('REDUCING refuses a replacement that raises the quantity and lets one through that does not', () => {
      const reducing = grant({ tradingState: 'REDUCING' });
      const original = alpacaOrder({
        symbol: 'AAPL',
        asset_class: 'us_equity',
        side: 'buy',
        type: 'limit',
        qty: '10',
        limit_price: '5',
      });
      const raised = overlayReplacement(original, { qty: '11' }) as ParsedOrder;
      const lowered = overlayReplacement(original, { qty: '9', limit_price: '6' }) as ParsedOrder;
      const planRaised = planOrderCheck({ guardrails: reducing, order: raised, kind: 'replace', original });
      expect(planRaised.decided).toMatchObject({ rule: 'tradingState' });
      const planLowered = planOrderCheck({ guardrails: reducing, order: lowered, kind: 'replace', original });
      expect(planLowered.decided).toMatchObject({ allowed: true });
      // The other rules still apply.
      const capped = grant({ tradingState: 'REDUCING', maxOrderNotional: '50' });
      expect(planOrderCheck({ guardrails: capped, order: lowered, kind: 'replace', original }).decided).toMatchObject({
        rule: 'maxOrderNotional',
        value: '54',
      });
    });
  });

  describe('assetClasses, symbol and symbols', () => {
    it('knows crypto pairs and options without asking, and refuses the classes not allowed', () => {
      const pair = order({ symbol: 'BTC/USD', side: 'buy', type: 'market', qty: '1' });
      const plan = planOrderCheck({ guardrails: grant(), order: pair, kind: 'new' });
      expect(plan.decided).toMatchObject({ rule: 'assetClasses', limit: 'US_EQUITY', value: 'CRYPTO' });
      const option = order({ symbol: 'AAPL250620C00100000', side: 'buy', type: 'limit', qty: '1', limit_price: '2' });
      expect(planOrderCheck({ guardrails: grant(), order: option, kind: 'new' }).decided).toMatchObject({
        rule: 'assetClasses',
        value: 'US_OPTION',
      });
      expect(
        planOrderCheck({ guardrails: grant({ assetClasses: ['US_OPTION'] }), order: option, kind: 'new' }).decided,
      ).toMatchObject({ allowed: true });
    });

    it('asks Alpaca for any other symbol, and refuses what it does not know or trade', () => {
      const g = grant();
      const o = order({ symbol: 'BTCUSD', side: 'buy', type: 'market', qty: '1' });
      expect(planOrderCheck({ guardrails: g, order: o, kind: 'new' }).needs).toEqual({ asset: { symbol: 'BTCUSD' } });
      expect(check(g, o, { asset: CRYPTO('BTC/USD') })).toMatchObject({ rule: 'assetClasses', value: 'CRYPTO' });
      expect(refusedBy(check(g, buy(), { asset: EQUITY('AAPL') }))).toBe('allowed');
      expect(check(g, buy(), { asset: ok(null) })).toMatchObject({ rule: 'symbol', value: 'unknown' });
      expect(
        check(g, buy(), {
          asset: ok({ symbol: 'AAPL', assetClass: 'US_EQUITY', classText: 'us_equity', tradable: false }),
        }),
      ).toMatchObject({ rule: 'symbol', value: 'not tradable' });
      expect(
        check(g, buy(), { asset: ok({ symbol: 'X', assetClass: null, classText: 'us_bond', tradable: true }) }),
      ).toMatchObject({ rule: 'assetClasses', value: 'us_bond' });
      expect(check(g, buy(), { asset: { ok: false } })).toMatchObject({
        status: 503,
        code: 'GUARDRAIL_DATA_UNAVAILABLE',
        rule: 'marketData',
        missing: 'asset',
        neededBy: 'assetClasses',
      });
      expect(check(g, buy(), {})).toMatchObject({ rule: 'marketData', missing: 'asset' });
    });

    it('matches symbols upper case, crypto pairs with their slash, options by their root', () => {
      const g = grant({ symbols: ['aapl', 'btc/usd'], assetClasses: ['US_EQUITY', 'CRYPTO', 'US_OPTION'] });
      expect(
        refusedBy(
          check(g, order({ symbol: 'aapl', side: 'buy', type: 'market', qty: '1' }), { asset: EQUITY('AAPL') }),
        ),
      ).toBe('allowed');
      expect(
        refusedBy(
          check(g, order({ symbol: 'BTCUSD', side: 'buy', type: 'market', qty: '1' }), { asset: CRYPTO('BTC/USD') }),
        ),
      ).toBe('allowed');
      expect(refusedBy(check(g, order({ symbol: 'btc/usd', side: 'buy', type: 'market', qty: '1' })))).toBe('allowed');
      const option = order({ symbol: 'AAPL250620P00100000', side: 'buy', type: 'limit', qty: '1', limit_price: '1' });
      expect(planOrderCheck({ guardrails: g, order: option, kind: 'new' }).decided).toMatchObject({ allowed: true });
      const other = check(g, order({ symbol: 'TSLA', side: 'buy', type: 'market', qty: '1' }), {
        asset: EQUITY('TSLA'),
      });
      expect(other).toMatchObject({ rule: 'symbols', limit: 'AAPL,BTC/USD', value: 'TSLA' });
      const otherOption = order({
        symbol: 'TSLA250620P00100000',
        side: 'buy',
        type: 'limit',
        qty: '1',
        limit_price: '1',
      });
      expect(check(g, otherOption)).toMatchObject({ rule: 'symbols', value: 'TSLA' });
    });
  });

  it('orderTypes and allowExtendedHours refuse on the order alone', () => {
    const g = grant({ orderTypes: ['MARKET', 'LIMIT'], assetClasses: ['US_EQUITY', 'CRYPTO', 'US_OPTION'] });
    const stop = buy({ type: 'stop', stop_price: '100' });
    expect(planOrderCheck({ guardrails: g, order: stop, kind: 'new' }).decided).toMatchObject({
      rule: 'orderTypes',
      limit: 'MARKET,LIMIT',
      value: 'STOP',
    });
    expect(planOrderCheck({ guardrails: g, order: buy(), kind: 'new' }).decided).toMatchObject({ allowed: true });
    const extended = buy({ type: 'limit', limit_price: '1', extended_hours: true });
    expect(planOrderCheck({ guardrails: g, order: extended, kind: 'new' }).decided).toMatchObject({
      rule: 'allowExtendedHours',
      limit: 'false',
      value: 'true',
    });
    const allowed = grant({ allowExtendedHours: true, assetClasses: ['US_EQUITY', 'CRYPTO', 'US_OPTION'] });
    expect(planOrderCheck({ guardrails: allowed, order: extended, kind: 'new' }).decided).toMatchObject({
      allowed: true,
    });
  });

  describe('maxOrderQuantity', () => {
    it('compares qty with the cap, equal passing', () => {
      const g = grant({ maxOrderQuantity: '10' });
      expect(refusedBy(check(g, buy({ qty: '10' }), { asset: EQUITY('AAPL') }))).toBe('allowed');
      expect(check(g, buy({ qty: '10.000000001' }), { asset: EQUITY('AAPL') })).toMatchObject({
        rule: 'maxOrderQuantity',
        limit: '10',
        value: '10.000000001',
      });
    });

    it('divides a notional order by the reference price, rounding up', () => {
      const o = buy({ qty: undefined, notional: '100' });
      const facts = { asset: EQUITY('AAPL'), referencePrice: ok(d('3')) };
      const tight = grant({ maxOrderQuantity: '33.333333333' });
      expect(planOrderCheck({ guardrails: tight, order: o, kind: 'new', facts: { asset: facts.asset } }).needs).toEqual(
        {
          referencePrice: { symbol: 'AAPL', assetClass: 'US_EQUITY', side: 'ask' },
        },
      );
      expect(check(tight, o, facts)).toMatchObject({ rule: 'maxOrderQuantity', value: '33.333333334' });
      expect(refusedBy(check(grant({ maxOrderQuantity: '33.333333334' }), o, facts))).toBe('allowed');
    });
  });

  describe('notional caps', () => {
    const asset = EQUITY('AAPL');

    it('counts the amount of a notional order, without a price', () => {
      const g = grant({ maxOrderNotional: '500' });
      const o = buy({ qty: undefined, notional: '500' });
      const plan = planOrderCheck({ guardrails: g, order: o, kind: 'new', facts: { asset } });
      expect(plan.decided).toMatchObject({ allowed: true });
      expect(plan.decided?.allowed && plan.decided.estimatedNotional?.toString()).toBe('500');
      expect(check(g, buy({ qty: undefined, notional: '500.01' }), { asset })).toMatchObject({
        rule: 'maxOrderNotional',
        value: '500.01',
      });
    });

    it('prices a limit buy at its limit, a limit sell at the higher of limit and reference', () => {
      const g = grant({ maxOrderNotional: '5000' });
      const limitBuy = buy({ type: 'limit', limit_price: '500' });
      const known = { asset };
      expect(planOrderCheck({ guardrails: g, order: limitBuy, kind: 'new', facts: known }).decided).toMatchObject({
        allowed: true,
      });
      const overBuy = buy({ type: 'limit', limit_price: '1234.56', qty: '10' });
      const refusal = planOrderCheck({ guardrails: g, order: overBuy, kind: 'new', facts: known }).decided;
      expect(refusal).toMatchObject({ rule: 'maxOrderNotional', limit: '5000', value: '12345.6' });
      expect(refusal && !refusal.allowed && refusal.message).toContain(
        'estimated notional 12,345.60 USD is over maxOrderNotional 5,000 USD',
      );

      const limitSell = sell({ type: 'limit', limit_price: '400' });
      const shorts = grant({ maxOrderNotional: '5000', allowShortSelling: true });
      const plan = planOrderCheck({ guardrails: shorts, order: limitSell, kind: 'new', facts: { asset } });
      expect(plan.needs).toEqual({ referencePrice: { symbol: 'AAPL', assetClass: 'US_EQUITY', side: 'bid' } });
      expect(refusedBy(check(shorts, limitSell, { asset, referencePrice: ok(d('500')) }))).toBe('allowed');
      const over = check(shorts, limitSell, { asset, referencePrice: ok(d('500.01')) });
      expect(over).toMatchObject({ rule: 'maxOrderNotional', value: '5000.1' });
    });

    it('prices a stop at the higher of stop and reference, market and trailing stop at the reference', () => {
      const g = grant({ maxOrderNotional: '1000', orderTypes: ['MARKET', 'STOP', 'TRAILING_STOP'] });
      const stop = buy({ type: 'stop', stop_price: '90' });
      const decided = check(g, stop, { asset, referencePrice: ok(d('100')) });
      expect(decided).toMatchObject({ allowed: true });
      expect(decided.allowed && decided.estimatedNotional?.toString()).toBe('1000');
      expect(check(g, buy({ type: 'stop', stop_price: '101' }), { asset, referencePrice: ok(d('100')) })).toMatchObject(
        {
          value: '1010',
        },
      );
      expect(check(g, buy(), { asset, referencePrice: ok(d('100.1')) })).toMatchObject({ value: '1001' });
      const trailing = sell({ type: 'trailing_stop', trail_percent: '1' });
      expect(check(g, trailing, { asset, referencePrice: ok(d('100.1')) })).toMatchObject({ value: '1001' });
      expect(check(g, buy(), { asset })).toMatchObject({ rule: 'marketData', neededBy: 'maxOrderNotional' });
      expect(check(g, buy(), { asset, referencePrice: ok(d('0')) })).toMatchObject({ rule: 'marketData' });
    });

    it('multiplies options by 100', () => {
      const g = grant({ maxOrderNotional: '1000', assetClasses: ['US_OPTION'] });
      const o = order({ symbol: 'AAPL250620C00100000', side: 'buy', type: 'limit', qty: '2', limit_price: '5' });
      expect(planOrderCheck({ guardrails: g, order: o, kind: 'new' }).decided).toMatchObject({ allowed: true });
      const more = order({ symbol: 'AAPL250620C00100000', side: 'buy', type: 'limit', qty: '2', limit_price: '5.01' });
      expect(planOrderCheck({ guardrails: g, order: more, kind: 'new' }).decided).toMatchObject({
        rule: 'maxOrderNotional',
        value: '1002',
      });
    });

    it('asks for the asset of an asset id, which may be an option', () => {
      const id = '61e69015-8549-4bfd-b9c3-01e75843f47d';
      const g = grant({ maxOrderNotional: '1000', assetClasses: ['US_EQUITY', 'CRYPTO', 'US_OPTION'] });
      const o = order({ symbol: id, side: 'buy', type: 'limit', qty: '2', limit_price: '6' });
      expect(planOrderCheck({ guardrails: g, order: o, kind: 'new' }).needs).toEqual({ asset: { symbol: id } });
      const option = ok({
        symbol: 'AAPL250620C00100000',
        assetClass: 'US_OPTION' as const,
        classText: 'us_option',
        tradable: true,
      });
      expect(check(g, o, { asset: option })).toMatchObject({ rule: 'maxOrderNotional', value: '1200' });
    });

    it('maxDailyNotional adds the order to the day’s usage, equal passing', () => {
      const g = grant({ maxDailyNotional: '10000' });
      const o = buy({ type: 'limit', limit_price: '100' });
      const plan = planOrderCheck({ guardrails: g, order: o, kind: 'new', facts: { asset } });
      expect(plan).toEqual({ decided: null, needs: {} });
      const at = check(g, o, { asset }, { orders: 3, notional: d('9000') });
      expect(at).toMatchObject({ allowed: true });
      expect(at.allowed && at.countedNotional.toString()).toBe('1000');
      const over = check(g, o, { asset }, { orders: 3, notional: d('9000.01') });
      expect(over).toMatchObject({ rule: 'maxDailyNotional', limit: '10000', value: '10000.01' });
    });

    it('counts a replacement only for what it adds; a lower one gives nothing back', () => {
      const g = grant({ maxDailyNotional: '10000', maxOrderNotional: '2000' });
      const original = alpacaOrder({
        symbol: 'AAPL',
        asset_class: 'us_equity',
        side: 'buy',
        type: 'limit',
        qty: '10',
        limit_price: '100',
      });
      const up = overlayReplacement(original, { qty: '15' }) as ParsedOrder;
      const down = overlayReplacement(original, { limit_price: '90' }) as ParsedOrder;
      const usage = { orders: 1, notional: d('9500') };
      const replaced = (o: ParsedOrder, u: Usage) =>
        checkOrder({ guardrails: g, order: o, kind: 'replace', original, usage: u, facts: {} });
      const upDecision = replaced(up, usage);
      expect(upDecision.allowed && upDecision.countedNotional.toString()).toBe('500');
      expect(upDecision.allowed && upDecision.estimatedNotional?.toString()).toBe('1500');
      expect(replaced(up, { orders: 1, notional: d('9500.01') })).toMatchObject({
        rule: 'maxDailyNotional',
        value: '10000.01',
      });
      const downDecision = replaced(down, { orders: 1, notional: d('10000') });
      expect(downDecision.allowed && downDecision.countedNotional.toString()).toBe('0');
      // maxOrderNotional compares the new order's whole notional.
      const big = overlayReplacement(original, { qty: '21' }) as ParsedOrder;
      expect(replaced(big, NO_USAGE)).toMatchObject({ rule: 'maxOrderNotional', value: '2100' });
    });
  });

  describe('priceCollarPercent', () => {
    const asset = EQUITY('AAPL');
    const g = grant({ priceCollarPercent: '10' });

    it('keeps limit and stop prices within the percentage of the reference, the bound passing', () => {
      const limit = buy({ type: 'limit', limit_price: '110' });
      expect(planOrderCheck({ guardrails: g, order: limit, kind: 'new', facts: { asset } }).needs).toEqual({
        referencePrice: { symbol: 'AAPL', assetClass: 'US_EQUITY', side: 'ask' },
      });
      expect(refusedBy(check(g, limit, { asset, referencePrice: ok(d('100')) }))).toBe('allowed');
      expect(
        refusedBy(check(g, buy({ type: 'limit', limit_price: '90' }), { asset, referencePrice: ok(d('100')) })),
      ).toBe('allowed');
      const over = check(g, buy({ type: 'limit', limit_price: '110.01' }), { asset, referencePrice: ok(d('100')) });
      expect(over).toMatchObject({ rule: 'priceCollarPercent', limit: '10', value: '10.01' });
      expect(!over.allowed && over.message).toContain('limit_price 110.01 is 10.01% from the reference price 100');
      const stopLimit = sell({ type: 'stop_limit', limit_price: '95', stop_price: '80' });
      expect(check(g, stopLimit, { asset, referencePrice: ok(d('100')) })).toMatchObject({
        rule: 'priceCollarPercent',
        value: '20',
      });
    });

    it('needs no price for an order without limit or stop price', () => {
      expect(planOrderCheck({ guardrails: g, order: buy(), kind: 'new', facts: { asset } }).decided).toMatchObject({
        allowed: true,
      });
    });
  });

  describe('allowShortSelling', () => {
    const asset = EQUITY('AAPL');
    const g = grant();

    it('lets a sell through up to the long position less open sells', () => {
      expect(planOrderCheck({ guardrails: g, order: sell(), kind: 'new', facts: { asset } }).needs).toEqual({
        position: { symbol: 'AAPL' },
        openSellQuantity: { symbol: 'AAPL' },
      });
      expect(refusedBy(check(g, sell(), { asset, position: ok(d('15')), openSellQuantity: ok(d('5')) }))).toBe(
        'allowed',
      );
      const over = check(g, sell(), { asset, position: ok(d('15')), openSellQuantity: ok(d('5.5')) });
      expect(over).toMatchObject({ rule: 'allowShortSelling', limit: '9.5', value: '10' });
      expect(check(g, sell(), { asset, position: ok(d('-3')), openSellQuantity: ok(d('0')) })).toMatchObject({
        rule: 'allowShortSelling',
        limit: '0',
      });
      expect(check(g, sell(), { asset, position: ok(d('15')) })).toMatchObject({
        rule: 'marketData',
        missing: 'openSellQuantity',
        neededBy: 'allowShortSelling',
      });
      // A buy never reads a position under ACTIVE; allowing short sales reads nothing.
      expect(planOrderCheck({ guardrails: g, order: buy(), kind: 'new', facts: { asset } }).decided).toMatchObject({
        allowed: true,
      });
      const shorts = grant({ allowShortSelling: true });
      expect(
        planOrderCheck({ guardrails: shorts, order: sell(), kind: 'new', facts: { asset } }).decided,
      ).toMatchObject({
        allowed: true,
      });
    });

    it('applies the same rule to crypto sells, reading the position without the slash', () => {
      const crypto = grant({ assetClasses: ['CRYPTO'] });
      const o = order({ symbol: 'BTC/USD', side: 'sell', type: 'market', qty: '0.5' });
      expect(planOrderCheck({ guardrails: crypto, order: o, kind: 'new' }).needs).toEqual({
        position: { symbol: 'BTCUSD' },
        openSellQuantity: { symbol: 'BTC/USD' },
      });
      expect(check(crypto, o, { position: ok(d('0.4')), openSellQuantity: ok(d('0')) })).toMatchObject({
        rule: 'allowShortSelling',
      });
      expect(refusedBy(check(crypto, o, { position: ok(d('0.5')), openSellQuantity: ok(d('0')) }))).toBe('allowed');
    });

    it('refuses an option sell that opens a position', () => {
      const options = grant({ assetClasses: ['US_OPTION'] });
      const open = order({
        symbol: 'AAPL250620C00100000',
        side: 'sell',
        type: 'limit',
        qty: '1',
        limit_price: '2',
        position_intent: 'sell_to_open',
      });
      expect(planOrderCheck({ guardrails: options, order: open, kind: 'new' }).decided).toMatchObject({
        rule: 'allowShortSelling',
        value: 'sell_to_open',
      });
      const close = order({
        symbol: 'AAPL250620C00100000',
        side: 'sell',
        type: 'limit',
        qty: '2',
        limit_price: '2',
        position_intent: 'sell_to_close',
      });
      expect(refusedBy(check(options, close, { position: ok(d('2')), openSellQuantity: ok(d('0')) }))).toBe('allowed');
      expect(check(options, close, { position: ok(d('2')), openSellQuantity: ok(d('1')) })).toMatchObject({
        rule: 'allowShortSelling',
      });
    });
  });

  it('maxDailyOrders counts this order, equal passing', () => {
    const g = grant({ maxDailyOrders: 5 });
    const asset = EQUITY('AAPL');
    expect(planOrderCheck({ guardrails: g, order: buy(), kind: 'new', facts: { asset } })).toEqual({
      decided: null,
      needs: {},
    });
    expect(refusedBy(check(g, buy(), { asset }, { orders: 4, notional: d('0') }))).toBe('allowed');
    expect(check(g, buy(), { asset }, { orders: 5, notional: d('0') })).toMatchObject({
      rule: 'maxDailyOrders',
      limit: '5',
      value: '6',
    });
  });

  it('lets an earlier rule’s refusal win over a fact a later rule could not read', () => {
    const g = grant({ orderTypes: ['LIMIT'], maxOrderNotional: '1' });
    expect(check(g, buy(), { asset: EQUITY('AAPL') })).toMatchObject({ rule: 'orderTypes' });
    // A static refusal after a rule that needs a fact: only that fact is asked for.
    const reducing = grant({ tradingState: 'REDUCING', orderTypes: ['LIMIT'], priceCollarPercent: '1' });
    const plan = planOrderCheck({ guardrails: reducing, order: sell(), kind: 'new', facts: { asset: EQUITY('AAPL') } });
    expect(plan).toEqual({ decided: null, needs: { position: { symbol: 'AAPL' } } });
    expect(check(reducing, sell(), { asset: EQUITY('AAPL'), position: ok(d('10')) })).toMatchObject({
      rule: 'orderTypes',
    });
    expect(check(reducing, sell(), { asset: EQUITY('AAPL'), position: { ok: false } })).toMatchObject({
      rule: 'marketData',
      neededBy: 'tradingState',
    });
  });

  it('summarises the order as it was given, with the estimate and the price read', () => {
    const g = grant({ maxOrderNotional: '100000' });
    const o = order({
      symbol: 'AAPL',
      side: 'sell',
      type: 'limit',
      qty: '3.50',
      limit_price: '100',
      client_order_id: 'mine',
    });
    const decision = check(g, o, {
      asset: EQUITY('AAPL'),
      referencePrice: ok(d('101.123456789123')),
      position: ok(d('10')),
      openSellQuantity: ok(d('0')),
    });
    expect(decision).toMatchObject({ allowed: true, referencePrice: d('101.123456789123') });
    expect(decision.allowed && decision.estimatedNotional?.toString()).toBe('353.9320987619305');
    expect(decision.summary).toEqual({
      symbol: 'AAPL',
      side: 'sell',
      type: 'limit',
      qty: '3.5',
      notional: null,
      clientOrderId: 'mine',
      estimatedNotional: '353.932098762',
      referencePrice: '101.123456789123',
    });
  });

  it('takes caps, usage and facts from another copy of decimal.js exactly', () => {
    const g = grant({ maxDailyNotional: '100' });
    const prismaLike: Guardrails = { ...g, maxDailyNotional: new PlainDecimalJs('100') as unknown as Decimal };
    // 22 significant digits: decimal.js's default 20-digit precision would round the sum to 100.
    const usage = { orders: 0, notional: new PlainDecimalJs('99.99999999999999999999') as unknown as Decimal };
    const o = buy({ qty: undefined, notional: '0.00000000000000000001' });
    expect(check(prismaLike, o, { asset: EQUITY('AAPL') }, usage)).toMatchObject({ allowed: true });
    const over = buy({ qty: undefined, notional: '0.00000000000000000002' });
    expect(check(prismaLike, over, { asset: EQUITY('AAPL') }, usage)).toMatchObject({ rule: 'maxDailyNotional' });
  });
});

describe('replacements', () => {
  it('refuses one whose order could not be read with marketData', () => {
    expect(replacedOrderUnavailable()).toMatchObject({
      allowed: false,
      status: 503,
      code: 'GUARDRAIL_DATA_UNAVAILABLE',
      rule: 'marketData',
      missing: 'order',
    });
  });
});

describe('account-wide actions', () => {
  it('need allowAccountWideActions, in every state', () => {
    for (const action of ['DELETE /v2/orders', 'DELETE /v2/positions'] as const) {
      expect(checkAccountWideAction(grant(), action)).toMatchObject({
        allowed: false,
        status: 403,
        code: 'GUARDRAIL_REFUSED',
        rule: 'allowAccountWideActions',
        limit: 'false',
        value: action,
      });
      expect(checkAccountWideAction(grant({ allowAccountWideActions: true, tradingState: 'HALTED' }), action)).toEqual({
        allowed: true,
      });
    }
  });
});

describe('trading day', () => {
  it('is the calendar day in New York, around midnight and across both 2026 DST changes', () => {
    const cases: [string, string][] = [
      // Winter (UTC-5): midnight in New York is 05:00Z.
      ['2026-01-15T04:59:59.999Z', '2026-01-14'],
      ['2026-01-15T05:00:00.000Z', '2026-01-15'],
      // 2026-03-08: clocks go forward at 02:00 EST (07:00Z); that midnight was still EST.
      ['2026-03-08T04:59:59.999Z', '2026-03-07'],
      ['2026-03-08T05:00:00.000Z', '2026-03-08'],
      ['2026-03-08T07:30:00.000Z', '2026-03-08'],
      // The next midnight is EDT (UTC-4): 04:00Z.
      ['2026-03-09T03:59:59.999Z', '2026-03-08'],
      ['2026-03-09T04:00:00.000Z', '2026-03-09'],
      // 2026-11-01: clocks go back at 02:00 EDT (06:00Z); that midnight was EDT.
      ['2026-11-01T03:59:59.999Z', '2026-10-31'],
      ['2026-11-01T04:00:00.000Z', '2026-11-01'],
      ['2026-11-01T06:30:00.000Z', '2026-11-01'],
      // The next midnight is EST again: 05:00Z.
      ['2026-11-02T04:59:59.999Z', '2026-11-01'],
      ['2026-11-02T05:00:00.000Z', '2026-11-02'],
    ];
    for (const [instant, day] of cases) expect(tradingDay(new Date(instant)), instant).toBe(day);
  });
});
