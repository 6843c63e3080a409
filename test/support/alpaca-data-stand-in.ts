// The market data half of the Alpaca stand-in (see alpaca-stand-in.ts, which
// documents the whole mock and is the one entry tests import), and the HTTP
// plumbing both halves share: Alpaca's headers, request recording and
// counting, gzip on request, per-symbol failures.
//
// Alpaca serves market data at its own host (https://data.alpaca.markets), the
// same for paper and live keys, with the same APCA-API-KEY-ID /
// APCA-API-SECRET-KEY headers. Shapes, as in Alpaca's market data OpenAPI
// spec: prices and sizes are JSON numbers (not strings, unlike the trading
// API); a stock quote's ap or bp of 0 means no active ask or bid.
//   GET /v2/stocks/{symbol}/quotes/latest      {symbol, quote: {ap, as, ax, bp, bs, bx, c, t, z}}
//   GET /v2/stocks/{symbol}/trades/latest      {symbol, trade: {c, i, p, s, t, x, z}}
//   GET /v1beta3/crypto/{loc}/latest/quotes?symbols=BTC/USD,...   {quotes: {"BTC/USD": {ap, as, bp, bs, t}}}
//   GET /v1beta3/crypto/{loc}/latest/trades?symbols=...           {trades: {"BTC/USD": {i, p, s, t, tks}}}
//   GET /v1beta1/options/quotes/latest?symbols=AAPL250620C00100000 {quotes: {SYM: {ap, as, ax, bp, bs, bx, c, t}}}
//   GET /v1beta1/options/trades/latest?symbols=...                {trades: {SYM: {c, p, s, t, x}}}
// A multi-symbol answer leaves out a symbol it has nothing for. What the
// single-symbol stock endpoints answer for a symbol without data is not in
// the spec: by default a 404 {"code":40410000,"message":"no quote found"}
// ("no trade found"), or, after answerMissingStockWith('empty'), a 200 with a
// zero quote (ap 0, bp 0, t "0001-01-01T00:00:00Z"), so tests can cover both.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

/** What a request was, for counting: `change` is any POST, PATCH or DELETE at the trading API. */
export type RequestKind =
  | 'change'
  | 'account'
  | 'activities'
  | 'assets'
  | 'asset'
  | 'positions'
  | 'position'
  | 'orders'
  | 'order'
  | 'clock'
  | 'calendar'
  | 'quotes'
  | 'trades'
  | 'other';

export interface SeenRequest {
  method: string;
  path: string;
  /** The query string without "?" ('' for none). */
  query: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  apiKey: string | undefined;
  secretKey: string | undefined;
  requestId: string;
  kind: RequestKind;
  /** The symbols the request is about, as symbolKey() writes them (AAPL, BTCUSD); [] for a whole list. */
  symbols: string[];
  /** What was sent back, once it was (absent while held, hanging, or for a reset). */
  response?: { status: number; contentEncoding: string | null; bytes: number };
}

/** Requests per kind, as countRequests() and the stand-ins' counts() give them. */
export interface RequestCounts {
  /** Every request received (401s included). */
  total: number;
  /** POST, PATCH and DELETE at the trading API: what changes something at the broker. */
  changes: number;
  /** GET v2/assets/{symbol_or_asset_id}. */
  asset: number;
  /** GET v2/positions and GET v2/positions/{symbol_or_asset_id}. */
  position: number;
  /** GET v2/orders (the list). */
  orders: number;
  /** GET v2/orders/{id} and GET v2/orders:by_client_order_id. */
  order: number;
  /** Latest quotes: stocks, crypto, options. */
  quotes: number;
  /** Latest trades: stocks, crypto, options. */
  trades: number;
}

/** Where a per-symbol failure applies: the trading API's reads about the symbol, or its market data. */
export type SymbolArea = 'asset' | 'position' | 'orders' | 'data';

