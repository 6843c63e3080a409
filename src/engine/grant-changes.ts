// Grant changes: the writes behind GraphQL's grantEngineAccess,
// revokeEngineAccess, setEngineGuardrails and haltEngineAccess
// (src/schema/engine-grant.ts), in the caller's scoped transaction (the
// operation's RLS transaction), each with its audit event, so a grant change
// and its event commit or roll back together.
//
// Replacing a grant: granting a client that already holds an active grant on
// the credential revokes that grant first (revokedAt = now, an
// ACCESS_REVOKED event), then creates the new one (ACCESS_GRANTED): the trail
// says exactly what happened, and the old grant's history stays readable.
// Two grants at once for one credential are serialised by a row lock on the
// credential, so at most one grant per client and credential is ever active,
// and at most ACTIVE_GRANTS_PER_CREDENTIAL_MAX in all. A grant that merely
// expired is left as it is (it is not active, and was not revoked).
//
// Guardrails (the limits on what the engine may do) are columns of the grant;
// every change leaves one GUARDRAILS_CHANGED event naming the fields that
// changed. The proxy reads them on every request (src/engine/admission.ts),
// so a change takes effect on the next request on every instance.
import type { ScopedDb } from '../db/request-transaction.ts';
import { Decimal, formatDecimal } from '../domain/decimal.ts';
import { ACTIVE_GRANTS_PER_CREDENTIAL_MAX, type GrantTerms } from '../domain/engine-grants.ts';
import { LimitExceededError } from '../domain/errors.ts';
import {
  ASSET_CLASSES,
  applyGuardrailsInput,
  DEFAULT_GUARDRAILS,
  type GuardrailField,
  type Guardrails,
  type GuardrailsInput,
  ORDER_TYPES,
  TRADING_STATES,
} from '../domain/guardrails.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { type RequestOrigin, recordCredentialEvent } from '../services/credential-events.ts';

/** A grant's guardrail columns as Prisma or a raw query gives them (numeric as Prisma's Decimal or text). */
export interface GuardrailColumns {
  tradingState: string;
  /** Empty: any symbol. */
  symbols: string[];
  assetClasses: string[];
  orderTypes: string[];
  allowShortSelling: boolean;
  allowExtendedHours: boolean;
  allowAccountWideActions: boolean;
  maxOrderNotional: { toString(): string } | null;
  maxOrderQuantity: { toString(): string } | null;
  maxDailyNotional: { toString(): string } | null;
  maxDailyOrders: number | null;
  priceCollarPercent: { toString(): string } | null;
}

const amount = (value: { toString(): string } | null): Decimal | null =>
  value === null ? null : new Decimal(value.toString());

/** The guardrails a grant's columns hold (the database's CHECKs keep the values in range). */
export function guardrailsOfGrant(row: GuardrailColumns): Guardrails {
  const tradingState = TRADING_STATES.find((s) => s === row.tradingState);
  if (!tradingState) throw new Error(`engine grant with an unknown trading state ${JSON.stringify(row.tradingState)}`);
  return {
    tradingState,
    symbols: row.symbols.length === 0 ? null : [...row.symbols],
    assetClasses: ASSET_CLASSES.filter((c) => row.assetClasses.includes(c)),
    orderTypes: ORDER_TYPES.filter((t) => row.orderTypes.includes(t)),
    allowShortSelling: row.allowShortSelling,
    allowExtendedHours: row.allowExtendedHours,
    allowAccountWideActions: row.allowAccountWideActions,
    maxOrderNotional: amount(row.maxOrderNotional),
    maxOrderQuantity: amount(row.maxOrderQuantity),
    maxDailyNotional: amount(row.maxDailyNotional),
    maxDailyOrders: row.maxDailyOrders,
    priceCollarPercent: amount(row.priceCollarPercent),
  };
}

/** The columns (Prisma data) of `guardrails`; only those of `fields` when given. */
function guardrailColumns(guardrails: Guardrails, fields?: readonly GuardrailField[]) {
  const text = (d: Decimal | null) => (d === null ? null : formatDecimal(d));
  const all = {
    tradingState: guardrails.tradingState,
    symbols: guardrails.symbols ?? [],
    assetClasses: guardrails.assetClasses,
    orderTypes: guardrails.orderTypes,
    allowShortSelling: guardrails.allowShortSelling,
    allowExtendedHours: guardrails.allowExtendedHours,
    allowAccountWideActions: guardrails.allowAccountWideActions,
    maxOrderNotional: text(guardrails.maxOrderNotional),
    maxOrderQuantity: text(guardrails.maxOrderQuantity),
    maxDailyNotional: text(guardrails.maxDailyNotional),
    maxDailyOrders: guardrails.maxDailyOrders,
    priceCollarPercent: text(guardrails.priceCollarPercent),
  } satisfies Record<GuardrailField, unknown>;
  return fields ? Object.fromEntries(fields.map((f) => [f, all[f]])) : all;
}

