// THE ONE MOCK of this test suite: a stand-in for Alpaca's Trading API and
// market data API, which cannot be reached from here (no internet).
// Everything else in the tests is real (server, database, HTTP). Keys travel
// in the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers; unknown keys (or a
// wrong secret) get 401 {"code":40110000,"message":"request is not
// authorized"}; every answer has X-Request-ID and X-Ratelimit-Limit /
// -Remaining / -Reset headers as Alpaca's do, plus two a proxy must not pass
// on (set-cookie, x-stand-in-private). Paper and live are separate servers
// with separate keys, as at Alpaca; market data is a third, which serves the
// keys of both: startAlpacaStandIns() runs all three, and its `env`
// (ALPACA_PAPER_URL, ALPACA_LIVE_URL, ALPACA_DATA_URL) points a server at them.
// Shapes follow Alpaca's OpenAPI specs (trading-api.json, market-data-api.json)
// and https://docs.alpaca.markets.
//
// Trading API, per valid key (each key its own orders and positions):
// - GET /v2/account, /v2/account/activities (AccountOptions.activities rows), /v2/clock, /v2/calendar.
// - Assets, GET /v2/assets[/{symbol_or_asset_id}], from a registry per stand-in:
//   AAPL, MSFT, BRK.B (us_equity), BTC/USD and ETH/USD (crypto, also found as
//   BTCUSD or BTC%2FUSD), DELIST (inactive, tradable: false); any other ticker
//   is a tradable us_equity and any OCC option symbol (AAPL250620C00100000) a
//   tradable us_option, made on first use. Unknown (404 {"code":40410000,
//   "message":"asset not found for X"}): symbols starting with ZZ, other
//   crypto pairs, anything that is not a ticker, and whatever a test marks with
//   setAsset(symbol, null). An asset id (UUID, stable per symbol) finds the
//   asset once it has been served. setAsset(symbol, fields) adds or changes one.
// - Positions, GET and DELETE /v2/positions[/{symbol_or_asset_id}]: set per key
//   with AccountOptions.positions; negative qty is short (side "short"); a
//   crypto position is named without the slash (BTCUSD, asset_class crypto)
//   and found as BTCUSD, BTC/USD (encoded) or its asset id; options positions
//   value 100 per contract. None: 404 {"code":40410000,"message":"position does not exist"}.
// - Orders: POST, GET, PATCH, DELETE /v2/orders[/{id}], GET
//   /v2/orders:by_client_order_id, DELETE /v2/orders (207). POST takes a
//   ticker, crypto pair, OCC option symbol or asset id, qty xor notional as
//   decimal strings or numbers (fractional too), order_class
//   simple|bracket|oco|oto|mleg (mleg: no symbol, 2-4 `legs`), take_profit /
//   stop_loss (answered as `legs`), trail_price|trail_percent,
//   extended_hours, position_intent; asset_id and asset_class come from the
//   asset. An unknown or untradable asset: 422. Orders stay "accepted"
//   (nothing fills); a bracket's exits and an mleg's legs always sit nested
//   under their order (as with nested=true). GET /v2/orders filters with status (open|closed|all,
//   default open), symbols (comma-separated, BTCUSD and BTC/USD alike), side,
//   asset_class, after, until, direction (desc), limit (50, at most 500).
//   PATCH lays qty, limit_price, stop_price, trail, time_in_force and
//   client_order_id over the original and answers the new order (`replaces`).
//
// Per API key, setKey(apiKey, behaviour) can make it misbehave in the ways the
// real one may: any status (5xx, 429, 403), 429 with Retry-After, a redirect, a
// hang before or after the headers, a slow answer (the order is placed at
// once, the answer comes late), a request held until proceed(), a body that is
// not JSON or not an account, a connection reset. AccountOptions.gzip sends
// every answer of the key gzip-encoded when the request's Accept-Encoding
// allows it (identity otherwise), or with 'always' whatever it asked for;
// with activities: 800 the activities list is about 200 kB.
//
// Per symbol, failSymbol(symbol, failure) spoils every request about it in the
// areas named by `on` (default: all four) until clearSymbol(symbol):
//   { kind: 'slow', delayMs, on? }    answered after delayMs
//   { kind: 'status', status, on? }   answered with that status and {code, message}
//   { kind: 'no-price' }              market data only: no quote and no trade
// Areas: 'asset' (GET v2/assets/{it}), 'position' (GET v2/positions/{it}, and
// the whole list), 'orders' (GET v2/orders naming it in `symbols`, or the whole
// list; GET of one of its orders), 'data' (its quotes and trades). The group's
// failSymbol sets it on the stand-ins that serve each area.
//
// Market data (alpaca-data-stand-in.ts): latest stock quotes and trades,
// crypto and option quotes and trades; prices from DEFAULT_PRICES (AAPL, MSFT,
// BRK.B, BTC/USD, ETH/USD, AAPL250620C00100000), set with
// data.setPrice(symbol, { ask?, bid?, last? }) (an ask or bid absent or 0 is
// sent as 0, Alpaca's "no active ask"; no `last`: no trade) or removed with
// setPrice(symbol, null). A stock without data answers 404 ("no quote found",
// "no trade found") or, after data.answerMissingStockWith('empty'), a zero
// quote; a multi-symbol answer leaves the symbol out. It serves a key when
// paper or live accepts it (`accepts`: an account, slow or held key with its
// secret); any other key, including one set to a failing behaviour, gets 401.
//
// Helpers that make no request: paper.asset(symbolOrId), paper.orders(apiKey).
//
// Every request is recorded (method, path, query, headers, body, keys, request
// id, kind, symbols, what was answered). counts(apiKey?, symbol?) gives
// { total, changes (POST/PATCH/DELETE at the trading API), asset, position,
// orders, order, quotes, trades }; the group's counts() adds up all three.
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AlpacaDataStandIn,
  addCounts,
  countRequests,
  failureBody,
  failureBook,
  listening,
  type RequestCounts,
  readRequest,
  type SeenRequest,
  type SymbolArea,
  type SymbolFailure,
  sender,
  startAlpacaDataStandIn,
  symbolKey,
  UNAUTHORIZED,
} from './alpaca-data-stand-in.ts';

