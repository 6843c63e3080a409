// THE ONE MOCK of this test suite: a stand-in for Alpaca's Trading API, which
// cannot be reached from here (no internet). Everything else in the tests is
// real (server, database, HTTP). Keys travel in the APCA-API-KEY-ID /
// APCA-API-SECRET-KEY headers; unknown keys (or a wrong secret) get 401
// {"code":40110000,"message":"request is not authorized"}; every answer has an
// X-Request-ID header. Paper and live are separate servers with separate keys,
// as at Alpaca: run one of each (startAlpacaStandIns) and point
// ALPACA_PAPER_URL / ALPACA_LIVE_URL at them.
//
// For valid keys it serves what an engine may use, the way Alpaca documents
// it (https://docs.alpaca.markets/reference): the account
// (GET /v2/account, /v2/account/activities), orders with client_order_id
// (POST, GET, PATCH, DELETE /v2/orders[/{id}], GET
// /v2/orders:by_client_order_id, DELETE /v2/orders answering 207), positions
// (GET, DELETE /v2/positions[/{symbol}]), assets, clock and calendar, each
// key with its own orders and positions. Answers carry X-Ratelimit-Limit /
// -Remaining / -Reset as Alpaca's do, plus two headers a proxy must not pass
// on (set-cookie, x-stand-in-private).
//
// Every request is recorded with its method, path, query, headers and body.
// Per API key, a test can make it misbehave in the ways the real one may:
// any status (5xx, 429, 403), 429 with Retry-After, a redirect, a hang
// before or after the headers, a slow answer (the order is placed at once,
// the answer comes late), a request held until the test lets it proceed, a
// body that is not JSON or not an account, a connection reset.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What valid keys give: the whole trading API for this account. */
interface AccountOptions {
  secretKey: string;
  accountNumber?: string;
  status?: string;
  /** Open positions at the start (symbol and quantity). */
  positions?: { symbol: string; qty: number }[];
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
}