export type SymbolFailure =
  /** The answer comes after delayMs (`on`: where; all four areas when absent). */
  | { kind: 'slow'; delayMs: number; on?: SymbolArea[] }
  /** The answer is this status with {code, message} (`on`: where; all four areas when absent). */
  | { kind: 'status'; status: number; on?: SymbolArea[] }
  /** Market data only: no quote and no trade for the symbol (404 or empty for stocks, left out of multi-symbol answers). */
  | { kind: 'no-price' };

export const ALL_AREAS: readonly SymbolArea[] = ['asset', 'position', 'orders', 'data'];
export const RATE_LIMIT = 200;
export const UNAUTHORIZED = JSON.stringify({ code: 40110000, message: 'request is not authorized' });

/** One spelling per symbol, for matching: upper case, the crypto pair's slash removed (BTC/USD and BTCUSD are BTCUSD). */
export function symbolKey(symbol: string): string {
  return symbol.trim().toUpperCase().replace('/', '');
}

/** Reads a whole request into a record (kind and symbols are the server's to fill in). */
export async function readRequest(req: http.IncomingMessage): Promise<SeenRequest> {
  const header = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const [path = '/', ...query] = (req.url ?? '/').split('?');
  return {
    method: req.method ?? '',
    path,
    query: query.join('?'),
    headers: req.headers,
    body: Buffer.concat(chunks).toString('utf8'),
    apiKey: header('apca-api-key-id'),
    secretKey: header('apca-api-secret-key'),
    requestId: randomBytes(16).toString('hex'),
    kind: 'other',
    symbols: [],
  };
}

/** Listens on 127.0.0.1:`port` (0: a free port); rejects when the port is taken. */
export function listening(server: http.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Whether an Accept-Encoding header allows gzip (RFC 9110 12.5.3: an explicit
 * q=0 refuses, `*` stands for any coding not named). Hand-written: one coding
 * to decide, where a negotiation library would be a new dependency of the tests.
 */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  let star = false;
  for (const part of (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',')) {
    const [coding = '', ...params] = part.split(';').map((p) => p.trim());
    const q = params.find((p) => p.toLowerCase().startsWith('q='));
    const allowed = q === undefined || Number(q.slice(2)) > 0;
    const name = coding.toLowerCase();
    if (name === 'gzip' || name === 'x-gzip') return allowed;
    if (name === '*') star = allowed;
  }
  return star;
}

export type Send = (status: number, body?: unknown, extra?: Record<string, string>) => void;

/**
 * Sends answers the way Alpaca does: X-Request-ID and the X-Ratelimit-* headers
 * on every one, plus two headers a proxy must not pass on (Alpaca's edge sets
 * a cookie; x-stand-in-private stands for anything else of the broker's). With
 * `gzip`, a body is compressed when the request's Accept-Encoding allows it.
 */
/** How a key's answers are encoded: as asked (gzip when Accept-Encoding allows it), or gzip whatever was asked. */
export type GzipMode = boolean | 'always';

export function sender(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  seen: SeenRequest,
  gzip: GzipMode = false,
): Send {
  return (status, body, extra = {}) => {
    if (res.destroyed) return;
    const headers: Record<string, string> = {
      'x-request-id': seen.requestId,
      'x-ratelimit-limit': String(RATE_LIMIT),
      'x-ratelimit-remaining': String(RATE_LIMIT - 1),
      'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 60),
      'set-cookie': 'stand_in_session=abc; Path=/; HttpOnly',
      'x-stand-in-private': 'not for engines',
    };
    if (status === 204 || body === undefined) {
      res.writeHead(status, { ...headers, ...extra });
      res.end();
      seen.response = { status, contentEncoding: null, bytes: 0 };
      return;
    }
    let payload: Buffer = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    headers['content-type'] = 'application/json; charset=utf-8';
    let contentEncoding: string | null = null;
    if (gzip) {
      headers.vary = 'Accept-Encoding';
      if (gzip === 'always' || acceptsGzip(req.headers['accept-encoding'])) {
        payload = gzipSync(payload);
        contentEncoding = 'gzip';
        headers['content-encoding'] = 'gzip';
      }
    }
    headers['content-length'] = String(payload.length);
    res.writeHead(status, { ...headers, ...extra });
    res.end(payload);
    seen.response = { status, contentEncoding, bytes: payload.length };
  };
}

