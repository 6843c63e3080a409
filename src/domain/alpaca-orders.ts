// Alpaca's order bodies as the guardrail checks read them: a new order (POST
// v2/orders), a replacement (PATCH v2/orders/{id}) laid over the order it
// replaces, Alpaca's order, asset and position objects, and what a symbol is
// before Alpaca is asked. Pure; nothing here rewrites a body: the proxy
// forwards the engine's bytes as they came, and these only read them.
//
// Reading is strict where a rule depends on the value (an order that cannot be
// checked never passes) and lenient elsewhere: unknown fields are ignored, as
// Alpaca has more than the rules need.
import { Decimal, parseDecimal } from './decimal.ts';
import { ASSET_CLASSES, type AssetClass, ORDER_TYPES, type OrderType } from './guardrails.ts';

export const ORDER_SIDES = ['buy', 'sell'] as const;
export type OrderSide = (typeof ORDER_SIDES)[number];

export const ORDER_CLASSES = ['simple', 'bracket', 'oco', 'oto', 'mleg'] as const;
export type OrderClass = (typeof ORDER_CLASSES)[number];

export const POSITION_INTENTS = ['buy_to_open', 'buy_to_close', 'sell_to_open', 'sell_to_close'] as const;
export type PositionIntent = (typeof POSITION_INTENTS)[number];

/** An order with one symbol (simple, bracket, OCO, OTO: the latter three are checked by their entry). */
export interface SingleOrder {
  orderClass: Exclude<OrderClass, 'mleg'>;
  /** As the order gave it: a ticker, an asset id, a crypto pair (with or without its slash), an OCC option symbol. */
  symbol: string;
  side: OrderSide;
  type: OrderType;
  /** The side and type as the order wrote them ("buy", "limit"), for the summary. */
  sideText: string;
  typeText: string;
  /** Exactly one of qty and notional is set; both are positive. */
  qty: Decimal | null;
  notional: Decimal | null;
  limitPrice: Decimal | null;
  stopPrice: Decimal | null;
  trailPrice: Decimal | null;
  trailPercent: Decimal | null;
  extendedHours: boolean;
  clientOrderId: string | null;
  positionIntent: PositionIntent | null;
  timeInForce: string | null;
  /**
   * Set for an order read from Alpaca (parseAlpacaOrder): its asset class, its
   * symbol then being Alpaca's own. Null for an engine's order: the class
   * comes from the symbol or from Alpaca's asset.
   */
  assetClass: AssetClass | null;
}

/** A multi-leg order: no top-level symbol; refused by the checks before anything else. */
export interface MultiLegOrder {
  orderClass: 'mleg';
  clientOrderId: string | null;
}

export type ParsedOrder = SingleOrder | MultiLegOrder;

/** Why a body cannot be checked, naming the field (the proxy answers 400 BAD_REQUEST with it). */
export interface OrderError {
  error: string;
  field: string;
}

export const MAX_CLIENT_ORDER_ID_LENGTH = 128;

/** What a symbol may be in a body: a ticker, asset id, crypto pair or OCC symbol (also a path segment for the lookups). */
const ORDER_SYMBOL = /^[A-Za-z0-9][A-Za-z0-9./-]{0,63}$/;

class BodyError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A field's value, with JSON null read as absent (Alpaca's own objects carry nulls for unset fields). */
function field(body: Record<string, unknown>, name: string): unknown {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  return value === null ? undefined : value;
}

function positiveDecimal(body: Record<string, unknown>, name: string): Decimal | null {
  const raw = field(body, name);
  if (raw === undefined) return null;
  const value = parseDecimal(raw);
  if (value === null) {
    throw new BodyError(name, `${name} must be a decimal number (a string like "10.5" or a JSON number, no exponent).`);
  }
  if (!value.isPositive() || value.isZero()) throw new BodyError(name, `${name} must be greater than 0.`);
  return value;
}

function choice<T extends string>(name: string, raw: unknown, allowed: readonly T[]): T {
  const value = typeof raw === 'string' ? raw.toLowerCase() : undefined;
  if (value === undefined || !(allowed as readonly string[]).includes(value)) {
    throw new BodyError(name, `${name} must be one of ${allowed.join(', ')}.`);
  }
  return value as T;
}