/**
 * Locks the credential (FOR UPDATE, until the transaction ends) and returns
 * its type; null when absent or not the caller's. Raw SQL: Prisma has no row locks.
 */
export async function lockCredentialForGrant(
  db: ScopedDb,
  credentialId: string,
): Promise<{ credentialType: string } | null> {
  const rows = await db.$queryRaw<{ credentialType: string }[]>`
    SELECT credential_type AS "credentialType" FROM user_credentials WHERE id = ${credentialId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

/** Whether `clientId` names a registered, unrevoked engine client. */
export async function isActiveEngineClient(db: ScopedDb, clientId: string): Promise<boolean> {
  const client = await db.engineClient.findFirst({ where: { id: clientId, revokedAt: null }, select: { id: true } });
  return client !== null;
}

export interface GrantChange {
  userId: string;
  credentialId: string;
  clientId: string;
  request: RequestOrigin;
}

/** The guardrails of a new grant, and the fields in which they differ from the defaults. */
export interface NewGrantGuardrails {
  guardrails: Guardrails;
  changed: readonly GuardrailField[];
}

/** The guardrails `input` asks for over the defaults (absent: the defaults). Throws InvalidInputError. */
export function newGrantGuardrails(input: GuardrailsInput | null | undefined): NewGrantGuardrails {
  return input
    ? applyGuardrailsInput(DEFAULT_GUARDRAILS, input)
    : { guardrails: { ...DEFAULT_GUARDRAILS }, changed: [] };
}

/**
 * Creates a grant on a credential the caller locked (lockCredentialForGrant),
 * revoking the client's active one first; returns the new grant's id. With
 * guardrails other than the defaults, a GUARDRAILS_CHANGED event naming the
 * fields that differ follows ACCESS_GRANTED. Throws LimitExceededError when
 * ACTIVE_GRANTS_PER_CREDENTIAL_MAX other clients hold active grants on it.
 */
export async function grantAccess(
  db: ScopedDb,
  change: GrantChange,
  terms: GrantTerms,
  limits: NewGrantGuardrails = newGrantGuardrails(null),
): Promise<string> {
  const [others] = await db.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS "count" FROM engine_grants
     WHERE credential_id = ${change.credentialId}::uuid AND client_id <> ${change.clientId}
       AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`;
  if ((others?.count ?? 0) >= ACTIVE_GRANTS_PER_CREDENTIAL_MAX) {
    throw new LimitExceededError(
      'ACTIVE_GRANTS_PER_CREDENTIAL',
      `A credential may be granted to at most ${ACTIVE_GRANTS_PER_CREDENTIAL_MAX} engine clients at once: revoke a grant first.`,
    );
  }
  const replaced = await db.$queryRaw<{ id: string }[]>`
    UPDATE engine_grants SET revoked_at = now()
     WHERE credential_id = ${change.credentialId}::uuid AND client_id = ${change.clientId}
       AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
    RETURNING id::text AS "id"`;
  for (const _ of replaced) await recordEvent(db, change, 'ACCESS_REVOKED');
  const grant = await db.engineGrant.create({
    data: {
      userId: change.userId,
      credentialId: change.credentialId,
      clientId: change.clientId,
      scopes: terms.scopes,
      expiresAt: terms.expiresAt,
      ...guardrailColumns(limits.guardrails),
    },
    select: { id: true },
  });
  await recordEvent(db, change, 'ACCESS_GRANTED');
  if (limits.changed.length > 0) await recordEvent(db, change, 'GUARDRAILS_CHANGED', limits.changed);
  return grant.id;
}

/**
 * Revokes one grant of the caller's, if it is not revoked already (then
 * nothing changes and no event is written). Returns false when there is no
 * such grant (absent, or someone else's).
 */
export async function revokeAccess(
  db: ScopedDb,
  grantId: string,
  who: { userId: string; request: RequestOrigin },
): Promise<boolean> {
  const revoked = await db.$queryRaw<{ credentialId: string; clientId: string }[]>`
    UPDATE engine_grants SET revoked_at = now() WHERE id = ${grantId}::uuid AND revoked_at IS NULL
    RETURNING credential_id::text AS "credentialId", client_id AS "clientId"`;
  const [row] = revoked;
  if (row) {
    await recordEvent(db, { ...who, ...row }, 'ACCESS_REVOKED');
    return true;
  }
  return (await db.engineGrant.findUnique({ where: { id: grantId }, select: { id: true } })) !== null;
}