export interface AlpacaStandIn {
  url: string;
  /** How the stand-in treats this API key; unknown keys get 401. */
  setKey(apiKey: string, behaviour: StandInBehaviour): void;
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

const UNAUTHORIZED = JSON.stringify({ code: 40110000, message: 'request is not authorized' });
const RATE_LIMIT = 200;

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

type Order = Record<string, unknown> & { id: string; client_order_id: string; status: string; symbol: string };

interface AccountState {
  orders: Order[];
  positions: Map<string, number>;
}

const OPEN = new Set(['new', 'accepted', 'pending_new', 'partially_filled']);
const SIDES = new Set(['buy', 'sell']);
const TYPES = new Set(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']);
const TIME_IN_FORCE = new Set(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']);

interface Answer {
  status: number;
  body?: unknown;
}

const unprocessable = (message: string): Answer => ({ status: 422, body: { code: 40010001, message } });
const notFound = (message: string): Answer => ({ status: 404, body: { code: 40410000, message } });

function newOrder(input: Record<string, unknown>, replaces: string | null = null): Order | Answer {
  const { symbol, qty, notional, side, type, time_in_force: tif, limit_price, stop_price } = input;
  if (typeof symbol !== 'string' || !/^[A-Z.]{1,12}$/.test(symbol)) return unprocessable('invalid symbol');
  if ((qty === undefined) === (notional === undefined)) return unprocessable('qty or notional is required');
  if (typeof side !== 'string' || !SIDES.has(side)) return unprocessable('invalid side');
  if (typeof type !== 'string' || !TYPES.has(type)) return unprocessable('invalid order type');
  if (typeof tif !== 'string' || !TIME_IN_FORCE.has(tif)) return unprocessable('invalid time_in_force');
  const clientOrderId = input.client_order_id ?? randomUUID();
  if (typeof clientOrderId !== 'string' || clientOrderId.length > 128) {
    return unprocessable('client_order_id must be at most 128 characters');
  }
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    client_order_id: clientOrderId,
    created_at: now,
    updated_at: now,
    submitted_at: now,
    filled_at: null,
    expired_at: null,
    canceled_at: null,
    failed_at: null,
    replaced_at: null,
    replaced_by: null,
    replaces,
    asset_id: randomUUID(),
    symbol,
    asset_class: 'us_equity',
    notional: notional === undefined ? null : String(notional),
    qty: qty === undefined ? null : String(qty),
    filled_qty: '0',
    filled_avg_price: null,
    order_class: '',
    order_type: type,
    type,
    side,
    time_in_force: tif,
    limit_price: limit_price === undefined ? null : String(limit_price),
    stop_price: stop_price === undefined ? null : String(stop_price),
    status: 'accepted',
    extended_hours: false,
    legs: null,
  };
}

const isAnswer = (value: Order | Answer): value is Answer => 'status' in value && typeof value.status === 'number';

function asset(symbol: string): Record<string, unknown> {
  return {
    id: randomUUID(),
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
  };
}

function position(symbol: string, qty: number): Record<string, unknown> {
  return {
    asset_id: randomUUID(),
    symbol,
    exchange: 'NASDAQ',
    asset_class: 'us_equity',
    qty: String(qty),
    side: qty >= 0 ? 'long' : 'short',
    avg_entry_price: '100',
    market_value: String(qty * 100),
    cost_basis: String(qty * 100),
    unrealized_pl: '0',
    current_price: '100',
  };
}

function closingOrder(symbol: string, qty: number): Order {
  return newOrder({
    symbol,
    qty: Math.abs(qty),
    side: qty >= 0 ? 'sell' : 'buy',
    type: 'market',
    time_in_force: 'day',
  }) as Order;
}

/** The trading API for one account; `order` ids and symbols come from the path. */
function trade(state: AccountState, options: AccountOptions, request: SeenRequest): Answer {
  const { method, path } = request;
  const query = new URLSearchParams(request.query);
  const parseBody = (): Record<string, unknown> | null => {
    try {
      const value = JSON.parse(request.body) as unknown;
      return typeof value === 'object' && value !== null && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : null;
    } catch {
      return null;
    }
  };
  const orderById = (id: string) => state.orders.find((o) => o.id === id);
  const segments = path.split('/').slice(1);
  const [version, resource, item, ...more] = segments;
  if (version !== 'v2' || more.length > 0) return { status: 404, body: { message: 'Not Found' } };

  if (resource === 'account' && method === 'GET') {
    if (item === undefined) {
      return { status: 200, body: accountBody(options.accountNumber ?? 'PA3ABCDEFGH1', options.status ?? 'ACTIVE') };
    }
    if (item === 'activities') return { status: 200, body: [] };
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
    if (item === undefined) return { status: 200, body: ['AAPL', 'MSFT', 'BRK.B'].map(asset) };
    return /^[A-Z.]{1,12}$/.test(item) ? { status: 200, body: asset(item) } : notFound(`asset not found for ${item}`);
  }
  if (resource === 'orders:by_client_order_id' && item === undefined && method === 'GET') {
    const order = state.orders.find((o) => o.client_order_id === query.get('client_order_id'));
    return order ? { status: 200, body: order } : notFound('order not found');
  }
  if (resource === 'orders') {
    if (item === undefined && method === 'GET') {
      const status = query.get('status') ?? 'open';
      const limit = Math.min(Number(query.get('limit') ?? 50), 500);
      const selected = state.orders.filter((o) =>
        status === 'all' ? true : status === 'open' ? OPEN.has(o.status) : !OPEN.has(o.status),
      );
      return { status: 200, body: selected.toReversed().slice(0, limit) };
    }
    if (item === undefined && method === 'POST') {
      const input = parseBody();
      if (!input) return unprocessable('request body format is invalid');
      if (state.orders.some((o) => o.client_order_id === input.client_order_id)) {
        return unprocessable('client_order_id must be unique');
      }
      const order = newOrder(input);
      if (isAnswer(order)) return order;
      state.orders.push(order);
      return { status: 200, body: order };
    }
    if (item === undefined && method === 'DELETE') {
      const open = state.orders.filter((o) => OPEN.has(o.status));
      for (const o of open) o.status = 'canceled';
      return { status: 207, body: open.map((o) => ({ id: o.id, status: 200 })) };
    }
    if (item !== undefined) {
      const order = orderById(item);
      if (!order) return notFound('order not found');
      if (method === 'GET') return { status: 200, body: order };
      if (method === 'DELETE') {
        if (!OPEN.has(order.status)) return unprocessable(`order is already in "${order.status}" state`);
        order.status = 'canceled';
        order.canceled_at = new Date().toISOString();
        return { status: 204 };
      }
      if (method === 'PATCH') {
        const changes = parseBody();
        if (!changes) return unprocessable('request body format is invalid');
        if (!OPEN.has(order.status)) return unprocessable(`order is already in "${order.status}" state`);
        const kept = {
          symbol: order.symbol,
          side: order.side,
          type: order.type,
          time_in_force: order.time_in_force,
          ...(order.qty !== null ? { qty: order.qty } : { notional: order.notional }),
        };
        const replacement = newOrder({ ...kept, ...changes }, order.id);
        if (isAnswer(replacement)) return replacement;
        order.status = 'replaced';
        order.replaced_by = replacement.id;
        state.orders.push(replacement);
        return { status: 200, body: replacement };
      }
    }
  }
  if (resource === 'positions') {
    if (item === undefined && method === 'GET') {
      return { status: 200, body: [...state.positions].map(([symbol, qty]) => position(symbol, qty)) };
    }
    if (item === undefined && method === 'DELETE') {
      const closed = [...state.positions].map(([symbol, qty]) => ({
        symbol,
        status: 200,
        body: closingOrder(symbol, qty),
      }));
      state.positions.clear();
      return { status: 207, body: closed };
    }
    if (item !== undefined) {
      const qty = state.positions.get(item);
      if (qty === undefined) return notFound('position does not exist');
      if (method === 'GET') return { status: 200, body: position(item, qty) };
      if (method === 'DELETE') {
        state.positions.delete(item);
        return { status: 200, body: closingOrder(item, qty) };
      }
    }
  }
  return { status: 404, body: { message: 'Not Found' } };
}

export async function startAlpacaStandIn(): Promise<AlpacaStandIn> {
  const keys = new Map<string, StandInBehaviour>();
  const accounts = new Map<string, AccountState>();
  const requests: SeenRequest[] = [];
  const hanging = new Set<http.ServerResponse>();
  const held: (() => void)[] = [];

  const stateOf = (apiKey: string, options: AccountOptions) => {
    let state = accounts.get(apiKey);
    if (!state) {
      state = { orders: [], positions: new Map((options.positions ?? []).map((p) => [p.symbol, p.qty])) };
      accounts.set(apiKey, state);
    }
    return state;
  };

  const server = http.createServer(async (req, res) => {
    const requestId = randomBytes(16).toString('hex');
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const [path = '/', ...query] = (req.url ?? '/').split('?');
    const seen: SeenRequest = {
      method: req.method ?? '',
      path,
      query: query.join('?'),
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      apiKey: header('apca-api-key-id'),
      secretKey: header('apca-api-secret-key'),
      requestId,
    };
    requests.push(seen);

    const headers = (extra: Record<string, string> = {}) => ({
      'x-request-id': requestId,
      'x-ratelimit-limit': String(RATE_LIMIT),
      'x-ratelimit-remaining': String(RATE_LIMIT - 1),
      'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 60),
      // Alpaca's edge sets a cookie; nothing like it may reach an engine.
      'set-cookie': 'stand_in_session=abc; Path=/; HttpOnly',
      'x-stand-in-private': 'not for engines',
      ...extra,
    });
    const send = (status: number, body?: unknown, extra: Record<string, string> = {}) => {
      if (status === 204 || body === undefined) {
        res.writeHead(status, headers(extra));
        res.end();
        return;
      }
      res.writeHead(status, headers({ 'content-type': 'application/json; charset=utf-8', ...extra }));
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const behaviour = seen.apiKey ? keys.get(seen.apiKey) : undefined;
    if (!behaviour) return send(401, UNAUTHORIZED);
    switch (behaviour.kind) {
      case 'account':
      case 'slow':
      case 'held': {
        if (seen.secretKey !== behaviour.secretKey) return send(401, UNAUTHORIZED);
        const answer = trade(stateOf(seen.apiKey as string, behaviour), behaviour, seen);
        if (behaviour.kind === 'slow') {
          setTimeout(() => send(answer.status, answer.body), behaviour.delayMs).unref();
          return;
        }
        if (behaviour.kind === 'held') {
          held.push(() => send(answer.status, answer.body));
          return;
        }
        return send(answer.status, answer.body);
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
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId });
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const release = () => {
    for (const res of hanging) res.socket?.destroy();
    hanging.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    setKey: (apiKey, behaviour) => {
      keys.set(apiKey, behaviour);
      // Positions given: the account starts over with them (orders are kept).
      const positions = 'positions' in behaviour ? behaviour.positions : undefined;
      const state = accounts.get(apiKey);
      if (positions && state) state.positions = new Map(positions.map((p) => [p.symbol, p.qty]));
    },
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
  /** ALPACA_PAPER_URL and ALPACA_LIVE_URL for a server under test. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** One stand-in per environment, as Alpaca has (paper and live know different keys). */
export async function startAlpacaStandIns(): Promise<AlpacaStandIns> {
  const [paper, live] = await Promise.all([startAlpacaStandIn(), startAlpacaStandIn()]);
  return {
    paper,
    live,
    env: { ALPACA_PAPER_URL: paper.url, ALPACA_LIVE_URL: live.url },
    close: async () => {
      await Promise.all([paper.close(), live.close()]);
    },
  };
}