export {
  type AlpacaDataStandIn,
  DEFAULT_PRICES,
  type MissingStockAnswer,
  type Price,
  type PriceInput,
  type RequestCounts,
  type RequestKind,
  type SeenRequest,
  type SymbolArea,
  type SymbolFailure,
  startAlpacaDataStandIn,
  symbolKey,
} from './alpaca-data-stand-in.ts';

/** A position at the start: negative qty is short; prices default to 100. */
export interface PositionInput {
  symbol: string;
  qty: number | string;
  avgEntryPrice?: number | string;
  currentPrice?: number | string;
}

/** What valid keys give: the whole trading API for this account. */
interface AccountOptions {
  secretKey: string;
  accountNumber?: string;
  status?: string;
  /** Open positions at the start; setKey with positions starts the account over with them (orders are kept). */
  positions?: PositionInput[];
  /** Answers gzip-encoded when the request's Accept-Encoding allows it; 'always': whatever it asked for. */
  gzip?: boolean | 'always';
  /** Rows in GET /v2/account/activities (default 0; about 250 bytes each). */
  activities?: number;
}

export type StandInBehaviour =
  /** Valid keys here (when the secret matches): the trading API. */
  | ({ kind: 'account' } & AccountOptions)
  /** Valid keys, but every answer is sent after delayMs (what it does, e.g. placing an order, happens at once). */
  | ({ kind: 'slow'; delayMs: number } & AccountOptions)
  /** Valid keys, but every request waits until proceed() before it is served. */
  | ({ kind: 'held' } & AccountOptions)
  | { kind: 'status'; status: number }
  /** Alpaca's own limit: 429 with Retry-After and X-Ratelimit-Remaining 0. */
  | { kind: 'rate-limited'; retryAfterSeconds: number }
  /** A redirect to `location` (which must never be followed with the keys). */
  | { kind: 'redirect'; status: 301 | 302 | 307 | 308; location: string }
  /** Never answers (until release() or close()). */
  | { kind: 'hang' }
  /** Sends 200 headers, then never the body. */
  | { kind: 'hang-body' }
  | { kind: 'garbage' }
  | { kind: 'not-account' }
  | { kind: 'reset' };

export type AssetClass = 'us_equity' | 'crypto' | 'us_option';

/** An asset as GET /v2/assets/{symbol} answers it. */
export interface Asset {
  id: string;
  class: AssetClass;
  exchange: string;
  symbol: string;
  name: string;
  status: 'active' | 'inactive';
  tradable: boolean;
  marginable: boolean;
  shortable: boolean;
  easy_to_borrow: boolean;
  fractionable: boolean;
  [field: string]: unknown;
}

export type Order = Record<string, unknown> & {
  id: string;
  client_order_id: string;
  status: string;
  symbol: string;
  side: string | null;
  asset_class: string;
  submitted_at: string;
  legs: Order[] | null;
};