/**
 * Applies `input` to the guardrails of one of the caller's grants in force,
 * locked (FOR UPDATE) while they are read and changed, so concurrent changes
 * each see the other's result and each event names what really changed.
 * Returns the fields that changed (none: nothing written, no event), or null
 * when there is no such grant (absent, someone else's, revoked or expired).
 * Throws InvalidInputError naming the first invalid field; nothing is written
 * then.
 */
export async function setGuardrails(
  db: ScopedDb,
  grantId: string,
  input: GuardrailsInput,
  request: RequestOrigin,
): Promise<{ changed: GuardrailField[] } | null> {
  const [grant] = await db.$queryRaw<(GuardrailColumns & { userId: string; credentialId: string; clientId: string })[]>`
    SELECT user_id AS "userId", credential_id::text AS "credentialId", client_id AS "clientId",
           trading_state AS "tradingState", symbols, asset_classes AS "assetClasses", order_types AS "orderTypes",
           allow_short_selling AS "allowShortSelling", allow_extended_hours AS "allowExtendedHours",
           allow_account_wide_actions AS "allowAccountWideActions",
           max_order_notional::text AS "maxOrderNotional", max_order_quantity::text AS "maxOrderQuantity",
           max_daily_notional::text AS "maxDailyNotional", max_daily_orders AS "maxDailyOrders",
           price_collar_percent::text AS "priceCollarPercent"
      FROM engine_grants
     WHERE id = ${grantId}::uuid AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
       FOR UPDATE`;
  if (!grant) return null;
  const { guardrails, changed } = applyGuardrailsInput(guardrailsOfGrant(grant), input);
  if (changed.length === 0) return { changed };
  await db.engineGrant.update({
    where: { id: grantId },
    data: guardrailColumns(guardrails, changed),
    select: { id: true },
  });
  await recordEvent(db, { ...grant, request }, 'GUARDRAILS_CHANGED', changed);
  return { changed };
}

/**
 * The kill switch: sets every grant of the caller in force (or only those on
 * `credentialId`) that is not HALTED already to HALTED, and writes one
 * GUARDRAILS_CHANGED event (changedFields tradingState) per grant changed, in
 * one statement. Returns the ids of the grants changed, newest first.
 */
export async function haltGrants(
  db: ScopedDb,
  who: { userId: string; credentialId?: string; request: RequestOrigin },
): Promise<string[]> {
  const onCredential =
    who.credentialId === undefined ? Prisma.empty : Prisma.sql`AND credential_id = ${who.credentialId}::uuid`;
  // A data-modifying WITH runs to completion whether or not the SELECT reads it.
  const halted = await db.$queryRaw<{ id: string }[]>`
    WITH halted AS (
      UPDATE engine_grants SET trading_state = 'HALTED'
       WHERE user_id = ${who.userId} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
         AND trading_state <> 'HALTED' ${onCredential}
      RETURNING id, user_id, credential_id, client_id, created_at
    ), recorded AS (
      INSERT INTO credential_events (user_id, credential_id, action, changed_fields, engine_client_id, client_ip, user_agent)
      SELECT user_id, credential_id, 'GUARDRAILS_CHANGED', ARRAY['tradingState'], client_id,
             ${who.request.clientIp}::text, ${who.request.userAgent}::text
        FROM halted ORDER BY created_at, id
    )
    SELECT id::text AS "id" FROM halted ORDER BY created_at DESC, id DESC`;
  return halted.map((g) => g.id);
}

/** Today's trading day as the proxy counts it (the database's clock, America/New_York): "YYYY-MM-DD". */
export async function currentTradingDay(db: ScopedDb): Promise<string> {
  const [row] = await db.$queryRaw<{ day: string }[]>`SELECT engine_trading_day(now())::text AS "day"`;
  if (!row) throw new Error('engine_trading_day answered no row');
  return row.day;
}

function recordEvent(
  db: ScopedDb,
  change: GrantChange,
  action: 'ACCESS_GRANTED' | 'ACCESS_REVOKED' | 'GUARDRAILS_CHANGED',
  changedFields?: readonly GuardrailField[],
) {
  return recordCredentialEvent(db, {
    userId: change.userId,
    credentialId: change.credentialId,
    action,
    ...(changedFields ? { changedFields } : {}),
    engineClientId: change.clientId,
    request: change.request,
  });
}