function optionalString(body: Record<string, unknown>, name: string, maxLength: number): string | null {
  const raw = field(body, name);
  if (raw === undefined) return null;
  if (typeof raw !== 'string' || raw.length > maxLength) {
    throw new BodyError(name, `${name} must be a string of at most ${maxLength} characters.`);
  }
  return raw;
}

function orderClassOf(body: Record<string, unknown>): OrderClass {
  const raw = field(body, 'order_class');
  if (raw === undefined || raw === '') return 'simple';
  return choice('order_class', raw, ORDER_CLASSES);
}

function readOrder(body: unknown, fromAlpaca: boolean): ParsedOrder {
  if (!isObject(body)) throw new BodyError('body', 'The order must be a JSON object.');
  const orderClass = orderClassOf(body);
  const clientOrderId = optionalString(body, 'client_order_id', MAX_CLIENT_ORDER_ID_LENGTH);
  // A multi-leg order is refused whatever its legs say: nothing else is read.
  if (orderClass === 'mleg') return { orderClass, clientOrderId };

  const symbol = field(body, 'symbol');
  if (typeof symbol !== 'string' || !ORDER_SYMBOL.test(symbol)) {
    throw new BodyError('symbol', 'symbol must be a ticker, an asset id, a crypto pair or an option symbol.');
  }
  const sideText = field(body, 'side');
  const side = choice('side', sideText, ORDER_SIDES);
  // Alpaca takes order_type when type is absent, and its own orders carry both.
  const typeName = field(body, 'type') === undefined && field(body, 'order_type') !== undefined ? 'order_type' : 'type';
  const typeText = field(body, typeName);
  const type = choice(
    typeName,
    typeText,
    ORDER_TYPES.map((t) => t.toLowerCase()),
  ).toUpperCase() as OrderType;

  const qty = positiveDecimal(body, 'qty');
  const notional = positiveDecimal(body, 'notional');
  if (qty !== null && notional !== null) {
    // Alpaca's own order of a notional amount may report the filled quantity;
    // an engine's order gives one or the other.
    if (!fromAlpaca) throw new BodyError('notional', 'Give qty or notional, not both.');
  } else if (qty === null && notional === null) {
    throw new BodyError('qty', 'qty or notional is required.');
  }
  const limitPrice = positiveDecimal(body, 'limit_price');
  const stopPrice = positiveDecimal(body, 'stop_price');
  if ((type === 'LIMIT' || type === 'STOP_LIMIT') && limitPrice === null) {
    throw new BodyError('limit_price', `limit_price is required for a ${typeText} order.`);
  }
  if ((type === 'STOP' || type === 'STOP_LIMIT') && stopPrice === null) {
    throw new BodyError('stop_price', `stop_price is required for a ${typeText} order.`);
  }
  const extendedHours = field(body, 'extended_hours');
  if (extendedHours !== undefined && typeof extendedHours !== 'boolean') {
    throw new BodyError('extended_hours', 'extended_hours must be true or false.');
  }
  const intent = field(body, 'position_intent');
  const timeInForce = field(body, 'time_in_force');
  if (timeInForce !== undefined && typeof timeInForce !== 'string') {
    throw new BodyError('time_in_force', 'time_in_force must be a string.');
  }

  let assetClass: AssetClass | null = null;
  if (fromAlpaca) {
    const raw = field(body, 'asset_class');
    const upper = typeof raw === 'string' ? raw.toUpperCase() : '';
    assetClass = (ASSET_CLASSES as readonly string[]).includes(upper) ? (upper as AssetClass) : null;
  }

  return {
    orderClass,
    symbol,
    side,
    type,
    sideText: sideText as string,
    typeText: typeText as string,
    // An order of Alpaca's for a notional amount is kept as one: its qty (when
    // reported) is what was filled, not what was asked.
    qty: notional !== null ? null : qty,
    notional,
    limitPrice,
    stopPrice,
    trailPrice: positiveDecimal(body, 'trail_price'),
    trailPercent: positiveDecimal(body, 'trail_percent'),
    extendedHours: extendedHours === true,
    clientOrderId,
    positionIntent: intent === undefined ? null : choice('position_intent', intent, POSITION_INTENTS),
    timeInForce: (timeInForce as string | undefined) ?? null,
    assetClass,
  };
}

