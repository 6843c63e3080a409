// The Alpaca client: the one place where the server talks to Alpaca.
//
// One call is needed: GET <base>/v2/account with the key headers. It is made
// with Node's own fetch (undici) rather than the official
// @alpacahq/alpaca-trade-api because:
// - the SDK is a trading client bound to one key pair and environment per
//   instance, and brings websocket streaming, msgpack and lossless-json
//   (ws, @msgpack/msgpack, lossless-json) for a single GET we do not need;
// - we need the raw answer to map it ourselves (401/403 vs 429 vs 5xx vs an
//   unreadable body, the X-Request-ID header), a hard deadline covering the
//   body too (AbortSignal.timeout), and a log line we control that can never
//   carry a key; the SDK would still need all of that around it.
// Every outbound broker call goes through `call` below, so metrics
// (broker_requests_total{environment,outcome}) and a tracing span around it
// are a few lines there.
import type { BrokerAnswer, BrokerEnvironment } from '../domain/verification.ts';
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

  return {
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
