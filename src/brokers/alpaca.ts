// The Alpaca client: the one place where the server talks to Alpaca. It owns
// the hosts (the configured paper and live base URLs, chosen by environment
// only), the deadline (BROKER_TIMEOUT_MS), the header rules both ways and the
// log line of every outbound call. Two kinds of call:
//
// - account(): GET <base>/v2/account for verification (docs/verification.md);
// - forward(): an engine's request (docs/engines.md), already matched to
//   an allowed path template by src/domain/engine-routes.ts, sent once (never
//   retried) with the keys added and only content-type and accept of the
//   engine's headers; redirects are not followed; the answer's status and
//   body stream back with content-type, x-request-id and x-ratelimit-* only.
//
// Made with Node's own fetch (undici) rather than the official
// @alpacahq/alpaca-trade-api because:
// - the SDK is a trading client bound to one key pair and environment per
//   instance, and brings websocket streaming, msgpack and lossless-json
//   (ws, @msgpack/msgpack, lossless-json) we do not need; a forwarder must
//   pass bytes through, not re-encode what the SDK parsed;
// - we need the raw answer to map it ourselves (401/403 vs 429 vs 5xx vs an
//   unreadable body, the X-Request-ID header), a hard deadline covering the
//   body too (AbortSignal.timeout), and a log line we control that can never
//   carry a key; the SDK would still need all of that around it.
// Every outbound broker call goes through telemetry.brokerRequest, so
// broker_requests_total{environment,outcome} and a broker.request span cover
// both kinds.
import { type BrokerAnswer, type BrokerEnvironment, fitsInHeader } from '../domain/verification.ts';
import type { Logger } from '../logger.ts';
import { type BrokerOutcome, noTelemetry, type Telemetry } from '../telemetry/telemetry.ts';

export interface AlpacaOptions {
  paperUrl: string;
  liveUrl: string;
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
      /** Alpaca's content-type, x-request-id and x-ratelimit-* headers, and no other. */
      headers: Record<string, string>;
      /** The body, still arriving; it errors if the deadline passes before it ends. */
      body: ReadableStream<Uint8Array> | null;
      requestId: string | null;
    }
  /** No answer within timeoutMs: for a write, its fate is unknown. */
  | { kind: 'timeout' }
  /** No connection (refused, reset before an answer, DNS). */
  | { kind: 'connection' };

/** The response headers an engine gets from Alpaca; every other one is dropped. */
export function passedResponseHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === 'content-type' || lower === 'x-request-id' || lower.startsWith('x-ratelimit-');
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

async function answerOf(response: Response): Promise<BrokerAnswer> {
  const { status } = response;
  if (status === 200) {
    // A body that stops arriving rejects here at the deadline (a timeout).
    const text = await response.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // unreadable: handled below
    }
    const account = accountOf(body);
    return account
      ? { kind: 'accepted', ...account }
      : { kind: 'unreachable', reason: 'unreadable', httpStatus: status };
  }
  // The body is not needed (Alpaca's error bodies say only "request is not
  // authorized" and the like); drain it so the connection can be reused.
  await response.body?.cancel().catch(() => {});
  if (status === 401 || status === 403) return { kind: 'rejected', httpStatus: status };
  if (status === 429) return { kind: 'unreachable', reason: 'rate-limited', httpStatus: status };
  if (status >= 500) return { kind: 'unreachable', reason: 'server-error', httpStatus: status };
  return { kind: 'unreachable', reason: 'unexpected', httpStatus: status };
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

const OUTCOMES: Record<BrokerAnswer['kind'], BrokerOutcome> = {
  accepted: 'verified',
  rejected: 'invalid',
  unreachable: 'unreachable',
};

