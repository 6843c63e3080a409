// The audit trail in GraphQL (docs/audit-trail.md): CredentialEvent, its
// Relay-style connection, Query.credentialEvents and Credential.events.
//
// Paging uses @pothos/plugin-relay's resolveCursorConnection (page size,
// hasNextPage, edges); the query behind it is keyset paging on
// (occurred_at, id), newest first (src/services/credential-events.ts). A
// cursor names an event (its id, base64-encoded so that clients treat it as
// opaque).
import { decodeBase64, encodeBase64 } from '@pothos/core';
import { resolveCursorConnection } from '@pothos/plugin-relay';
import { CHANGEABLE_FIELDS, CREDENTIAL_ACTIONS, type CredentialAction } from '../domain/credential-events.ts';
import { InvalidInputError } from '../domain/errors.ts';
import { isUuid } from '../domain/ids.ts';
import type { VerificationStatus } from '../domain/verification.ts';
import type { CredentialEvent } from '../generated/prisma/client.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { INVALID_CURSOR, listCredentialEvents } from '../services/credential-events.ts';
import { builder, viewerId } from './builder.ts';
import { connectionPage } from './complexity.ts';
import { CredentialRef } from './credential.ts';
import { VerificationStatusRef } from './verification.ts';

export const PAGE_SIZE_DEFAULT = 20;
export const PAGE_SIZE_MAX = 100;

const eventsPageComplexity = connectionPage(PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX);

const CredentialActionEnum = builder.enumType('CredentialAction', { values: CREDENTIAL_ACTIONS });

const CredentialEventRef = builder.prismaObject('CredentialEvent', {
  description: 'One change to a credential. It names the fields that changed, never their values.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    credentialId: t.expose('credentialId', {
      type: 'UUID',
      description: 'The credential changed; it may since have been deleted.',
    }),
    action: t.field({ type: CredentialActionEnum, resolve: (e) => e.action as CredentialAction }),
    changedFields: t.exposeStringList('changedFields', {
      // One per changeable field at most.
      complexity: CHANGEABLE_FIELDS.length,
      description: 'For UPDATED, DEACTIVATED and REACTIVATED: which of nickname, apiKey, secretKey, isActive changed.',
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
      description: 'For ACCESS_GRANTED, ACCESS_REVOKED and ENGINE_REQUEST: the engine client.',
    }),
    engineRequest: t.exposeString('engineRequest', {
      nullable: true,
      description:
        'For ENGINE_REQUEST: the request forwarded to Alpaca as "METHOD /path-template" (e.g. "POST /v2/orders"), never a value.',
    }),
  }),
});

const CredentialEventConnection = builder.connectionObject(
  { type: CredentialEventRef, name: 'CredentialEventConnection' },
  { name: 'CredentialEventEdge' },
);

const CURSOR_PREFIX = 'CredentialEvent:';

/** A cursor names an event; the paging query compares with its (occurredAt, id). */
function toCursor(event: CredentialEvent): string {
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
  return resolveCursorConnection<Promise<CredentialEvent[]>>(
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
