// What an engine request may do, and its bookkeeping: thin calls of the SQL
// functions of prisma/migrations/20261207000100_engine_admission, each one
// statement that is its request transaction by itself, sent with its scope in
// one message (Database.inOneMessage: one round trip). It starts scoped to no
// one; the functions move the scope along token → client → grant → owner
// themselves, under the request role's policies. Why it is safe, and what a revocation or
// a change of limits racing a request sees: docs/architecture/engine-proxy.md.
//
//   authorize      read only: the grant, its limits, today's usage, the keys
//   admit          checks again, takes the rate point, counts an order,
//                  writes ENGINE_REQUEST (or ENGINE_REFUSED for a daily cap)
//   refuse         checks again, takes the rate point, writes ENGINE_REFUSED
//   recordResponse Alpaca's status beside the event; a refused order's counts back
import { openSecrets, type Secrets } from '../crypto/credential-sealing.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import { sqlText, statement } from '../db/request-transaction.ts';
import { Decimal, formatDecimal, ZERO } from '../domain/decimal.ts';
import type { EngineScope } from '../domain/engine-grants.ts';
import type { GuardrailsJson } from '../domain/guardrails.ts';
import { BROKER_ENVIRONMENTS, type BrokerEnvironment } from '../domain/verification.ts';
import type { RequestOrigin } from '../services/credential-events.ts';

/** 'ok', or the first reason the request cannot go on, in the order the API reports them. */
export type AccessOutcome =
  | 'ok'
  | 'unauthenticated'
  | 'not-found'
  | 'insufficient-scope'
  | 'inactive'
  | 'not-verified'
  /** The grant's limits or the credential's keys changed since they were checked: check again. */
  | 'changed'
  | 'rate-limited'
  /** Refused by a rule (a daily cap decided in the database, or the caller's guardrail decision). */
  | 'refused';

export interface Access {
  outcome: AccessOutcome;
  /** Seconds until the rate limit's window ends ('rate-limited'). */
  retryAfter: number;
  /** 'refused' by a daily cap: its rule, limit and the value it would have reached. */
  rule: string | null;
  ruleLimit: string | null;
  ruleValue: string | null;
  /** The client the token authenticates (null: 'unauthenticated'). */
  clientId: string | null;
  grantId: string | null;
  userId: string | null;
  environment: BrokerEnvironment | null;
  guardrails: GuardrailsJson | null;
  guardrailsVersion: number | null;
  secretsVersion: number | null;
  /** The trading day the counts are taken on ('YYYY-MM-DD', America/New_York). */
  tradingDay: string | null;
  /** Today's usage of the grant (authorize; admit after counting). */
  usage: { orders: number; notional: Decimal } | null;
  /** The event written (admit, refuse). */
  eventId: string | null;
  /** The sealed keys, opened only by keysOf. */
  readonly sealed: SealedRow | null;
}

interface SealedRow {
  keyId: string;
  apiKeyCiphertext: Uint8Array<ArrayBuffer>;
  secretKeyCiphertext: Uint8Array<ArrayBuffer>;
}

/** Who asks, for what, from where: the same for every function of one request. */
export interface EngineCaller {
  /** SHA-256 of the bearer token (src/engine/clients.ts). */
  tokenHash: string;
  /** The credential id in its canonical (lower-case) form. */
  credentialId: string;
  scope: EngineScope;
  /** "METHOD /template". */
  request: string;
  origin: RequestOrigin;
}

/** What a function's row holds, as Prisma's raw query returns it. */
interface AccessRow {
  outcome: AccessOutcome;
  retry_after: number | null;
  rule: string | null;
  rule_limit: string | null;
  rule_value: string | null;
  client_id: string | null;
  grant_id: string | null;
  user_id: string | null;
  environment: string | null;
  key_id: string | null;
  secrets_version: number | null;
  /** A Buffer (PostgreSQL) or a Uint8Array (PGlite). */
  api_key_ciphertext: Uint8Array<ArrayBuffer> | null;
  secret_key_ciphertext: Uint8Array<ArrayBuffer> | null;
  guardrails: GuardrailsJson | null;
  guardrails_version: number | null;
  trading_day: string | null;
  usage_orders: number | null;
  usage_notional: string | null;
  event_id: string | null;
}

/** The columns of engine_access, those whose parsing differs between the two drivers as text. */
const ACCESS = sqlText(
  'outcome, retry_after, rule, rule_limit, rule_value, client_id, grant_id::text AS grant_id, user_id, ' +
    'environment, key_id, secrets_version, api_key_ciphertext, secret_key_ciphertext, guardrails, ' +
    'guardrails_version, trading_day::text AS trading_day, usage_orders, usage_notional::text AS usage_notional, ' +
    'event_id::text AS event_id',
);

