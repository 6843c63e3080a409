// The audit trail in GraphQL (docs/audit-trail.md): CredentialEvent, its
// Relay-style connection, Query.credentialEvents and Credential.events.
//
// Paging uses @pothos/plugin-relay's resolveCursorConnection (page size,
// hasNextPage, edges); the query behind it is keyset paging on
// (occurred_at, id), newest first (src/services/credential-events.ts). A
// cursor names an event (its id, base64-encoded so that clients treat it as
// opaque). The page's rows carry everything an event shows (Alpaca's answer
// is joined in), so no field of an event makes a query of its own.
import { decodeBase64, encodeBase64 } from '@pothos/core';
import { resolveCursorConnection } from '@pothos/plugin-relay';
import { CREDENTIAL_ACTIONS, type CredentialAction } from '../domain/credential-events.ts';
import { InvalidInputError } from '../domain/errors.ts';
import type { OrderSummary } from '../domain/guardrail-checks.ts';
import { isUuid } from '../domain/ids.ts';
import type { VerificationStatus } from '../domain/verification.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { INVALID_CURSOR, type ListedCredentialEvent, listCredentialEvents } from '../services/credential-events.ts';
import { builder, viewerId } from './builder.ts';
import { connectionPage } from './complexity.ts';
import { CredentialRef } from './credential.ts';
import { VerificationStatusRef } from './verification.ts';

export const PAGE_SIZE_DEFAULT = 20;
export const PAGE_SIZE_MAX = 100;

const eventsPageComplexity = connectionPage(PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX);

const CredentialActionEnum = builder.enumType('CredentialAction', { values: CREDENTIAL_ACTIONS });

const PLAIN_DECIMAL = /^\d+(\.\d+)?$/;

/** The stored summary, or null when there is none (or it lacks what the type promises). */
function orderSummaryOf(stored: unknown): OrderSummary | null {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return null;
  const o = stored as Record<string, unknown>;
  const text = (key: string) => (typeof o[key] === 'string' ? (o[key] as string) : null);
  const decimal = (key: string) => {
    const value = text(key);
    return value !== null && PLAIN_DECIMAL.test(value) ? value : null;
  };
  const symbol = text('symbol');
  const side = text('side');
  const type = text('type');
  if (symbol === null || side === null || type === null) return null;
  return {
    symbol,
    side,
    type,
    qty: decimal('qty'),
    notional: decimal('notional'),
    clientOrderId: text('clientOrderId'),
    estimatedNotional: decimal('estimatedNotional'),
    referencePrice: decimal('referencePrice'),
  };
}

const EngineOrderSummaryRef = builder.objectRef<OrderSummary>('EngineOrderSummary').implement({
  description:
    'An order an engine sent (a new order or a replacement), as the order gave it, and what the guardrail checks counted.',
  // Its fields are read with the event's row (one JSON column): they cost nothing beyond engineOrder itself.
  fields: (t) => ({
    symbol: t.exposeString('symbol', { complexity: 0, description: 'As the order gave it, e.g. "AAPL".' }),
    side: t.exposeString('side', { complexity: 0, description: 'As the order gave it, e.g. "buy".' }),
    type: t.exposeString('type', { complexity: 0, description: 'As the order gave it, e.g. "limit".' }),
    qty: t.expose('qty', { type: 'Decimal', nullable: true, complexity: 0 }),
    notional: t.expose('notional', {
      type: 'Decimal',
      nullable: true,
      complexity: 0,
      description: 'USD, for a notional order.',
    }),
    clientOrderId: t.exposeString('clientOrderId', { nullable: true, complexity: 0 }),
    estimatedNotional: t.expose('estimatedNotional', {
      type: 'Decimal',
      nullable: true,
      complexity: 0,
      description: 'USD the checks counted; null when no rule needed it and the order alone does not give it.',
    }),
    referencePrice: t.expose('referencePrice', {
      type: 'Decimal',
      nullable: true,
      complexity: 0,
      description: "The market price used, when one was read (Alpaca's market data, never the engine's).",
    }),
  }),
});

const EngineResponseRef = builder
  .objectRef<{ status: number; brokerRequestId: string | null }>('EngineResponse')
  .implement({
    description: 'How Alpaca answered a forwarded engine request.',
    // Read with the event (one join in its page's statement): its fields cost nothing beyond engineResponse itself.
    fields: (t) => ({
      status: t.exposeInt('status', { complexity: 0, description: "Alpaca's HTTP status." }),
      brokerRequestId: t.exposeString('brokerRequestId', {
        nullable: true,
        complexity: 0,
        description: "Alpaca's X-Request-ID, to quote to Alpaca's support.",
      }),
    }),
  });