export interface AlpacaStandIn {
  url: string;
  /** How the stand-in treats this API key; unknown keys get 401. */
  setKey(apiKey: string, behaviour: StandInBehaviour): void;
  /** Whether this key pair gets the trading API here (account, slow or held, with its secret). */
  accepts(apiKey: string, secretKey: string | undefined): boolean;
  /** Adds or changes an asset (fields laid over what it was); null: the symbol becomes unknown (404). */
  setAsset(symbol: string, asset: Partial<Asset> | null): void;
  /** What GET /v2/assets/{symbolOrId} would answer, without a request (undefined: 404). */
  asset(symbolOrId: string): Asset | undefined;
  /** The key's orders at the broker, oldest first, without a request. */
  orders(apiKey: string): Order[];
  /** Spoils requests about this symbol (see the top of this file). */
  failSymbol(symbol: string, failure: SymbolFailure): void;
  clearSymbol(symbol: string): void;
  /** Requests per kind, of one key and about one symbol (all when absent). */
  counts(apiKey?: string, symbol?: string): RequestCounts;
  /** Every request received, in order. */
  readonly requests: SeenRequest[];
  /** Requests currently held open by a hang. */
  readonly hanging: number;
  /** Requests currently waiting for proceed(). */
  readonly held: number;
  /** Ends every hanging request by destroying its connection. */
  release(): void;
  /** Serves every held request normally. */
  proceed(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Exact decimals for positions (market value = qty × price): BigInt scaled by
// 10^18 is exact for the at most 9 + 9 decimals a product has here, and the
// test support has no decimal library of its own.

const SCALE = 10n ** 18n;
const DECIMAL = /^-?\d+(\.\d+)?$/;

function fixed(text: string): bigint {
  const negative = text.startsWith('-');
  const [whole = '0', fraction = ''] = text.replace('-', '').split('.');
  const value = BigInt(whole) * SCALE + BigInt(fraction.padEnd(18, '0').slice(0, 18));
  return negative ? -value : value;
}

function decimalText(value: bigint): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const fraction = (abs % SCALE).toString().padStart(18, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / SCALE}${fraction ? `.${fraction}` : ''}`;
}

const times = (a: bigint, b: bigint) => (a * b) / SCALE;

function decimalInput(what: string, value: number | string): string {
  const text = String(value).trim();
  if (!DECIMAL.test(text)) throw new Error(`${what} must be a decimal number, not ${String(value)}`);
  return decimalText(fixed(text));
}

// ---------------------------------------------------------------------------
// Assets

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const OCC = /^([A-Z]{1,6})(\d{6})([CP])(\d{8})$/;
const TICKER = /^[A-Z][A-Z0-9.]{0,11}$/;

/** A stable id per symbol, as Alpaca's asset ids are (same at paper and live). */
function assetId(symbol: string): string {
  const h = createHash('sha256').update(`asset:${symbol}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function equity(symbol: string, fields: Partial<Asset> = {}): Asset {
  return {
    id: assetId(symbol),
    class: 'us_equity',
    exchange: 'NASDAQ',
    symbol,
    name: `${symbol} Common Stock`,
    status: 'active',
    tradable: true,
    marginable: true,
    shortable: true,
    easy_to_borrow: true,
    fractionable: true,
    ...fields,
  };
}

function cryptoPair(symbol: string): Asset {
  return {
    id: assetId(symbol),
    class: 'crypto',
    exchange: 'ALPACA',
    symbol,
    name: `${symbol} pair`,
    status: 'active',
    tradable: true,
    marginable: false,
    shortable: false,
    easy_to_borrow: false,
    fractionable: true,
    min_order_size: '0.0001',
    min_trade_increment: '0.0001',
    price_increment: '1',
  };
}

function optionContract(symbol: string): Asset {
  return {
    ...equity(symbol),
    class: 'us_option',
    exchange: '',
    name: `${OCC.exec(symbol)?.[1] ?? symbol} option ${symbol}`,
    marginable: false,
    shortable: false,
    easy_to_borrow: false,
    fractionable: false,
  };
}

/** What a symbol nobody registered is: a ticker or an option contract, or unknown. */
function defaultAsset(upper: string): Asset | undefined {
  if (OCC.test(upper)) return optionContract(upper);
  if (TICKER.test(upper) && !upper.startsWith('ZZ')) return equity(upper);
  return undefined;
}

type AssetRegistry = ReturnType<typeof assetRegistry>;

function assetRegistry() {
  const known = new Map<string, Asset>(
    [
      equity('AAPL', { name: 'Apple Inc. Common Stock' }),
      equity('MSFT', { name: 'Microsoft Corporation Common Stock' }),
      equity('BRK.B', { exchange: 'NYSE', name: 'Berkshire Hathaway Inc. Class B' }),
      equity('DELIST', { status: 'inactive', tradable: false, shortable: false, easy_to_borrow: false }),
      cryptoPair('BTC/USD'),
      cryptoPair('ETH/USD'),
    ].map((a) => [a.symbol, a]),
  );
  const unknown = new Set<string>();
  const pair = (key: string) => [...known.values()].find((a) => a.class === 'crypto' && symbolKey(a.symbol) === key);

  const resolve = (symbolOrId: string): Asset | undefined => {
    const text = symbolOrId.trim();
    if (UUID.test(text)) return [...known.values()].find((a) => a.id === text.toLowerCase());
    const upper = text.toUpperCase();
    const key = symbolKey(upper);
    if (unknown.has(key)) return undefined;
    const found = known.get(upper) ?? pair(key);
    if (found || upper.includes('/')) return found;
    const made = defaultAsset(upper);
    if (made) known.set(upper, made);
    return made;
  };
  const set = (symbol: string, fields: Partial<Asset> | null) => {
    const upper = symbol.trim().toUpperCase();
    const key = symbolKey(upper);
    if (fields === null) {
      unknown.add(key);
      for (const s of known.keys()) if (symbolKey(s) === key) known.delete(s);
      return;
    }
    unknown.delete(key);
    const base =
      known.get(upper) ??
      pair(key) ??
      defaultAsset(upper) ??
      (upper.includes('/') ? cryptoPair(upper) : equity(upper, { name: upper }));
    // A pair registered now wins over a ticker its slash-less spelling was once taken for.
    for (const s of known.keys()) if (s !== base.symbol && symbolKey(s) === key) known.delete(s);
    known.set(base.symbol, { ...base, ...fields, symbol: base.symbol });
  };
  return { resolve, set, list: () => [...known.values()] };
}

// ---------------------------------------------------------------------------
// Positions

interface Holding {
  /** Alpaca's name for it: a crypto pair without its slash. */
  symbol: string;
  asset: Asset;
  qty: string;
  avgEntryPrice: string;
  currentPrice: string;
}

function holding(assets: AssetRegistry, input: PositionInput): Holding {
  const asset = assets.resolve(input.symbol) ?? equity(input.symbol.trim().toUpperCase());
  return {
    symbol: asset.class === 'crypto' ? symbolKey(asset.symbol) : asset.symbol,
    asset,
    qty: decimalInput(`position ${input.symbol} qty`, input.qty),
    avgEntryPrice: decimalInput('avgEntryPrice', input.avgEntryPrice ?? 100),
    currentPrice: decimalInput('currentPrice', input.currentPrice ?? 100),
  };
}

function positionBody(h: Holding): Record<string, unknown> {
  const multiplier = h.asset.class === 'us_option' ? 100n * SCALE : SCALE;
  const qty = fixed(h.qty);
  const marketValue = times(times(qty, fixed(h.currentPrice)), multiplier);
  const costBasis = times(times(qty, fixed(h.avgEntryPrice)), multiplier);
  const pl = marketValue - costBasis;
  const plpc = costBasis === 0n ? 0n : (pl * SCALE) / (costBasis < 0n ? -costBasis : costBasis);
  return {
    asset_id: h.asset.id,
    symbol: h.symbol,
    exchange: h.asset.exchange,
    asset_class: h.asset.class,
    asset_marginable: h.asset.marginable,
    qty: h.qty,
    qty_available: h.qty,
    side: qty < 0n ? 'short' : 'long',
    avg_entry_price: h.avgEntryPrice,
    market_value: decimalText(marketValue),
    cost_basis: decimalText(costBasis),
    unrealized_pl: decimalText(pl),
    unrealized_plpc: decimalText(plpc),
    unrealized_intraday_pl: decimalText(pl),
    unrealized_intraday_plpc: decimalText(plpc),
    current_price: h.currentPrice,
    lastday_price: h.currentPrice,
    change_today: '0',
  };
}

// ---------------------------------------------------------------------------
// Orders

interface Answer {
  status: number;
  body?: unknown;
}

/** An answer to a read that per-symbol failures may spoil: their area, and the symbols it is about. */
type TradeAnswer = Answer & { area?: SymbolArea; about?: string[] | 'all' };

const unprocessable = (message: string): Answer => ({ status: 422, body: { code: 40010001, message } });
const notFound = (message: string): Answer => ({ status: 404, body: { code: 40410000, message } });
const isAnswer = (value: Order | Answer): value is Answer => 'status' in value && typeof value.status === 'number';

const OPEN = new Set(['new', 'accepted', 'pending_new', 'partially_filled', 'held']);
const SIDES = new Set(['buy', 'sell']);
const TYPES = new Set(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']);
const TIME_IN_FORCE = new Set(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']);
const ORDER_CLASSES = new Set(['', 'simple', 'bracket', 'oco', 'oto', 'mleg']);
const INTENTS = new Set(['buy_to_open', 'buy_to_close', 'sell_to_open', 'sell_to_close']);
const AMOUNT = /^(\d+)(\.(\d+))?$/;

/** A positive decimal (string or number) with at most 9 decimals, as text; undefined when absent. */
function amount(input: Record<string, unknown>, field: string, signed = false): string | undefined | Answer {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'number' || typeof value === 'string' ? String(value).trim() : '';
  const unsigned = signed && text.startsWith('-') ? text.slice(1) : text;
  const match = AMOUNT.exec(unsigned);
  if (!match || (!signed && Number(text) <= 0)) return unprocessable(`invalid ${field}`);
  if ((match[3] ?? '').length > 9) return unprocessable(`${field} must have at most 9 decimal places`);
  return text;
}

function orderShell(asset: Asset | undefined, fields: Record<string, unknown>): Order {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    client_order_id: randomUUID(),
    created_at: now,
    updated_at: now,
    submitted_at: now,
    filled_at: null,
    expired_at: null,
    canceled_at: null,
    failed_at: null,
    replaced_at: null,
    replaced_by: null,
    replaces: null,
    asset_id: asset?.id ?? '',
    symbol: asset?.symbol ?? '',
    asset_class: asset?.class ?? '',
    notional: null,
    qty: null,
    filled_qty: '0',
    filled_avg_price: null,
    order_class: '',
    order_type: 'market',
    type: 'market',
    side: null,
    time_in_force: 'day',
    limit_price: null,
    stop_price: null,
    trail_percent: null,
    trail_price: null,
    hwm: null,
    status: 'accepted',
    extended_hours: false,
    legs: null,
    ...fields,
  };
}

/** POST /v2/orders's checks (the ones Alpaca documents for the request's shape) and the order it makes. */
function newOrder(
  input: Record<string, unknown>,
  assets: AssetRegistry,
  replaces: string | null = null,
): Order | Answer {
  const { side, type, time_in_force: tif } = input;
  const orderClass = input.order_class ?? '';
  if (typeof orderClass !== 'string' || !ORDER_CLASSES.has(orderClass)) return unprocessable('invalid order_class');
  const mleg = orderClass === 'mleg';
  if (!(mleg && side === undefined) && (typeof side !== 'string' || !SIDES.has(side))) {
    return unprocessable('invalid side');
  }
  if (typeof type !== 'string' || !TYPES.has(type)) return unprocessable('invalid order type');
  if (typeof tif !== 'string' || !TIME_IN_FORCE.has(tif)) return unprocessable('invalid time_in_force');
  const values: Record<string, string | undefined> = {};
  for (const [field, signed] of [
    ['qty', false],
    ['notional', false],
    ['limit_price', mleg],
    ['stop_price', false],
    ['trail_price', false],
    ['trail_percent', false],
  ] as const) {
    const value = amount(input, field, signed);
    if (typeof value === 'object') return value;
    values[field] = value;
  }
  if (mleg ? values.qty === undefined : (values.qty === undefined) === (values.notional === undefined)) {
    return unprocessable(mleg ? 'qty is required for mleg orders' : 'qty or notional is required');
  }
  if ((type === 'limit' || type === 'stop_limit') && values.limit_price === undefined) {
    return unprocessable('limit_price is required');
  }
  if ((type === 'stop' || type === 'stop_limit') && values.stop_price === undefined) {
    return unprocessable('stop_price is required');
  }
  if (type === 'trailing_stop' && (values.trail_price === undefined) === (values.trail_percent === undefined)) {
    return unprocessable('trail_price or trail_percent is required');
  }
  const intent = input.position_intent;
  if (intent !== undefined && (typeof intent !== 'string' || !INTENTS.has(intent))) {
    return unprocessable('invalid position_intent');
  }
  if (input.extended_hours !== undefined && typeof input.extended_hours !== 'boolean') {
    return unprocessable('invalid extended_hours');
  }
  const clientOrderId = input.client_order_id ?? randomUUID();
  if (typeof clientOrderId !== 'string' || clientOrderId.length > 128) {
    return unprocessable('client_order_id must be at most 128 characters');
  }
  const common = {
    client_order_id: clientOrderId,
    replaces,
    notional: values.notional ?? null,
    qty: values.qty ?? null,
    order_class: orderClass,
    order_type: type,
    type,
    side: side ?? null,
    time_in_force: tif,
    limit_price: values.limit_price ?? null,
    stop_price: values.stop_price ?? null,
    trail_price: values.trail_price ?? null,
    trail_percent: values.trail_percent ?? null,
    extended_hours: input.extended_hours ?? false,
    ...(intent === undefined ? {} : { position_intent: intent }),
  };

  if (mleg) {
    if (input.symbol !== undefined && input.symbol !== '') return unprocessable('symbol must be empty for mleg orders');
    const legs = input.legs;
    if (!Array.isArray(legs) || legs.length < 2 || legs.length > 4)
      return unprocessable('mleg orders need 2 to 4 legs');
    const made: Order[] = [];
    for (const leg of legs as Record<string, unknown>[]) {
      const asset = typeof leg?.symbol === 'string' ? assets.resolve(leg.symbol) : undefined;
      if (!asset) return unprocessable(`asset not found for leg ${String(leg?.symbol)}`);
      const ratio = leg.ratio_qty;
      if (!/^[1-9]\d*$/.test(String(ratio ?? ''))) return unprocessable('invalid ratio_qty');
      if (typeof leg.side !== 'string' || !SIDES.has(leg.side)) return unprocessable('invalid leg side');
      if (leg.position_intent !== undefined && !INTENTS.has(String(leg.position_intent))) {
        return unprocessable('invalid leg position_intent');
      }
      made.push(
        orderShell(asset, {
          ...common,
          client_order_id: randomUUID(),
          side: leg.side,
          ratio_qty: String(ratio),
          order_class: 'mleg',
          ...(leg.position_intent === undefined ? {} : { position_intent: leg.position_intent }),
        }),
      );
    }
    return orderShell(undefined, { ...common, asset_class: 'us_option', legs: made });
  }

  if (typeof input.symbol !== 'string' || input.symbol.trim() === '') return unprocessable('symbol is required');
  const asset = assets.resolve(input.symbol);
  if (!asset) return unprocessable(`asset not found for ${input.symbol}`);
  if (!asset.tradable) return unprocessable(`asset ${asset.symbol} is not tradable`);
  // A bracket's (or OCO's, OTO's) exits: Alpaca answers them as the order's legs, held until the entry fills.
  const exits: Order[] = [];
  const exitSide = side === 'buy' ? 'sell' : 'buy';
  const { take_profit: takeProfit, stop_loss: stopLoss } = input as Record<string, Record<string, unknown> | undefined>;
  if (takeProfit !== undefined) {
    const limit = typeof takeProfit === 'object' && takeProfit !== null ? amount(takeProfit, 'limit_price') : undefined;
    if (limit === undefined || typeof limit === 'object') return unprocessable('invalid take_profit.limit_price');
    exits.push(
      orderShell(asset, { ...common, ...exitLeg(exitSide), type: 'limit', order_type: 'limit', limit_price: limit }),
    );
  }
  if (stopLoss !== undefined) {
    const stop = typeof stopLoss === 'object' && stopLoss !== null ? amount(stopLoss, 'stop_price') : undefined;
    const limit = typeof stopLoss === 'object' && stopLoss !== null ? amount(stopLoss, 'limit_price') : undefined;
    if (stop === undefined || typeof stop === 'object' || typeof limit === 'object') {
      return unprocessable('invalid stop_loss');
    }
    const kind = limit === undefined ? 'stop' : 'stop_limit';
    exits.push(
      orderShell(asset, {
        ...common,
        ...exitLeg(exitSide),
        type: kind,
        order_type: kind,
        stop_price: stop,
        limit_price: limit ?? null,
      }),
    );
  }
  return orderShell(asset, { ...common, legs: exits.length > 0 ? exits : null });
}

function exitLeg(side: string) {
  return { client_order_id: randomUUID(), side, status: 'held', replaces: null, time_in_force: 'gtc' };
}

/** PATCH /v2/orders/{id}: what may change, laid over the original. */
function replacementInput(order: Order, changes: Record<string, unknown>): { input: Record<string, unknown> } | Answer {
  if (changes.qty !== undefined && order.notional !== null)
    return unprocessable('qty cannot be changed on a notional order');
  const input: Record<string, unknown> = {
    symbol: order.symbol === '' ? undefined : order.symbol,
    side: order.side ?? undefined,
    type: order.type,
    time_in_force: order.time_in_force,
    order_class: order.order_class,
    extended_hours: order.extended_hours,
    position_intent: order.position_intent,
  };
  for (const field of ['qty', 'notional', 'limit_price', 'stop_price', 'trail_price', 'trail_percent']) {
    if (order[field] !== null) input[field] = order[field];
  }
  if (order.order_class === 'mleg' && order.legs) {
    input.legs = order.legs.map((leg) => ({
      symbol: leg.symbol,
      ratio_qty: leg.ratio_qty,
      side: leg.side,
      position_intent: leg.position_intent,
    }));
  }
  for (const field of ['qty', 'limit_price', 'stop_price', 'time_in_force', 'client_order_id']) {
    if (changes[field] !== undefined) input[field] = changes[field];
  }
  if (changes.trail !== undefined)
    input[order.trail_percent !== null ? 'trail_percent' : 'trail_price'] = changes.trail;
  return { input };
}

const orderSymbols = (order: Order) =>
  [order.symbol, ...(order.legs ?? []).map((leg) => leg.symbol)].filter((s) => s !== '').map(symbolKey);

function listOrders(orders: Order[], query: URLSearchParams): Answer {
  const status = query.get('status') ?? 'open';
  const limit = Math.min(Number(query.get('limit') ?? 50), 500);
  const symbols = query.get('symbols')?.split(',').filter(Boolean).map(symbolKey);
  const side = query.get('side');
  const classes = query.get('asset_class')?.split(',').filter(Boolean);
  const after = query.get('after');
  const until = query.get('until');
  const selected = orders.filter(
    (o) =>
      (status === 'all' || (status === 'open') === OPEN.has(o.status)) &&
      (!symbols || orderSymbols(o).some((s) => symbols.includes(s))) &&
      (!side || o.side === side) &&
      (!classes || classes.includes('all') || classes.includes(o.asset_class)) &&
      (!after || Date.parse(o.submitted_at) > Date.parse(after)) &&
      (!until || Date.parse(o.submitted_at) < Date.parse(until)),
  );
  const ordered = query.get('direction') === 'asc' ? selected : selected.toReversed();
  return { status: 200, body: ordered.slice(0, limit) };
}

// ---------------------------------------------------------------------------
// The account

interface AccountState {
  orders: Order[];
  /** By symbolKey, in the order they were given. */
  positions: Map<string, Holding>;
}

function accountBody(accountNumber: string, status: string): Record<string, unknown> {
  return {
    id: randomUUID(),
    account_number: accountNumber,
    status,
    crypto_status: 'ACTIVE',
    currency: 'USD',
    buying_power: '200000',
    cash: '100000',
    portfolio_value: '100000',
    pattern_day_trader: false,
    trading_blocked: false,
    transfers_blocked: false,
    account_blocked: false,
    created_at: '2026-01-05T15:04:05.123456Z',
    multiplier: '2',
    equity: '100000',
    last_equity: '100000',
  };
}

/** Fill activities, repetitive enough to compress well (a gzip test's large body). */
function activities(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i).padStart(8, '0');
    return {
      id: `20261201093000000::${n}-0000-4000-8000-000000000000`,
      activity_type: 'FILL',
      transaction_time: '2026-12-01T14:30:00.000Z',
      type: 'fill',
      price: '190.11',
      qty: '1',
      side: i % 2 === 0 ? 'buy' : 'sell',
      symbol: 'AAPL',
      leaves_qty: '0',
      order_id: `${n}-0000-4000-8000-000000000001`,
      cum_qty: '1',
      order_status: 'filled',
    };
  });
}