const COUNTED: Partial<Record<RequestKind, Exclude<keyof RequestCounts, 'total'>>> = {
  change: 'changes',
  asset: 'asset',
  position: 'position',
  positions: 'position',
  orders: 'orders',
  order: 'order',
  quotes: 'quotes',
  trades: 'trades',
};

/** Requests per kind, of one API key (all when absent) and about one symbol (any when absent). */
export function countRequests(requests: readonly SeenRequest[], apiKey?: string, symbol?: string): RequestCounts {
  const counts: RequestCounts = {
    total: 0,
    changes: 0,
    asset: 0,
    position: 0,
    orders: 0,
    order: 0,
    quotes: 0,
    trades: 0,
  };
  const key = symbol === undefined ? undefined : symbolKey(symbol);
  for (const r of requests) {
    if (apiKey !== undefined && r.apiKey !== apiKey) continue;
    if (key !== undefined && !r.symbols.includes(key)) continue;
    counts.total += 1;
    const field = COUNTED[r.kind];
    if (field) counts[field] += 1;
  }
  return counts;
}

export function addCounts(...all: RequestCounts[]): RequestCounts {
  const sum: RequestCounts = { total: 0, changes: 0, asset: 0, position: 0, orders: 0, order: 0, quotes: 0, trades: 0 };
  for (const counts of all)
    for (const field of Object.keys(sum) as (keyof RequestCounts)[]) sum[field] += counts[field];
  return sum;
}

/** What the failures set for some symbols do to one request. */
export interface FailureEffect {
  /** Answer with this status instead (the first failing symbol's). */
  status?: { status: number; symbol: string };
  /** Answer this much later (the longest delay among the symbols). */
  delayMs: number;
  /** Symbols (as symbolKey) with no price. */
  noPrice: Set<string>;
}

/** Per-symbol failures of one stand-in, set by tests. */
export function failureBook() {
  const failures = new Map<string, SymbolFailure>();
  const areas = (f: SymbolFailure): readonly SymbolArea[] => (f.kind === 'no-price' ? ['data'] : (f.on ?? ALL_AREAS));
  return {
    set: (symbol: string, failure: SymbolFailure) => {
      failures.set(symbolKey(symbol), failure);
    },
    clear: (symbol: string) => {
      failures.delete(symbolKey(symbol));
    },
    /** `symbols` 'all': a whole list (every position, every order), which every failing symbol spoils. */
    effect(area: SymbolArea, symbols: readonly string[] | 'all'): FailureEffect {
      const effect: FailureEffect = { delayMs: 0, noPrice: new Set() };
      const keys = symbols === 'all' ? [...failures.keys()] : symbols.map(symbolKey);
      for (const key of keys) {
        const failure = failures.get(key);
        if (!failure || !areas(failure).includes(area)) continue;
        if (failure.kind === 'status') effect.status ??= { status: failure.status, symbol: key };
        else if (failure.kind === 'slow') effect.delayMs = Math.max(effect.delayMs, failure.delayMs);
        else effect.noPrice.add(key);
      }
      return effect;
    },
  };
}

export function failureBody(status: number, symbol: string) {
  // Alpaca's codes are the status followed by a detail (40410000, 50010000).
  return { code: Number(`${status}10000`), message: `stand-in status ${status} for ${symbol}` };
}

// ---------------------------------------------------------------------------
// Market data

/** A price as a test sets it: numbers or decimal strings; an ask or bid absent (or 0) means none is active. */
export interface PriceInput {
  ask?: number | string | null;
  bid?: number | string | null;
  /** The latest trade's price; absent: no trade. */
  last?: number | string | null;
}

/** The price book's entry: decimal text, sent as JSON numbers with exactly these digits. */
export interface Price {
  ask?: string;
  bid?: string;
  last?: string;
}

