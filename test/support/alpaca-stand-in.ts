// THE ONE MOCK of this test suite: a stand-in for Alpaca's Trading API, which
// cannot be reached from here (no internet). Everything else in the tests is
// real (server, database, HTTP). It answers GET /v2/account as Alpaca
// documents it: keys in the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers,
// 200 with an account object for keys valid in this environment, 401
// {"code":40110000,"message":"request is not authorized"} otherwise, and an
// X-Request-ID header on every answer. Paper and live are separate servers
// with separate keys, as at Alpaca: run one of each (startAlpacaStandIns)
// and point ALPACA_PAPER_URL / ALPACA_LIVE_URL at them.
//
// Per API key, a test can make it misbehave in the ways the real one may:
// any status (5xx, 429, 403), a hang before or after the headers, a body that
// is not JSON or not an account, a connection reset.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type StandInBehaviour =
  /** Valid keys here: 200 with an account (when the secret matches). */
  | { kind: 'account'; secretKey: string; accountNumber?: string; status?: string }
  | { kind: 'status'; status: number }
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
  /** Ends every hanging request by destroying its connection. */
  release(): void;
  close(): Promise<void>;
}

const UNAUTHORIZED = JSON.stringify({ code: 40110000, message: 'request is not authorized' });

function accountBody(accountNumber: string, status: string): string {
  return JSON.stringify({
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
  });
}

export async function startAlpacaStandIn(): Promise<AlpacaStandIn> {
  const keys = new Map<string, StandInBehaviour>();
  const requests: SeenRequest[] = [];
  const hanging = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    const requestId = randomBytes(16).toString('hex');
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const apiKey = header('apca-api-key-id');
    const secretKey = header('apca-api-secret-key');
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
    requests.push({ method: req.method ?? '', path, apiKey, secretKey, requestId });

    const send = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId });
      res.end(body);
    };
    if (req.method !== 'GET' || path !== '/v2/account') return send(404, JSON.stringify({ message: 'Not Found' }));
    const behaviour = apiKey ? keys.get(apiKey) : undefined;
    if (!behaviour) return send(401, UNAUTHORIZED);
    switch (behaviour.kind) {
      case 'account':
        if (secretKey !== behaviour.secretKey) return send(401, UNAUTHORIZED);
        return send(200, accountBody(behaviour.accountNumber ?? 'PA3ABCDEFGH1', behaviour.status ?? 'ACTIVE'));
      case 'status':
        return send(
          behaviour.status,
          behaviour.status === 401 || behaviour.status === 403
            ? UNAUTHORIZED
            : JSON.stringify({ message: `stand-in status ${behaviour.status}` }),
        );
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
    setKey: (apiKey, behaviour) => keys.set(apiKey, behaviour),
    requests,
    get hanging() {
      return hanging.size;
    },
    release,
    close: async () => {
      release();
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