/** The market order that closes a position (Alpaca answers it to DELETE v2/positions[/{symbol}]). */
function closingOrder(h: Holding): Order {
  const short = h.qty.startsWith('-');
  return orderShell(h.asset, {
    qty: short ? h.qty.slice(1) : h.qty,
    side: short ? 'buy' : 'sell',
    time_in_force: h.asset.class === 'crypto' ? 'gtc' : 'day',
  });
}

function parseObject(body: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(body) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const decode = (segment: string) => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

/** Kind and symbols of a request from its shape alone (the account, once known, adds what ids resolve to). */
function classify(seen: SeenRequest): void {
  const [, resource, raw, ...more] = seen.path.split('/').slice(1);
  const item = raw === undefined ? undefined : decode(raw);
  if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(seen.method)) {
    seen.kind = 'change';
    const body = resource === 'orders' && seen.method === 'POST' ? parseObject(seen.body) : null;
    if (typeof body?.symbol === 'string') seen.symbols = [symbolKey(body.symbol)];
    if (resource === 'positions' && item !== undefined) seen.symbols = [symbolKey(item)];
    return;
  }
  if (seen.method !== 'GET' || more.length > 0) return;
  const query = new URLSearchParams(seen.query);
  const one = item === undefined ? [] : [symbolKey(item)];
  const kinds: Record<string, [SeenRequest['kind'], SeenRequest['kind']]> = {
    account: ['account', item === 'activities' ? 'activities' : 'other'],
    assets: ['assets', 'asset'],
    positions: ['positions', 'position'],
    orders: ['orders', 'order'],
    'orders:by_client_order_id': ['order', 'other'],
    clock: ['clock', 'other'],
    calendar: ['calendar', 'other'],
  };
  const pair = resource === undefined ? undefined : kinds[resource];
  if (!pair) return;
  seen.kind = item === undefined ? pair[0] : pair[1];
  if (seen.kind === 'asset' || seen.kind === 'position') seen.symbols = one;
  if (seen.kind === 'orders') seen.symbols = (query.get('symbols') ?? '').split(',').filter(Boolean).map(symbolKey);
}

