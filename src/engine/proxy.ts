// METHOD /engine/v1/credentials/{credentialId}/alpaca/{path}: one engine
// request forwarded to Alpaca with the credential's keys, and the dry run of
// an order (POST .../orders:check). docs/engines.md says what an engine sees;
// docs/architecture/engine-proxy.md how and why.
//
// A request no guardrail checks (reads, cancelling one order, closing one
// position) costs one statement before it is forwarded: admit() checks the
// token, grant, scope and credential, takes the rate point and writes the
// ENGINE_REQUEST event, and commits. A request that could create exposure
// first gets the grant's limits and today's usage (authorize(), writing
// nothing), then the facts its rules need from Alpaca, with no transaction
// open, then the decision; a refusal is recorded (refuse()), an allowed order
// admitted with its counts against the limits it was checked under. If they
// changed meanwhile (a kill switch, new keys), it is checked again.
//
// No database connection is held while Alpaca answers. Once Alpaca's status
// is in, it is recorded beside the event (with a refused order's counts given
// back) while the answer streams to the engine; the engine's answer ends once
// that is committed, so what it reads next in the trail includes it. A
// timed-out request is never retried (its fate is unknown, and the 504 says
// how to find out); its counts stay.
import type http from 'node:http';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import type { AlpacaClient, ForwardResult } from '../brokers/alpaca.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { formatDecimal, ZERO } from '../domain/decimal.ts';
import type { AlpacaRoute } from '../domain/engine-routes.ts';
import type { GuardrailRefusal, OrderSummary } from '../domain/guardrail-checks.ts';
import { guardrailsFromJson } from '../domain/guardrails.ts';
import type { Logger } from '../logger.ts';
import {
  type Access,
  admit,
  authorize,
  type EngineCaller,
  keysOf,
  type OrderCount,
  recordResponse,
  refuse,
} from './admission.ts';
import { type EngineError, engineErrors } from './errors.ts';
import { type AssetCache, createFactReader } from './market-facts.ts';
import { type GuardOutcome, guard, isGuarded } from './order-guard.ts';

/** Largest body forwarded. */
export const ENGINE_BODY_LIMIT = 16 * 1024;

/** How often a request is checked again when the limits it was checked under changed meanwhile. */
const CHECK_ATTEMPTS = 3;

export interface ProxyDeps {
  db: Database;
  keyring: Keyring;
  alpaca: AlpacaClient;
  assets: AssetCache;
  /** ENGINE_RATE_LIMIT: forwarded (and refused) requests per credential per minute. */
  rateLimit: number;
  timeoutMs: number;
  logger: Logger;
}

export interface ProxyRequest {
  caller: EngineCaller;
  route: AlpacaRoute;
  /** The query string as sent, without "?". */
  query: string;
  /** The body as sent (already judged: JSON for POST and PATCH, none otherwise). */
  body: Buffer | null;
  contentType: string | undefined;
  accept: string | undefined;
}

/** What the API logs and counts of one request. */
export interface ProxyReport {
  clientId(clientId: string): void;
  refused(rule: string): void;
}

/** What the handler logs of a forwarded request. */
export interface Forwarded {
  status: number;
  requestId: string | null;
}

/** The error an access that is not 'ok' answers ('changed' and 'refused' are handled by the caller). */
export function accessError(
  access: Access,
  caller: EngineCaller,
  rateLimit: number,
  limited = 'requests are forwarded',
): EngineError {
  switch (access.outcome) {
    case 'unauthenticated':
      return engineErrors.unauthenticated();
    case 'not-found':
      return engineErrors.notFound();
    case 'insufficient-scope':
      return engineErrors.insufficientScope(caller.scope);
    case 'inactive':
      return engineErrors.credentialInactive();
    case 'not-verified':
      return engineErrors.credentialNotVerified();
    case 'rate-limited':
      return engineErrors.tooManyRequests(
        access.retryAfter,
        `At most ${rateLimit} ${limited} per credential per minute`,
      );
    default:
      return engineErrors.internal();
  }
}

/** The refusal of a daily cap found in the database when the order was counted. */
function dailyCapRefusal(access: Access, summary: OrderSummary | null): GuardrailRefusal {
  const rule = access.rule === 'maxDailyNotional' ? 'maxDailyNotional' : 'maxDailyOrders';
  const limit = access.ruleLimit ?? '';
  const value = access.ruleValue ?? '';
  const message =
    rule === 'maxDailyNotional'
      ? `Refused by the grant's guardrails: notional today would be ${value} USD, over maxDailyNotional ${limit} USD.`
      : `Refused by the grant's guardrails: this would be order ${value} today, over maxDailyOrders ${limit}.`;
  return { allowed: false, status: 403, code: 'GUARDRAIL_REFUSED', rule, limit, value, message, summary };
}

