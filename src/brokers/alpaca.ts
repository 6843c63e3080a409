// The Alpaca client: the one place where the server talks to Alpaca. It owns
// the hosts (the configured paper, live and market-data base URLs, chosen by
// environment only), the deadline (BROKER_TIMEOUT_MS, covering connect,
// headers and body), the header rules both ways and the log line of every
// outbound call. Three kinds of call:
//
// - account(): GET <base>/v2/account for verification (docs/verification.md);
// - forward(): an engine's request (docs/engines.md), already matched to an
//   allowed path template by src/domain/engine-routes.ts, sent once (never
//   retried) with the keys added and only content-type and accept of the
//   engine's headers; redirects are not followed; the answer's status and
//   bytes stream back with content-type, content-encoding, x-request-id and
//   x-ratelimit-* only;
// - read(): a read the guardrail checks need (an asset, a position, open
//   orders, an order, a latest quote or trade), answered as text.
//
// Made with undici's request() on one keep-alive connection pool rather than
// the global fetch or the official @alpacahq/alpaca-trade-api because:
// - fetch inflates a compressed answer whatever the request asked for (it
//   cannot be turned off), adds headers of its own, and costs two to three
//   times the CPU per request; request() passes bytes through as they came;
// - the SDK is a trading client bound to one key pair per instance, with
//   websocket streaming and re-encoding we do not need: a forwarder passes
//   bytes through, and we need the raw answer (status, X-Request-ID) and a
//   log line we control that can never carry a key.
// Every outbound call goes through telemetry.brokerRequest, so
// broker_requests_total{environment,outcome} and a broker.request span cover
// all three kinds.
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';
import { type BrokerAnswer, type BrokerEnvironment, fitsInHeader } from '../domain/verification.ts';
import type { Logger } from '../logger.ts';
import { type BrokerOutcome, noTelemetry, type Telemetry } from '../telemetry/telemetry.ts';

export interface AlpacaOptions {
  paperUrl: string;
  liveUrl: string;
  /** Market data (quotes, trades): one host for paper and live keys alike. */
  dataUrl: string;
  timeoutMs: number;
  logger: Logger;
  /** broker_requests_total and the broker.request span (src/telemetry); none by default. */
  telemetry?: Pick<Telemetry, 'brokerRequest'>;
}

export interface AlpacaKeys {
  apiKey: string;
  secretKey: string;
}

export interface AlpacaClient {
  /** GET /v2/account in one environment, mapped to what it means for verification. */
  account(environment: BrokerEnvironment, keys: AlpacaKeys): Promise<BrokerAnswer>;
  /** Sends one engine request, once; resolves when Alpaca's status and headers arrived (or it failed). */
  forward(request: ForwardRequest): Promise<ForwardResult>;
  /** One read for the guardrail checks; resolves once the whole answer arrived (or it failed). */
  read(request: ReadRequest): Promise<ReadResult>;
  /** Closes the kept-alive connections (shutdown). */
  close(): Promise<void>;
}

/** An engine request to send, already checked against the allowed routes. */
export interface ForwardRequest {
  environment: BrokerEnvironment;
  keys: AlpacaKeys;
  method: string;
  /** The Alpaca path as matched, without its leading slash: "v2/orders/<id>". */
  path: string;
  /** The query string as the engine sent it, without "?" ('' for none). */
  query: string;
  /** The engine's content-type and accept, the only headers of its own that travel. */
  contentType?: string | undefined;
  accept?: string | undefined;
  body?: Buffer | undefined;
  /** "METHOD /template" for the log line (never the path's values or the query). */
  request: string;
}

export type ForwardResult =
  | {
      kind: 'answered';
      status: number;
      /** Alpaca's content-type, content-encoding, x-request-id and x-ratelimit-* headers, and no other. */
      headers: Record<string, string>;
      /** The body as it arrives, never decoded; it errors if the deadline passes before it ends. */
      body: Readable | null;
      /** Its Content-Length, when Alpaca sent one. */
      length: number | null;
      requestId: string | null;
    }
  /** No answer within timeoutMs: for a write, its fate is unknown. */
  | { kind: 'timeout' }
  /** No connection (refused, reset before an answer, DNS). */
  | { kind: 'connection' };

/** A GET the guardrail checks need: on the trading host of `environment`, or on the market-data host. */
export interface ReadRequest {
  environment: BrokerEnvironment;
  host: 'trading' | 'data';
  keys: AlpacaKeys;
  /** Path without its leading slash, values already encoded: "v2/positions/AAPL". */
  path: string;
  query?: string;
  /** "GET /v2/positions/{symbol}" for the log line. */
  request: string;
}

export type ReadResult =
  | { kind: 'answered'; status: number; text: string }
  | { kind: 'timeout' }
  | { kind: 'connection' }
  /** Larger than a read may be (READ_LIMIT): not kept. */
  | { kind: 'too-large' };