/** The trading API for one account; ids and symbols come from the path. */
function trade(state: AccountState, options: AccountOptions, assets: AssetRegistry, request: SeenRequest): TradeAnswer {
  const { method, path } = request;
  const query = new URLSearchParams(request.query);
  const [version, resource, raw, ...more] = path.split('/').slice(1);
  const item = raw === undefined ? undefined : decode(raw);
  if (version !== 'v2' || more.length > 0) return { status: 404, body: { message: 'Not Found' } };
  const about = (...symbols: string[]) => {
    const keys = symbols.filter((s) => s !== '').map(symbolKey);
    for (const key of keys) if (!request.symbols.includes(key)) request.symbols.push(key);
    return keys;
  };
  const holdingOf = (symbolOrId: string) => {
    const key = symbolKey(symbolOrId);
    return [...state.positions.values()].find(
      (h) => symbolKey(h.symbol) === key || h.asset.id === symbolOrId.toLowerCase(),
    );
  };

  if (resource === 'account' && method === 'GET') {
    if (item === undefined) {
      return { status: 200, body: accountBody(options.accountNumber ?? 'PA3ABCDEFGH1', options.status ?? 'ACTIVE') };
    }
    if (item === 'activities') return { status: 200, body: activities(options.activities ?? 0) };
  }
  if (resource === 'clock' && item === undefined && method === 'GET') {
    return {
      status: 200,
      body: {
        timestamp: new Date().toISOString(),
        is_open: true,
        next_open: '2026-12-02T14:30:00Z',
        next_close: '2026-12-01T21:00:00Z',
      },
    };
  }
  if (resource === 'calendar' && item === undefined && method === 'GET') {
    return {
      status: 200,
      body: [{ date: '2026-12-01', open: '09:30', close: '16:00', session_open: '0400', session_close: '2000' }],
    };
  }
  if (resource === 'assets' && method === 'GET') {
    if (item === undefined) {
      const classes = (query.get('asset_class') ?? 'us_equity').split(',');
      const status = query.get('status');
      const listed = assets.list().filter((a) => classes.includes(a.class) && (!status || a.status === status));
      return { status: 200, body: listed };
    }
    const asset = assets.resolve(item);
    const symbols = about(item, asset?.symbol ?? '');
    return {
      ...(asset ? { status: 200, body: asset } : notFound(`asset not found for ${item}`)),
      area: 'asset',
      about: symbols,
    };
  }
  if (resource === 'orders:by_client_order_id' && item === undefined && method === 'GET') {
    const order = state.orders.find((o) => o.client_order_id === query.get('client_order_id'));
    if (!order) return notFound('order not found');
    return { status: 200, body: order, area: 'orders', about: about(...orderSymbols(order)) };
  }
  if (resource === 'orders') {
    if (item === undefined && method === 'GET') {
      const symbols = query.get('symbols');
      return {
        ...listOrders(state.orders, query),
        area: 'orders',
        about: symbols ? about(...symbols.split(',')) : 'all',
      };
    }
    if (item === undefined && method === 'POST') {
      const input = parseObject(request.body);
      if (!input) return unprocessable('request body format is invalid');
      if (
        input.client_order_id !== undefined &&
        state.orders.some((o) => o.client_order_id === input.client_order_id)
      ) {
        return unprocessable('client_order_id must be unique');
      }
      const order = newOrder(input, assets);
      if (isAnswer(order)) return order;
      about(...orderSymbols(order));
      state.orders.push(order);
      return { status: 200, body: order };
    }
    if (item === undefined && method === 'DELETE') {
      const open = state.orders.filter((o) => OPEN.has(o.status));
      for (const o of open) o.status = 'canceled';
      return { status: 207, body: open.map((o) => ({ id: o.id, status: 200 })) };
    }
    if (item !== undefined) {
      const order = state.orders.find((o) => o.id === item);
      if (!order) return notFound('order not found');
      const symbols = about(...orderSymbols(order));
      if (method === 'GET') return { status: 200, body: order, area: 'orders', about: symbols };
      if (method === 'DELETE') {
        if (!OPEN.has(order.status)) return unprocessable(`order is already in "${order.status}" state`);
        order.status = 'canceled';
        order.canceled_at = new Date().toISOString();
        return { status: 204 };
      }
      if (method === 'PATCH') {
        const changes = parseObject(request.body);
        if (!changes) return unprocessable('request body format is invalid');
        if (!OPEN.has(order.status)) return unprocessable(`order is already in "${order.status}" state`);
        if (
          changes.client_order_id !== undefined &&
          state.orders.some((o) => o.client_order_id === changes.client_order_id)
        ) {
          return unprocessable('client_order_id must be unique');
        }
        const laid = replacementInput(order, changes);
        if (!('input' in laid)) return laid;
        const replacement = newOrder(laid.input, assets, order.id);
        if (isAnswer(replacement)) return replacement;
        if (order.order_class !== 'mleg' && order.legs) replacement.legs = order.legs;
        order.status = 'replaced';
        order.replaced_by = replacement.id;
        order.replaced_at = replacement.created_at;
        state.orders.push(replacement);
        return { status: 200, body: replacement };
      }
    }
  }
  if (resource === 'positions') {
    if (item === undefined && method === 'GET') {
      return { status: 200, body: [...state.positions.values()].map(positionBody), area: 'position', about: 'all' };
    }
    if (item === undefined && method === 'DELETE') {
      if (query.get('cancel_orders') === 'true') {
        for (const o of state.orders) if (OPEN.has(o.status)) o.status = 'canceled';
      }
      const closed = [...state.positions.values()].map((h) => {
        const order = closingOrder(h);
        state.orders.push(order);
        return { symbol: h.symbol, status: 200, body: order };
      });
      state.positions.clear();
      return { status: 207, body: closed };
    }
    if (item !== undefined) {
      const h = holdingOf(item);
      const symbols = about(item, h?.symbol ?? '');
      if (!h)
        return {
          ...notFound('position does not exist'),
          ...(method === 'GET' ? { area: 'position', about: symbols } : {}),
        };
      if (method === 'GET') return { status: 200, body: positionBody(h), area: 'position', about: symbols };
      if (method === 'DELETE') {
        state.positions.delete(symbolKey(h.symbol));
        const order = closingOrder(h);
        state.orders.push(order);
        return { status: 200, body: order };
      }
    }
  }
  return { status: 404, body: { message: 'Not Found' } };
}