function attempt<T>(read: () => T): T | OrderError {
  try {
    return read();
  } catch (error) {
    if (error instanceof BodyError) return { error: error.message, field: error.field };
    throw error;
  }
}

export function isOrderError(value: unknown): value is OrderError {
  return isObject(value) && typeof value.error === 'string' && typeof value.field === 'string';
}

/**
 * A new order's body (POST v2/orders), already parsed from JSON (best with
 * parseJsonExact, so that decimals are read as written), or why it cannot be
 * checked.
 */
export function parseOrder(body: unknown): ParsedOrder | OrderError {
  return attempt(() => readOrder(body, false));
}

/**
 * Alpaca's order object (GET v2/orders/{id}): the order a replacement is laid
 * over. Its symbol is Alpaca's (a crypto pair with its slash) and its
 * asset_class is kept, so no asset lookup is needed for it.
 */
export function parseAlpacaOrder(body: unknown): ParsedOrder | OrderError {
  return attempt(() => readOrder(body, true));
}

/**
 * The order a replacement (PATCH v2/orders/{id}) makes: the original with the
 * fields Alpaca lets a replacement change laid over it (qty, limit_price,
 * stop_price, trail, time_in_force, client_order_id; `trail` is the trail
 * price or percent, as the original had it). Symbol, side, type and
 * extended_hours stay the original's. A multi-leg original comes back as it
 * is (the checks refuse it).
 */
export function overlayReplacement(original: ParsedOrder, patch: unknown): ParsedOrder | OrderError {
  return attempt(() => {
    if (!isObject(patch)) throw new BodyError('body', 'The replacement must be a JSON object.');
    if (original.orderClass === 'mleg') return original;
    const qty = positiveDecimal(patch, 'qty');
    if (qty !== null && original.notional !== null) {
      throw new BodyError('qty', 'An order for a notional amount cannot be replaced with a quantity.');
    }
    const trail = positiveDecimal(patch, 'trail');
    const timeInForce = field(patch, 'time_in_force');
    if (timeInForce !== undefined && typeof timeInForce !== 'string') {
      throw new BodyError('time_in_force', 'time_in_force must be a string.');
    }
    const clientOrderId = optionalString(patch, 'client_order_id', MAX_CLIENT_ORDER_ID_LENGTH);
    const byPercent = original.trailPercent !== null;
    return {
      ...original,
      qty: qty ?? original.qty,
      limitPrice: positiveDecimal(patch, 'limit_price') ?? original.limitPrice,
      stopPrice: positiveDecimal(patch, 'stop_price') ?? original.stopPrice,
      trailPrice: !byPercent && trail !== null ? trail : original.trailPrice,
      trailPercent: byPercent && trail !== null ? trail : original.trailPercent,
      timeInForce: (timeInForce as string | undefined) ?? original.timeInForce,
      clientOrderId: clientOrderId ?? original.clientOrderId,
    };
  });
}

/** What a symbol is before Alpaca is asked. */
export type SymbolClass =
  | { lookup: false; assetClass: 'US_OPTION'; symbol: string; root: string }
  | { lookup: false; assetClass: 'CRYPTO'; symbol: string }
  | { lookup: true };

/** OCC: root (1-6 letters), expiry YYMMDD, C or P, strike × 1000 in 8 digits. */
const OCC_OPTION = /^([A-Z]{1,6})\d{6}[CP]\d{8}$/;
const CRYPTO_PAIR = /^[A-Z0-9]+\/[A-Z0-9]+$/;

/**
 * An OCC option symbol (AAPL250620C00100000) is US_OPTION, matched by its
 * root; a BASE/QUOTE pair is CRYPTO (upper case). Anything else (a ticker, an
 * asset id, a pair without its slash) is what Alpaca's asset says it is.
 */