export function createAlpacaClient({
  paperUrl,
  liveUrl,
  timeoutMs,
  logger,
  telemetry = noTelemetry,
}: AlpacaOptions): AlpacaClient {
  const base: Record<BrokerEnvironment, string> = { PAPER: paperUrl, LIVE: liveUrl };
  const log = logger.child({ component: 'broker', broker: 'alpaca' });

  async function call(environment: BrokerEnvironment, keys: AlpacaKeys): Promise<BrokerAnswer> {
    const started = performance.now();
    let httpStatus: number | undefined;
    let requestId: string | undefined;
    let answer: BrokerAnswer;
    try {
      // One deadline for connecting, the headers and the body alike.
      const response = await fetch(`${base[environment]}/v2/account`, {
        headers: { 'APCA-API-KEY-ID': keys.apiKey, 'APCA-API-SECRET-KEY': keys.secretKey, accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
      httpStatus = response.status;
      requestId = response.headers.get('x-request-id') ?? undefined;
      answer = await answerOf(response);
    } catch (error) {
      answer = { kind: 'unreachable', reason: isTimeout(error) ? 'timeout' : 'connection' };
    }
    // Never the keys, the URL's query or an error message (fetch's can quote headers).
    log.info(
      {
        environment: environment.toLowerCase(),
        status: httpStatus ?? null,
        outcome: answer.kind === 'unreachable' ? answer.reason : answer.kind,
        durationMs: Math.round(performance.now() - started),
        requestId: requestId?.slice(0, 100) ?? null,
      },
      'broker call',
    );
    return answer;
  }

  async function send(request: ForwardRequest): Promise<ForwardResult> {
    const { environment, keys } = request;
    const started = performance.now();
    let result: ForwardResult;
    // Keys that cannot travel in a header were never verified; never hand them to fetch (its error quotes them).
    if (!fitsInHeader(keys.apiKey) || !fitsInHeader(keys.secretKey)) {
      result = { kind: 'connection' };
    } else {
      try {
        const headers: Record<string, string> = {
          'APCA-API-KEY-ID': keys.apiKey,
          'APCA-API-SECRET-KEY': keys.secretKey,
        };
        if (request.contentType) headers['content-type'] = request.contentType;
        if (request.accept) headers.accept = request.accept;
        const url = `${base[environment]}/${request.path}${request.query ? `?${request.query}` : ''}`;
        const response = await fetch(url, {
          method: request.method,
          headers,
          ...(request.body ? { body: new Uint8Array(request.body) } : {}),
          // A 3xx comes back as it is; its Location is not passed on either.
          redirect: 'manual',
          // One deadline for connecting, the headers and the whole body.
          signal: AbortSignal.timeout(timeoutMs),
        });
        const passed: Record<string, string> = {};
        response.headers.forEach((value, name) => {
          if (passedResponseHeader(name)) passed[name] = value;
        });
        result = {
          kind: 'answered',
          status: response.status,
          headers: passed,
          body: response.body,
          requestId: response.headers.get('x-request-id')?.slice(0, 100) ?? null,
        };
      } catch (error) {
        result = { kind: isTimeout(error) ? 'timeout' : 'connection' };
      }
    }
    log.info(
      {
        environment: environment.toLowerCase(),
        request: request.request,
        status: result.kind === 'answered' ? result.status : null,
        outcome: result.kind,
        durationMs: Math.round(performance.now() - started),
        requestId: result.kind === 'answered' ? result.requestId : null,
      },
      'broker call',
    );
    return result;
  }

  return {
    forward: (request) =>
      telemetry.brokerRequest(request.environment === 'PAPER' ? 'paper' : 'live', async (observed) => {
        const result = await send(request);
        if (result.kind === 'answered') {
          observed.httpStatus(result.status);
          observed.outcome('forwarded');
        } else observed.outcome('unreachable');
        return result;
      }),
    account: (environment, keys) =>
      telemetry.brokerRequest(environment === 'PAPER' ? 'paper' : 'live', async (observed) => {
        const answer = await call(environment, keys);
        // Only a 200 is accepted; the other answers carry their status (none when nothing answered).
        const status = answer.kind === 'accepted' ? 200 : answer.httpStatus;
        if (status !== undefined) observed.httpStatus(status);
        observed.outcome(OUTCOMES[answer.kind]);
        return answer;
      }),
  };
}