function guardrailError(refusal: Extract<GuardOutcome, { kind: 'refused' }>['refusal']): EngineError {
  return refusal.status === 403
    ? engineErrors.guardrail({
        status: 403,
        rule: refusal.rule,
        message: refusal.message,
        limit: refusal.limit,
        value: refusal.value,
      })
    : engineErrors.guardrail({ status: 503, rule: refusal.rule, message: refusal.message });
}

/** A body the checks cannot read: 400 naming the field. */
function unreadableError(outcome: Extract<GuardOutcome, { kind: 'unreadable' }>): EngineError {
  return engineErrors.badRequest(outcome.field === 'body' ? outcome.message : `${outcome.field}: ${outcome.message}`);
}

/**
 * The checks of a guarded request against the grant's limits, until they hold
 * for the limits and keys the admission finds (CHECK_ATTEMPTS times at most).
 * Resolves with the admitted access and its count, or throws the refusal.
 */
async function admitGuarded(
  deps: ProxyDeps,
  request: ProxyRequest,
  report: ProxyReport,
): Promise<{ access: Access; count: OrderCount | null }> {
  const { db, rateLimit } = deps;
  const { caller } = request;
  for (let attempt = 0; attempt < CHECK_ATTEMPTS; attempt++) {
    const found = await authorize(db, caller, { rateLimit, dryRun: false });
    if (found.clientId) report.clientId(found.clientId);
    if (found.outcome !== 'ok') throw accessError(found, caller, rateLimit);
    const outcome = await guardOf(deps, request, found);
    if (outcome.kind === 'unreadable') throw unreadableError(outcome);
    if (outcome.kind === 'no-such-order') throw engineErrors.noSuchOrder();
    const checked = { guardrailsVersion: found.guardrailsVersion ?? 0, secretsVersion: found.secretsVersion ?? 0 };
    if (outcome.kind === 'refused') {
      const { refusal } = outcome;
      const recorded = await refuse(db, caller, { rateLimit, checked, rule: refusal.rule, order: refusal.summary });
      if (recorded.outcome === 'changed') continue;
      if (recorded.outcome !== 'refused') throw accessError(recorded, caller, rateLimit);
      report.refused(refusal.rule);
      throw guardrailError(refusal);
    }
    const admitted = await admit(db, caller, { rateLimit, checked, order: outcome.summary, count: outcome.count });
    if (admitted.outcome === 'changed') continue;
    if (admitted.outcome === 'refused') {
      report.refused(admitted.rule ?? 'maxDailyOrders');
      throw guardrailError(dailyCapRefusal(admitted, outcome.summary));
    }
    if (admitted.outcome !== 'ok') throw accessError(admitted, caller, rateLimit);
    return {
      access: admitted,
      count: outcome.count.orders > 0 || outcome.count.notional.isPositive() ? outcome.count : null,
    };
  }
  throw engineErrors.changing();
}

/** The guard of one request, with the facts read through the credential's own keys (`estimate`: a dry run). */
function guardOf(deps: ProxyDeps, request: ProxyRequest, found: Access, estimate = false): Promise<GuardOutcome> {
  const { route } = request;
  const orderId = route.template === 'v2/orders/{id}' ? route.path.split('/')[2] : undefined;
  if (!found.guardrails || !found.usage || !found.environment) throw engineErrors.internal();
  return guard({
    request: route.request,
    ...(orderId ? { orderId } : {}),
    body: request.body,
    guardrails: guardrailsFromJson(found.guardrails),
    usage: found.usage,
    reader: createFactReader({
      alpaca: deps.alpaca,
      assets: deps.assets,
      environment: found.environment,
      keys: keysOf(deps.keyring, found, request.caller.credentialId),
      ...(orderId ? { replacedOrderId: orderId } : {}),
    }),
    estimate,
  });
}

/**
 * Checks, admits and forwards one request; resolves once Alpaca's answer has
 * been streamed to `res` (or throws an EngineError before anything was sent).
 */