export async function startAlpacaStandIn(options: { port?: number } = {}): Promise<AlpacaStandIn> {
  const keys = new Map<string, StandInBehaviour>();
  const accounts = new Map<string, AccountState>();
  const assets = assetRegistry();
  const failures = failureBook();
  const requests: SeenRequest[] = [];
  const hanging = new Set<http.ServerResponse>();
  const held: (() => void)[] = [];

  const holdings = (positions: PositionInput[]) =>
    new Map(positions.map((p) => holding(assets, p)).map((h) => [symbolKey(h.symbol), h]));
  const stateOf = (apiKey: string, options: AccountOptions) => {
    let state = accounts.get(apiKey);
    if (!state) {
      state = { orders: [], positions: holdings(options.positions ?? []) };
      accounts.set(apiKey, state);
    }
    return state;
  };
  const tradingOptions = (behaviour: StandInBehaviour | undefined) =>
    behaviour && (behaviour.kind === 'account' || behaviour.kind === 'slow' || behaviour.kind === 'held')
      ? behaviour
      : undefined;

  const server = http.createServer(async (req, res) => {
    const seen = await readRequest(req);
    classify(seen);
    requests.push(seen);
    const behaviour = seen.apiKey ? keys.get(seen.apiKey) : undefined;
    const options = tradingOptions(behaviour);
    const send = sender(req, res, seen, seen.secretKey === options?.secretKey ? (options?.gzip ?? false) : false);
    if (!behaviour) return send(401, UNAUTHORIZED);
    switch (behaviour.kind) {
      case 'account':
      case 'slow':
      case 'held': {
        if (seen.secretKey !== behaviour.secretKey) return send(401, UNAUTHORIZED);
        let answer: Answer = trade(stateOf(seen.apiKey as string, behaviour), behaviour, assets, seen);
        const { area, about } = answer as TradeAnswer;
        const effect = area && about ? failures.effect(area, about) : { delayMs: 0, status: undefined };
        if (effect.status)
          answer = { status: effect.status.status, body: failureBody(effect.status.status, effect.status.symbol) };
        const deliver = () => send(answer.status, answer.body);
        const delayMs = effect.delayMs + (behaviour.kind === 'slow' ? behaviour.delayMs : 0);
        const serve = () => (delayMs > 0 ? setTimeout(deliver, delayMs).unref() : deliver());
        if (behaviour.kind === 'held') held.push(serve);
        else serve();
        return;
      }
      case 'status':
        return send(
          behaviour.status,
          behaviour.status === 401 || behaviour.status === 403
            ? UNAUTHORIZED
            : JSON.stringify({ message: `stand-in status ${behaviour.status}` }),
        );
      case 'rate-limited':
        return send(
          429,
          { code: 42910000, message: 'rate limit exceeded' },
          { 'retry-after': String(behaviour.retryAfterSeconds), 'x-ratelimit-remaining': '0' },
        );
      case 'redirect':
        return send(behaviour.status, { message: 'moved' }, { location: behaviour.location });
      case 'hang':
        hanging.add(res);
        res.once('close', () => hanging.delete(res));
        return;
      case 'hang-body':
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': seen.requestId });
        res.write('{"id":');
        hanging.add(res);
        res.once('close', () => hanging.delete(res));
        return;
      case 'garbage':
        return send(200, '<html>502 Bad Gateway</html>');
      case 'not-account':
        return send(200, JSON.stringify({ message: 'ok' }));
      case 'reset':
        req.socket.destroy();
        return;
    }
  });
  await listening(server, options.port ?? 0);
  const { port } = server.address() as AddressInfo;

  const release = () => {
    for (const res of hanging) res.socket?.destroy();
    hanging.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    setKey: (apiKey, behaviour) => {
      // Positions are read now, so that a test's mistake throws here rather than in a request.
      const positions = 'positions' in behaviour && behaviour.positions ? holdings(behaviour.positions) : undefined;
      keys.set(apiKey, behaviour);
      const state = accounts.get(apiKey);
      if (positions && state) state.positions = positions;
    },
    accepts: (apiKey, secretKey) => {
      const options = tradingOptions(keys.get(apiKey));
      return options !== undefined && options.secretKey === secretKey;
    },
    setAsset: assets.set,
    asset: (symbolOrId) => assets.resolve(symbolOrId),
    orders: (apiKey) => structuredClone(accounts.get(apiKey)?.orders ?? []),
    failSymbol: failures.set,
    clearSymbol: failures.clear,
    counts: (apiKey, symbol) => countRequests(requests, apiKey, symbol),
    requests,
    get hanging() {
      return hanging.size;
    },
    get held() {
      return held.length;
    },
    release,
    proceed: () => {
      for (const serve of held.splice(0)) serve();
    },
    close: async () => {
      release();
      held.length = 0;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface AlpacaStandIns {
  paper: AlpacaStandIn;
  live: AlpacaStandIn;
  /** Market data, for the keys paper or live accepts (same secret); 401 otherwise. */
  data: AlpacaDataStandIn;
  /** ALPACA_PAPER_URL, ALPACA_LIVE_URL and ALPACA_DATA_URL for a server under test. */
  env: Record<string, string>;
  /** setAsset on paper and live. */
  setAsset(symbol: string, asset: Partial<Asset> | null): void;
  /** The failure on every stand-in serving its areas: asset, position and orders at paper and live, data at data. */
  failSymbol(symbol: string, failure: SymbolFailure): void;
  clearSymbol(symbol: string): void;
  /** Requests per kind at all three (of one key, about one symbol; all when absent). */
  counts(apiKey?: string, symbol?: string): RequestCounts;
  close(): Promise<void>;
}

/** One stand-in per environment, as Alpaca has (paper and live know different keys), and market data for both. */
export async function startAlpacaStandIns(
  ports: { paper?: number; live?: number; data?: number } = {},
): Promise<AlpacaStandIns> {
  const [paper, live] = await Promise.all([
    startAlpacaStandIn({ port: ports.paper }),
    startAlpacaStandIn({ port: ports.live }),
  ]);
  const data = await startAlpacaDataStandIn({
    authorize: (apiKey, secretKey) => paper.accepts(apiKey, secretKey) || live.accepts(apiKey, secretKey),
    port: ports.data,
  });
  const all = [paper, live, data];
  return {
    paper,
    live,
    data,
    env: { ALPACA_PAPER_URL: paper.url, ALPACA_LIVE_URL: live.url, ALPACA_DATA_URL: data.url },
    setAsset: (symbol, asset) => {
      paper.setAsset(symbol, asset);
      live.setAsset(symbol, asset);
    },
    failSymbol: (symbol, failure) => {
      for (const stand of all) stand.failSymbol(symbol, failure);
    },
    clearSymbol: (symbol) => {
      for (const stand of all) stand.clearSymbol(symbol);
    },
    counts: (apiKey, symbol) => addCounts(...all.map((stand) => stand.counts(apiKey, symbol))),
    close: async () => {
      await Promise.all(all.map((stand) => stand.close()));
    },
  };
}