export function classifySymbol(symbol: string): SymbolClass {
  const upper = symbol.toUpperCase();
  const option = OCC_OPTION.exec(upper);
  if (option) return { lookup: false, assetClass: 'US_OPTION', symbol: upper, root: option[1] as string };
  if (CRYPTO_PAIR.test(upper)) return { lookup: false, assetClass: 'CRYPTO', symbol: upper };
  return { lookup: true };
}

/** Alpaca's asset (GET v2/assets/{symbol_or_asset_id}), as the checks use it. */
export interface AssetFact {
  /** Alpaca's symbol: the ticker, the crypto pair with its slash. */
  symbol: string;
  /** Null for a class this version does not know (never in an allowed list). */
  assetClass: AssetClass | null;
  /** Alpaca's class as it wrote it ("us_equity"), for messages. */
  classText: string;
  tradable: boolean;
}

/** The asset from Alpaca's answer, or null when the body is not an asset (treat as unreadable; a 404 is `value: null`). */
export function parseAlpacaAsset(body: unknown): AssetFact | null {
  if (!isObject(body)) return null;
  const { symbol, tradable } = body;
  const classText = body.class;
  if (typeof symbol !== 'string' || symbol === '' || typeof classText !== 'string' || typeof tradable !== 'boolean') {
    return null;
  }
  const upper = classText.toUpperCase();
  const assetClass = (ASSET_CLASSES as readonly string[]).includes(upper) ? (upper as AssetClass) : null;
  return { symbol, assetClass, classText, tradable };
}

/**
 * The signed quantity of Alpaca's position (GET v2/positions/{symbol}):
 * negative when short. Null when the body is not a position. A 404 ("position
 * does not exist") is a position of zero: the caller passes ZERO.
 */
export function parseAlpacaPosition(body: unknown): Decimal | null {
  if (!isObject(body)) return null;
  const qty = parseDecimal(body.qty);
  if (qty === null) return null;
  if (body.side === 'short') return qty.abs().neg();
  if (body.side === 'long') return qty.abs();
  return qty;
}

/** Statuses of an order that can no longer fill. */
const CLOSED_STATUSES = new Set(['filled', 'canceled', 'expired', 'replaced', 'rejected', 'done_for_day']);

/** A symbol compared across Alpaca's spellings: upper case, without the pair's slash (positions name BTC/USD "BTCUSD"). */
export function sameInstrument(a: string, b: string): boolean {
  return a.replace('/', '').toUpperCase() === b.replace('/', '').toUpperCase();
}

/**
 * The quantity still to be sold by open sell orders in `symbol`, from Alpaca's
 * order list (GET v2/orders?status=open&symbols=…&nested=true; legs are
 * counted too): qty less filled_qty of each. The order a replacement replaces
 * is left out by its id. Null when the list cannot be read or an open sell
 * order has no quantity (one for a notional amount): the rule then cannot be
 * decided and the order is refused.
 */
export function openSellQuantity(orders: unknown, symbol: string, excludeOrderId?: string): Decimal | null {
  if (!Array.isArray(orders)) return null;
  let total = new Decimal(0);
  const seen = new Set<string>();
  const pending: unknown[] = [...orders];
  while (pending.length > 0) {
    const order = pending.pop();
    if (!isObject(order)) return null;
    if (Array.isArray(order.legs)) pending.push(...order.legs);
    const id = typeof order.id === 'string' ? order.id : null;
    if (id !== null) {
      if (seen.has(id) || id === excludeOrderId) continue;
      seen.add(id);
    }
    if (order.side !== 'sell' || typeof order.symbol !== 'string' || !sameInstrument(order.symbol, symbol)) continue;
    if (typeof order.status === 'string' && CLOSED_STATUSES.has(order.status)) continue;
    const qty = parseDecimal(order.qty);
    if (qty === null) return null;
    const filled =
      order.filled_qty === undefined || order.filled_qty === null ? new Decimal(0) : parseDecimal(order.filled_qty);
    if (filled === null) return null;
    const remaining = qty.minus(filled);
    if (remaining.isPositive()) total = total.plus(remaining);
  }
  return total;
}