function accessOf(row: AccessRow | undefined): Access {
  if (!row) throw new Error('an engine admission function returned no row');
  const sealed =
    row.key_id && row.api_key_ciphertext && row.secret_key_ciphertext
      ? { keyId: row.key_id, apiKeyCiphertext: row.api_key_ciphertext, secretKeyCiphertext: row.secret_key_ciphertext }
      : null;
  return {
    outcome: row.outcome,
    retryAfter: row.retry_after ?? 0,
    rule: row.rule,
    ruleLimit: row.rule_limit,
    ruleValue: row.rule_value,
    clientId: row.client_id,
    grantId: row.grant_id,
    userId: row.user_id,
    environment: BROKER_ENVIRONMENTS.find((e) => e === row.environment) ?? null,
    guardrails: row.guardrails,
    guardrailsVersion: row.guardrails_version,
    secretsVersion: row.secrets_version,
    tradingDay: row.trading_day,
    usage:
      row.usage_orders === null
        ? null
        : {
            orders: row.usage_orders,
            notional: row.usage_notional === null ? ZERO : new Decimal(row.usage_notional),
          },
    eventId: row.event_id,
    sealed,
  };
}

/** The credential's keys, opened: only for an 'ok' access, right before they are sent to Alpaca. */
export function keysOf(keyring: Keyring, access: Access, credentialId: string): Secrets {
  if (access.outcome !== 'ok' || !access.sealed || !access.userId || access.secretsVersion === null) {
    throw new Error('keys are only opened for an admitted request');
  }
  return openSecrets(
    keyring,
    { id: credentialId, userId: access.userId, secretsVersion: access.secretsVersion },
    access.sealed,
  );
}

/** The check before an order's market data is read: writes nothing (a dry run takes a point of its own limit). */
export async function authorize(
  db: Database,
  caller: EngineCaller,
  options: { rateLimit: number; dryRun: boolean },
): Promise<Access> {
  const rows = await db.inOneMessage<AccessRow>(
    'no-one',
    statement`SELECT ${ACCESS} FROM engine_authorize(${caller.tokenHash}, ${caller.credentialId}::uuid,
      ${caller.scope}, ${options.rateLimit}::int, ${options.dryRun})`,
  );
  return accessOf(rows[0]);
}

/** What an admitted order adds to the grant's daily counts. */
export interface OrderCount {
  /** 1 for a new order or a replacement. */
  orders: 0 | 1;
  notional: Decimal;
}

export interface AdmitOptions {
  rateLimit: number;
  /** The versions the caller checked the request against; left out for requests no guardrail checks. */
  checked?: { guardrailsVersion: number; secretsVersion: number };
  /** The order's summary for the event (src/domain/guardrail-checks.ts OrderSummary). */
  order?: object | null;
  count?: OrderCount;
}

/** Admits a request: its event is committed when this resolves with 'ok'. */
export async function admit(db: Database, caller: EngineCaller, options: AdmitOptions): Promise<Access> {
  const { checked, count } = options;
  const rows = await db.inOneMessage<AccessRow>(
    'no-one',
    statement`SELECT ${ACCESS} FROM engine_admit(${caller.tokenHash}, ${caller.credentialId}::uuid, ${caller.scope},
      ${caller.request}, ${caller.origin.clientIp}, ${caller.origin.userAgent}, ${options.rateLimit}::int,
      ${checked?.guardrailsVersion ?? null}::int, ${checked?.secretsVersion ?? null}::int,
      ${options.order ? JSON.stringify(options.order) : null}::jsonb,
      ${count?.orders ?? 0}::int, ${formatDecimal(count?.notional ?? ZERO)}::numeric)`,
  );
  return accessOf(rows[0]);
}

/** Records a guardrail refusal (ENGINE_REFUSED), counted against the rate limit like a forwarded request. */
export async function refuse(
  db: Database,
  caller: EngineCaller,
  options: {
    rateLimit: number;
    checked: { guardrailsVersion: number; secretsVersion: number };
    rule: string;
    order: object | null;
  },
): Promise<Access> {
  const rows = await db.inOneMessage<AccessRow>(
    'no-one',
    statement`SELECT ${ACCESS} FROM engine_refuse(${caller.tokenHash}, ${caller.credentialId}::uuid, ${caller.scope},
      ${caller.request}, ${caller.origin.clientIp}, ${caller.origin.userAgent}, ${options.rateLimit}::int,
      ${options.checked.guardrailsVersion}::int, ${options.checked.secretsVersion}::int, ${options.rule},
      ${options.order ? JSON.stringify(options.order) : null}::jsonb)`,
  );
  return accessOf(rows[0]);
}

/** How Alpaca answered an admitted request; what to give back of its count when it refused the order. */
export interface ResponseRecord {
  eventId: string;
  status: number;
  brokerRequestId: string | null;
  grantId: string;
  tradingDay: string;
  giveBack: OrderCount | null;
}

/** Beside the event, in its owner's scope: the answer's status and X-Request-ID, and a refused order's counts back. */
export async function recordResponse(db: Database, userId: string, record: ResponseRecord): Promise<void> {
  await db.inOneMessage(
    { user: userId },
    statement`SELECT 1 FROM engine_record_response(${record.eventId}::uuid, ${record.status}::int,
      ${record.brokerRequestId}, ${record.grantId}::uuid, ${record.tradingDay}::date,
      ${record.giveBack?.orders ?? 0}::int, ${formatDecimal(record.giveBack?.notional ?? ZERO)}::numeric)`,
  );
}