export async function proxyRequest(
  deps: ProxyDeps,
  request: ProxyRequest,
  res: http.ServerResponse,
  report: ProxyReport,
): Promise<Forwarded> {
  const { db, rateLimit } = deps;
  const { caller, route } = request;
  let access: Access;
  let count: OrderCount | null = null;
  if (isGuarded(route.request)) {
    ({ access, count } = await admitGuarded(deps, request, report));
  } else {
    access = await admit(db, caller, { rateLimit });
    if (access.clientId) report.clientId(access.clientId);
    if (access.outcome !== 'ok') throw accessError(access, caller, rateLimit);
  }
  if (!access.environment) throw engineErrors.internal();

  const answer = await deps.alpaca.forward({
    environment: access.environment,
    keys: keysOf(deps.keyring, access, caller.credentialId),
    method: route.method,
    path: route.path,
    query: request.query,
    contentType: request.contentType,
    accept: request.accept,
    body: request.body ?? undefined,
    request: route.request,
  });
  if (answer.kind === 'timeout') throw engineErrors.brokerTimeout(deps.timeoutMs);
  if (answer.kind === 'connection') throw engineErrors.brokerUnreachable();
  await streamAnswer(deps, access, count, answer, res);
  return { status: answer.status, requestId: answer.requestId };
}

/** Streams Alpaca's answer to the engine while its status is recorded; ends it once that committed. */
async function streamAnswer(
  deps: ProxyDeps,
  access: Access,
  count: OrderCount | null,
  answer: Extract<ForwardResult, { kind: 'answered' }>,
  res: http.ServerResponse,
): Promise<void> {
  const recorded =
    access.eventId && access.userId && access.grantId && access.tradingDay
      ? recordResponse(deps.db, access.userId, {
          eventId: access.eventId,
          status: answer.status,
          brokerRequestId: answer.requestId,
          grantId: access.grantId,
          tradingDay: access.tradingDay,
          // Alpaca refused the order (4xx, 5xx): what it counted goes back.
          giveBack: answer.status >= 400 ? count : null,
        }).catch((error: unknown) => {
          // The answer still goes out: the event is in the trail, only its outcome is not.
          deps.logger.warn(
            { err: (error as Error).message },
            'could not record the broker answer of an engine request',
          );
        })
      : Promise.resolve();
  const { body } = answer;
  if (body && answer.length !== null && answer.length <= SMALL_ANSWER_BYTES) {
    // A small answer (most are) is read whole and sent in one write with its
    // headers; it cannot be larger than its Content-Length.
    const bytes = await readWhole(body);
    await recorded;
    if (!bytes) throw engineErrors.brokerTimeout(deps.timeoutMs);
    res.writeHead(answer.status, answer.headers);
    res.end(bytes);
    return;
  }
  res.writeHead(answer.status, answer.headers);
  if (body) {
    // Piped, never buffered whole. If Alpaca stalls past the deadline or the
    // engine goes away, both ends are closed: the status is already sent.
    await pipeline(body, res, { end: false }).catch(() => {
      res.destroy();
    });
  }
  await recorded;
  if (!res.destroyed) res.end();
}

/** Answers up to this size are read whole before they are sent on; larger ones stream. */
const SMALL_ANSWER_BYTES = 64 * 1024;

/** A body read to its end, or null when it failed before (the deadline passed, the connection broke). */
async function readWhole(body: Readable): Promise<Buffer | null> {
  return buffer(body).catch(() => null);
}

/** POST .../orders:check: what the real order would get, with nothing forwarded, counted or written. */
export async function checkOrderRequest(
  deps: ProxyDeps,
  caller: EngineCaller,
  body: Buffer,
  report: ProxyReport,
): Promise<Record<string, unknown>> {
  const found = await authorize(deps.db, caller, { rateLimit: deps.rateLimit, dryRun: true });
  if (found.clientId) report.clientId(found.clientId);
  if (found.outcome !== 'ok') throw accessError(found, caller, deps.rateLimit, 'dry runs are answered');
  const outcome = await guardOf(
    deps,
    {
      caller,
      route: { method: 'POST', template: 'v2/orders', path: 'v2/orders', scope: 'TRADE', request: 'POST /v2/orders' },
      query: '',
      body,
      contentType: undefined,
      accept: undefined,
    },
    found,
    true,
  );
  if (outcome.kind === 'unreadable') throw unreadableError(outcome);
  if (outcome.kind === 'no-such-order') throw engineErrors.noSuchOrder();
  if (outcome.kind === 'refused') throw guardrailError(outcome.refusal);
  const decision = outcome.decision;
  const usage = found.usage;
  return {
    allowed: true,
    estimatedNotional:
      decision?.allowed && decision.estimatedNotional ? formatDecimal(decision.estimatedNotional) : null,
    referencePrice: decision?.allowed && decision.referencePrice ? formatDecimal(decision.referencePrice) : null,
    usageToday: {
      tradingDay: found.tradingDay,
      orders: usage?.orders ?? 0,
      notional: formatDecimal(usage?.notional ?? ZERO),
    },
  };
}