/** The most a read's answer may hold: 500 nested orders stay well under it. */
const READ_LIMIT = 8 * 1024 * 1024;

/** The response headers an engine gets from Alpaca; every other one is dropped. */
export function passedResponseHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower === 'content-type' ||
    lower === 'content-encoding' ||
    lower === 'x-request-id' ||
    lower.startsWith('x-ratelimit-')
  );
}

/** Reads the account fields verification stores; anything else is unreadable. */
function accountOf(body: unknown): { accountNumber: string; accountStatus: string } | null {
  if (typeof body !== 'object' || body === null) return null;
  const { account_number: accountNumber, status } = body as Record<string, unknown>;
  if (typeof accountNumber !== 'string' || accountNumber === '' || typeof status !== 'string' || status === '') {
    return null;
  }
  return { accountNumber, accountStatus: status };
}

function verificationAnswer(status: number, text: string | null): BrokerAnswer {
  if (status === 200) {
    let body: unknown = null;
    try {
      body = JSON.parse(text ?? '');
    } catch {
      // unreadable: handled below
    }
    const account = accountOf(body);
    return account
      ? { kind: 'accepted', ...account }
      : { kind: 'unreachable', reason: 'unreadable', httpStatus: status };
  }
  if (status === 401 || status === 403) return { kind: 'rejected', httpStatus: status };
  if (status === 429) return { kind: 'unreachable', reason: 'rate-limited', httpStatus: status };
  if (status >= 500) return { kind: 'unreachable', reason: 'server-error', httpStatus: status };
  return { kind: 'unreachable', reason: 'unexpected', httpStatus: status };
}

const OUTCOMES: Record<BrokerAnswer['kind'], BrokerOutcome> = {
  accepted: 'verified',
  rejected: 'invalid',
  unreachable: 'unreachable',
};