/** What the data stand-in starts with (tests read these rather than repeat the numbers). */
export const DEFAULT_PRICES: Readonly<Record<string, Readonly<Price>>> = {
  AAPL: { ask: '190.12', bid: '190.1', last: '190.11' },
  MSFT: { ask: '420.55', bid: '420.45', last: '420.5' },
  'BRK.B': { ask: '455.2', bid: '455', last: '455.1' },
  'BTC/USD': { ask: '65010.5', bid: '65000.25', last: '65005' },
  'ETH/USD': { ask: '3500.75', bid: '3500.25', last: '3500.5' },
  AAPL250620C00100000: { ask: '92.1', bid: '91.9', last: '92' },
};

const JSON_NUMBER = /^(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

function priceText(field: string, value: number | string | null | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'number' ? String(value) : value.trim();
  if (typeof value === 'number' ? !Number.isFinite(value) || value < 0 : !JSON_NUMBER.test(text)) {
    throw new Error(`setPrice: ${field} must be a non-negative number or decimal string, not ${String(value)}`);
  }
  return text;
}

// JSON.rawJSON (Node 21+) sends the test's digits as they are: 0.000012345 stays
// 0.000012345, where a detour through a double could print another number.
// The project's TypeScript lib (ES2024) does not declare it yet.
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
const num = (text: string | undefined) => rawJSON(text ?? '0');
const ZERO_TIME = '0001-01-01T00:00:00Z';

export type MissingStockAnswer = 'not-found' | 'empty';

export interface AlpacaDataStandIn {
  url: string;
  /** Every request received, in order. */
  readonly requests: SeenRequest[];
  /** Replaces the symbol's price (a field left out is absent); null: no data for the symbol. */
  setPrice(symbol: string, price: PriceInput | null): void;
  /** The symbol's current entry (undefined: none). */
  price(symbol: string): Price | undefined;
  /** What the single-symbol stock endpoints answer for a symbol without data (default 'not-found'). */
  answerMissingStockWith(answer: MissingStockAnswer): void;
  /** Per-symbol failure of market data (only its `data` area applies here). */
  failSymbol(symbol: string, failure: SymbolFailure): void;
  clearSymbol(symbol: string): void;
  /** quotes and trades read (of one key, about one symbol; all when absent). */
  counts(apiKey?: string, symbol?: string): RequestCounts;
  close(): Promise<void>;
}

export interface DataStandInOptions {
  /** Whether this key pair may read market data (startAlpacaStandIns: what paper or live accepts). */
  authorize(apiKey: string, secretKey: string | undefined): boolean;
  /** The port to listen on (127.0.0.1); a free one when absent. */
  port?: number;
}

const stockPath = /^\/v2\/stocks\/([^/]+)\/(quotes|trades)\/latest$/;
const cryptoPath = /^\/v1beta3\/crypto\/(us|us-1|us-2|eu-1|bs-1)\/latest\/(quotes|trades)$/;
const optionPath = /^\/v1beta1\/options\/(quotes|trades)\/latest$/;

export async function startAlpacaDataStandIn(options: DataStandInOptions): Promise<AlpacaDataStandIn> {
  const requests: SeenRequest[] = [];
  const prices = new Map<string, Price>(Object.entries(DEFAULT_PRICES).map(([s, p]) => [s, { ...p }]));
  const failures = failureBook();
  let missingStock: MissingStockAnswer = 'not-found';

  const size = (price: string | undefined, lots: number) => (price !== undefined && Number(price) > 0 ? lots : 0);
  const quote = (p: Price, t: string) => ({
    ap: num(p.ask),
    as: size(p.ask, 3),
    bp: num(p.bid),
    bs: size(p.bid, 2),
    t,
  });
  const stockQuote = (p: Price, t: string) => ({ ...quote(p, t), ax: 'V', bx: 'V', c: ['R'], z: 'C' });
  const emptyQuote = { ap: 0, as: 0, ax: '', bp: 0, bs: 0, bx: '', c: [], t: ZERO_TIME, z: '' };
  const emptyTrade = { c: [], i: 0, p: 0, s: 0, t: ZERO_TIME, x: '', z: '' };

  const server = http.createServer(async (req, res) => {
    const seen = await readRequest(req);
    const query = new URLSearchParams(seen.query);
    const listed = () => (query.get('symbols') ?? '').split(',').filter((s) => s !== '');
    const stock = stockPath.exec(seen.path);
    const crypto = cryptoPath.exec(seen.path);
    const option = optionPath.exec(seen.path);
    const which = stock?.[2] ?? crypto?.[2] ?? option?.[1];
    let symbols: string[] = [];
    if (stock) symbols = [decodeURIComponent(stock[1] ?? '')];
    else if (crypto || option) symbols = listed();
    if (seen.method === 'GET' && which) {
      seen.kind = which === 'quotes' ? 'quotes' : 'trades';
      seen.symbols = symbols.map(symbolKey);
    }
    requests.push(seen);
    const send = sender(req, res, seen);

    if (!seen.apiKey || !options.authorize(seen.apiKey, seen.secretKey)) return send(401, UNAUTHORIZED);
    if (seen.method !== 'GET' || !which) return send(404, { message: 'Not Found' });
    if ((crypto || option) && symbols.length === 0) {
      return send(400, { code: 40010001, message: 'symbols is required' });
    }
    const effect = failures.effect('data', symbols);
    const answer = (status: number, body: unknown) => {
      if (effect.delayMs > 0) setTimeout(() => send(status, body), effect.delayMs).unref();
      else send(status, body);
    };
    if (effect.status) return answer(effect.status.status, failureBody(effect.status.status, effect.status.symbol));
    const t = new Date().toISOString();
    const priceOf = (symbol: string) =>
      effect.noPrice.has(symbolKey(symbol)) ? undefined : prices.get(symbol.trim().toUpperCase());

    if (stock) {
      const symbol = symbols[0]?.toUpperCase() ?? '';
      const p = priceOf(symbol);
      if (which === 'quotes') {
        if (p) return answer(200, { symbol, quote: stockQuote(p, t) });
        if (missingStock === 'empty') return answer(200, { symbol, quote: emptyQuote });
        return answer(404, { code: 40410000, message: 'no quote found' });
      }
      if (p?.last !== undefined) {
        return answer(200, { symbol, trade: { c: ['@'], i: 1, p: num(p.last), s: 100, t, x: 'V', z: 'C' } });
      }
      if (missingStock === 'empty') return answer(200, { symbol, trade: emptyTrade });
      return answer(404, { code: 40410000, message: 'no trade found' });
    }

    const entries: [string, unknown][] = [];
    for (const requested of symbols) {
      const symbol = requested.trim().toUpperCase();
      const p = priceOf(symbol);
      if (!p) continue;
      if (which === 'quotes') {
        entries.push([symbol, crypto ? quote(p, t) : { ...quote(p, t), ax: 'C', bx: 'C', c: 'A' }]);
      } else if (p.last !== undefined) {
        const trade = crypto
          ? { i: 1, p: num(p.last), s: 0.5, t, tks: 'B' }
          : { c: 'I', p: num(p.last), s: 1, t, x: 'C' };
        entries.push([symbol, trade]);
      }
    }
    return answer(200, { [which]: Object.fromEntries(entries) });
  });
  await listening(server, options.port ?? 0);
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setPrice: (symbol, price) => {
      const key = symbol.trim().toUpperCase();
      if (price === null) {
        prices.delete(key);
        return;
      }
      const entry: Price = {};
      const ask = priceText('ask', price.ask);
      const bid = priceText('bid', price.bid);
      const last = priceText('last', price.last);
      if (ask !== undefined) entry.ask = ask;
      if (bid !== undefined) entry.bid = bid;
      if (last !== undefined) entry.last = last;
      prices.set(key, entry);
    },
    price: (symbol) => {
      const entry = prices.get(symbol.trim().toUpperCase());
      return entry && { ...entry };
    },
    answerMissingStockWith: (answer) => {
      missingStock = answer;
    },
    failSymbol: failures.set,
    clearSymbol: failures.clear,
    counts: (apiKey, symbol) => countRequests(requests, apiKey, symbol),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