const CredentialEventRef = builder.objectRef<ListedCredentialEvent>('CredentialEvent').implement({
  description:
    'One change to a credential, or one use of it by an engine. It names the fields that changed, never their values.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    credentialId: t.expose('credentialId', {
      type: 'UUID',
      description: 'The credential changed; it may since have been deleted.',
    }),
    action: t.field({ type: CredentialActionEnum, resolve: (e) => e.action as CredentialAction }),
    // A column of the event's row (at most 12 names): one field's worth of work.
    changedFields: t.exposeStringList('changedFields', {
      description:
        'For UPDATED, DEACTIVATED and REACTIVATED: which of nickname, apiKey, secretKey, isActive changed. For ' +
        'GUARDRAILS_CHANGED: which guardrails of the grant changed (EngineGuardrails field names).',
    }),
    verificationStatus: t.field({
      type: VerificationStatusRef,
      nullable: true,
      description: 'For VERIFIED: the outcome of the check.',
      resolve: (e) => e.verificationStatus as VerificationStatus | null,
    }),
    occurredAt: t.expose('occurredAt', { type: 'DateTime' }),
    clientIp: t.exposeString('clientIp', {
      nullable: true,
      description: 'The client address as the server saw it (behind TRUST_PROXY: the forwarded one).',
    }),
    userAgent: t.exposeString('userAgent', { nullable: true, description: 'At most 256 characters.' }),
    engineClientId: t.exposeString('engineClientId', {
      nullable: true,
      description:
        'For ACCESS_GRANTED, ACCESS_REVOKED, GUARDRAILS_CHANGED, ENGINE_REQUEST and ENGINE_REFUSED: the engine client.',
    }),
    engineRequest: t.exposeString('engineRequest', {
      nullable: true,
      description:
        'For ENGINE_REQUEST and ENGINE_REFUSED: the request as "METHOD /path-template" (e.g. "POST /v2/orders"), never a value.',
    }),
    guardrailRule: t.exposeString('guardrailRule', {
      nullable: true,
      description:
        'For ENGINE_REFUSED: the rule that refused the request (an EngineGuardrails field name, orderClass, symbol or marketData).',
    }),
    engineOrder: t.field({
      type: EngineOrderSummaryRef,
      nullable: true,
      description: 'For ENGINE_REQUEST and ENGINE_REFUSED of a new order or a replacement: its summary.',
      resolve: (e) => orderSummaryOf(e.engineOrder),
    }),
    engineResponse: t.field({
      type: EngineResponseRef,
      nullable: true,
      description:
        'For ENGINE_REQUEST: how Alpaca answered; null while nothing came back (a timeout, a connection error).',
      resolve: (e) => e.engineResponse,
    }),
  }),
});

const CredentialEventConnection = builder.connectionObject(
  { type: CredentialEventRef, name: 'CredentialEventConnection' },
  { name: 'CredentialEventEdge' },
);

const CURSOR_PREFIX = 'CredentialEvent:';

/** A cursor names an event; the paging query compares with its (occurredAt, id). */
function toCursor(event: ListedCredentialEvent): string {
  return encodeBase64(`${CURSOR_PREFIX}${event.id}`);
}

function eventIdOf(cursor: string): string {
  let text = '';
  try {
    text = decodeBase64(cursor);
  } catch {
    // not base64, so not one of ours: refused below
  }
  const id = text.startsWith(CURSOR_PREFIX) ? text.slice(CURSOR_PREFIX.length) : '';
  if (!isUuid(id)) throw new InvalidInputError('after', INVALID_CURSOR);
  return id;
}

interface PageArgs {
  first?: number | null;
  after?: string | null;
}

function eventsPage(ctx: GraphQLContext, { first, after }: PageArgs, credentialId?: string) {
  const size = first ?? PAGE_SIZE_DEFAULT;
  if (!Number.isInteger(size) || size < 1 || size > PAGE_SIZE_MAX) {
    throw new InvalidInputError('first', `first must be between 1 and ${PAGE_SIZE_MAX}.`);
  }
  const afterId = after != null ? eventIdOf(after) : undefined;
  return resolveCursorConnection<Promise<ListedCredentialEvent[]>>(
    { args: { first: size, after: after ?? undefined }, maxSize: PAGE_SIZE_MAX, toCursor },
    ({ limit }) =>
      listCredentialEvents(ctx.db, {
        userId: viewerId(ctx),
        ...(credentialId !== undefined ? { credentialId } : {}),
        limit,
        ...(afterId !== undefined ? { after: afterId } : {}),
      }),
  );
}

builder.queryField('credentialEvents', (t) =>
  t.field({
    type: CredentialEventConnection,
    description:
      "The caller's credential events, newest first; only those of credentialId when given (its history outlives the credential).",
    args: {
      credentialId: t.arg({ type: 'UUID' }),
      first: t.arg.int({ defaultValue: PAGE_SIZE_DEFAULT, description: `1..${PAGE_SIZE_MAX}.` }),
      after: t.arg.string({ description: 'endCursor of the previous page.' }),
    },
    complexity: eventsPageComplexity,
    resolve: (_root, { credentialId, ...page }, ctx) => eventsPage(ctx, page, credentialId ?? undefined),
  }),
);

builder.prismaObjectField(CredentialRef, 'events', (t) =>
  t.field({
    type: CredentialEventConnection,
    description: "This credential's events, newest first.",
    args: {
      first: t.arg.int({ defaultValue: PAGE_SIZE_DEFAULT, description: `1..${PAGE_SIZE_MAX}.` }),
      after: t.arg.string({ description: 'endCursor of the previous page.' }),
    },
    complexity: eventsPageComplexity,
    resolve: (credential, page, ctx) => eventsPage(ctx, page, credential.id),
  }),
);