const single = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/** Reads a body to the end as UTF-8, giving up (and discarding it) past `limit` bytes. */
async function readText(body: Readable, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      return null;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

type Sent = {
  kind: 'answered';
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
};

export function createAlpacaClient({
  paperUrl,
  liveUrl,
  dataUrl,
  timeoutMs,
  logger,
  telemetry = noTelemetry,
}: AlpacaOptions): AlpacaClient {
  const trading: Record<BrokerEnvironment, string> = { PAPER: paperUrl, LIVE: liveUrl };
  const log = logger.child({ component: 'broker', broker: 'alpaca' });
  // One pool for every host, connections kept alive between requests (an
  // order should not pay a TLS handshake). A per-origin bound keeps a burst
  // of engine requests from opening unbounded sockets.
  const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });

  /** The request, once, under one deadline for connect, headers and body (the body's stream errors past it). */
  async function send(
    url: string,
    options: { method: string; headers: Record<string, string>; body?: Buffer | undefined },
  ): Promise<Sent | { kind: 'timeout' } | { kind: 'connection' }> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const response = await request(url, {
        method: options.method as 'GET',
        headers: options.headers,
        ...(options.body ? { body: options.body } : {}),
        dispatcher: agent,
        signal,
      });
      return { kind: 'answered', status: response.statusCode, headers: response.headers, body: response.body };
    } catch {
      // Never the error itself in a log or an answer: it can quote the request.
      return signal.aborted ? { kind: 'timeout' } : { kind: 'connection' };
    }
  }

  /** The keys as headers, and compression refused: answers pass through as sent, never inflated here. */
  const keyHeaders = (keys: AlpacaKeys): Record<string, string> => ({
    'APCA-API-KEY-ID': keys.apiKey,
    'APCA-API-SECRET-KEY': keys.secretKey,
    'accept-encoding': 'identity',
  });

  /** Keys that cannot travel in a header were never verified; they are never handed to the client (its error quotes them). */
  const sendable = (keys: AlpacaKeys) => fitsInHeader(keys.apiKey) && fitsInHeader(keys.secretKey);

  function logCall(fields: {
    environment: BrokerEnvironment;
    request: string;
    status: number | null;
    outcome: string;
    started: number;
    requestId: string | null;
    host?: 'data';
  }): void {
    // Never the keys, the URL's values or query, or an error message.
    log.info(
      {
        environment: fields.environment.toLowerCase(),
        ...(fields.host ? { host: fields.host } : {}),
        request: fields.request,
        status: fields.status,
        outcome: fields.outcome,
        durationMs: Math.round(performance.now() - fields.started),
        requestId: fields.requestId,
      },
      'broker call',
    );
  }

  const requestIdOf = (headers: Record<string, string | string[] | undefined>) =>
    single(headers['x-request-id'])?.slice(0, 100) ?? null;

  async function verify(environment: BrokerEnvironment, keys: AlpacaKeys): Promise<BrokerAnswer> {
    const started = performance.now();
    let answer: BrokerAnswer;
    let status: number | null = null;
    let requestId: string | null = null;
    const sent = sendable(keys)
      ? await send(`${trading[environment]}/v2/account`, {
          method: 'GET',
          headers: { ...keyHeaders(keys), accept: 'application/json' },
        })
      : ({ kind: 'connection' } as const);
    if (sent.kind !== 'answered') {
      answer = { kind: 'unreachable', reason: sent.kind };
    } else {
      status = sent.status;
      requestId = requestIdOf(sent.headers);
      if (status === 200) {
        // A body that stops arriving errors at the deadline: a timeout.
        const text = await readText(sent.body, READ_LIMIT).catch(() => undefined);
        answer = text === undefined ? { kind: 'unreachable', reason: 'timeout' } : verificationAnswer(status, text);
      } else {
        // Alpaca's error bodies say only "request is not authorized" and the like: drained, not read.
        await sent.body.dump().catch(() => {});
        answer = verificationAnswer(status, null);
      }
    }
    logCall({
      environment,
      request: 'GET /v2/account',
      status,
      outcome: answer.kind === 'unreachable' ? answer.reason : answer.kind,
      started,
      requestId,
    });
    return answer;
  }

  async function forward(req: ForwardRequest): Promise<ForwardResult> {
    const started = performance.now();
    let result: ForwardResult;
    if (!sendable(req.keys)) {
      result = { kind: 'connection' };
    } else {
      const headers = keyHeaders(req.keys);
      if (req.contentType) headers['content-type'] = req.contentType;
      if (req.accept) headers.accept = req.accept;
      const url = `${trading[req.environment]}/${req.path}${req.query ? `?${req.query}` : ''}`;
      const sent = await send(url, { method: req.method, headers, body: req.body });
      if (sent.kind !== 'answered') {
        result = sent;
      } else {
        const passed: Record<string, string> = {};
        for (const [name, value] of Object.entries(sent.headers)) {
          const one = single(value);
          if (one !== undefined && passedResponseHeader(name)) passed[name] = one;
        }
        const length = single(sent.headers['content-length']);
        result = {
          kind: 'answered',
          status: sent.status,
          headers: passed,
          body: sent.body,
          length: length && /^\d+$/.test(length) ? Number(length) : null,
          requestId: requestIdOf(sent.headers),
        };
      }
    }
    logCall({
      environment: req.environment,
      request: req.request,
      status: result.kind === 'answered' ? result.status : null,
      outcome: result.kind,
      started,
      requestId: result.kind === 'answered' ? result.requestId : null,
    });
    return result;
  }

  async function read(req: ReadRequest): Promise<ReadResult> {
    const started = performance.now();
    let result: ReadResult;
    let requestId: string | null = null;
    if (!sendable(req.keys)) {
      result = { kind: 'connection' };
    } else {
      const base = req.host === 'data' ? dataUrl : trading[req.environment];
      const url = `${base}/${req.path}${req.query ? `?${req.query}` : ''}`;
      const sent = await send(url, {
        method: 'GET',
        headers: { ...keyHeaders(req.keys), accept: 'application/json' },
      });
      if (sent.kind !== 'answered') {
        result = sent;
      } else {
        requestId = requestIdOf(sent.headers);
        const encoded = single(sent.headers['content-encoding']);
        const text =
          encoded && encoded !== 'identity'
            ? // Asked for identity; an answer encoded anyway cannot be read as text.
              await sent.body.dump().then(() => null)
            : await readText(sent.body, READ_LIMIT).catch(() => undefined);
        result =
          text === undefined
            ? { kind: 'timeout' }
            : text === null
              ? { kind: 'too-large' }
              : { kind: 'answered', status: sent.status, text };
      }
    }
    logCall({
      environment: req.environment,
      ...(req.host === 'data' ? { host: 'data' as const } : {}),
      request: req.request,
      status: result.kind === 'answered' ? result.status : null,
      outcome: result.kind,
      started,
      requestId,
    });
    return result;
  }

  const label = (environment: BrokerEnvironment) => (environment === 'PAPER' ? 'paper' : 'live');

  return {
    forward: (req) =>
      telemetry.brokerRequest(label(req.environment), async (observed) => {
        const result = await forward(req);
        if (result.kind === 'answered') {
          observed.httpStatus(result.status);
          observed.outcome('forwarded');
        } else observed.outcome('unreachable');
        return result;
      }),
    read: (req) =>
      telemetry.brokerRequest(label(req.environment), async (observed) => {
        const result = await read(req);
        if (result.kind === 'answered') {
          observed.httpStatus(result.status);
          observed.outcome('read');
        } else observed.outcome('unreachable');
        return result;
      }),
    account: (environment, keys) =>
      telemetry.brokerRequest(label(environment), async (observed) => {
        const answer = await verify(environment, keys);
        // Only a 200 is accepted; the other answers carry their status (none when nothing answered).
        const status = answer.kind === 'accepted' ? 200 : answer.httpStatus;
        if (status !== undefined) observed.httpStatus(status);
        observed.outcome(OUTCOMES[answer.kind]);
        return answer;
      }),
    close: () => agent.close(),
  };
}
