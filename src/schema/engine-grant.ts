// Trading-engine access in GraphQL (docs/engines.md): the engine clients a
// user can choose from, the grants of a credential with their guardrails and
// today's usage, and the mutations that grant, revoke, change guardrails and
// halt. Rules are in src/domain/engine-grants.ts and guardrails.ts, the writes
// (with their audit events) in src/engine/grant-changes.ts; the engine API
// itself is src/engine (docs/architecture/engine-proxy.md). The guardrail
// types are ./engine-guardrails.ts.
//
// Lists are capped so no query makes unbounded work: engineClients answers
// the ENGINE_CLIENTS_MAX newest unrevoked clients, Credential.engineGrants
// the ENGINE_GRANTS_MAX newest grants of the credential (revoked included).
// Their caps are their complexity multipliers (src/schema/complexity.ts). 25
// grants is many engines per credential, and keeps the documented all-fields
// accounts query (100 credentials each) within the default limit; older
// revoked grants stay in the audit trail (ACCESS_GRANTED / ACCESS_REVOKED).
// haltEngineAccess answers at most the grants in force, which are at most
// ACTIVE_GRANTS_PER_CREDENTIAL_MAX per credential (refused beyond it by
// grantEngineAccess), so MAX_CREDENTIALS_PER_ACCOUNT times that per user.
import {
  ACTIVE_GRANTS_PER_CREDENTIAL_MAX,
  cleanGrantTerms,
  ENGINE_SCOPES,
  type EngineScope,
  isGrantActive,
} from '../domain/engine-grants.ts';
import { InvalidInputError, NotFoundError, UnsupportedCredentialTypeError } from '../domain/errors.ts';
import { VERIFIABLE_TYPES } from '../domain/verification.ts';
import {
  currentTradingDay,
  grantAccess,
  guardrailsOfGrant,
  haltGrants,
  isActiveEngineClient,
  lockCredentialForGrant,
  newGrantGuardrails,
  revokeAccess,
  setGuardrails,
} from '../engine/grant-changes.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { builder, viewerId } from './builder.ts';
import { cappedList } from './complexity.ts';
import { CredentialRef } from './credential.ts';
import {
  EngineGrantUsageRef,
  EngineGuardrailsInputRef,
  EngineGuardrailsRef,
  type GrantUsage,
} from './engine-guardrails.ts';

export const ENGINE_CLIENTS_MAX = 100;
export const ENGINE_GRANTS_MAX = 25;

const EngineScopeRef = builder.enumType('EngineScope', {
  description:
    'READ: account, positions, orders, assets, clock and calendar. TRADE: READ plus placing, replacing and ' +
    'cancelling orders, closing positions.',
  values: ENGINE_SCOPES,
});

const EngineClientRef = builder.prismaObject('EngineClient', {
  description: 'A trading engine registered by the operator (npm run engine-client), which users may grant access.',
  // The request role may read these columns only (never the secret's hash).
  select: { id: true, name: true },
  fields: (t) => ({
    id: t.exposeString('id', { description: 'The OAuth client_id.' }),
    name: t.exposeString('name'),
  }),
});

const isScope = (value: string): value is EngineScope => (ENGINE_SCOPES as readonly string[]).includes(value);

const EngineGrantRef = builder.prismaObject('EngineGrant', {
  description: 'Access of one engine client to one credential, with scopes, until it expires or is revoked.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    client: t.relation('client'),
    credentialId: t.expose('credentialId', { type: 'UUID' }),
    scopes: t.field({ type: [EngineScopeRef], resolve: (g) => g.scopes.filter(isScope) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'null: until revoked.' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true, description: 'Set by revokeEngineAccess.' }),
    isActive: t.boolean({
      description: 'Neither revoked nor expired: the engine may use it now.',
      resolve: (g) => isGrantActive(g, new Date()),
    }),
    guardrails: t.field({
      type: EngineGuardrailsRef,
      description: 'What the engine may do with the keys (setEngineGuardrails, haltEngineAccess).',
      resolve: (g) => guardrailsOfGrant(g),
    }),
    usageToday: t.field({
      type: EngineGrantUsageRef,
      description: "Today's counts against maxDailyOrders and maxDailyNotional (zeros before the first order).",
      // The grant's latest usage row, loaded with the grant (no query per
      // grant); it is today's when its day is the database's trading day.
      select: {
        usage: {
          select: { tradingDay: true, orders: true, notional: true },
          orderBy: { tradingDay: 'desc' },
          take: 1,
        },
      },
      resolve: async (g, _args, ctx): Promise<GrantUsage> => {
        const today = await tradingDayOf(ctx);
        const latest = g.usage[0];
        return latest && latest.tradingDay.toISOString().slice(0, 10) === today
          ? { tradingDay: today, orders: latest.orders, notional: latest.notional }
          : { tradingDay: today, orders: 0, notional: '0' };
      },
    }),
  }),
});

/**
 * Today's trading day, read once per operation: the transaction's now() is
 * fixed, so every grant of the answer is counted on the same day, the one the
 * proxy counts on (the database's clock, not this process's).
 */
const tradingDays = new WeakMap<GraphQLContext, Promise<string>>();
function tradingDayOf(ctx: GraphQLContext): Promise<string> {
  let day = tradingDays.get(ctx);
  if (!day) {
    day = currentTradingDay(ctx.db);
    tradingDays.set(ctx, day);
  }
  return day;
}

/** Runs `work`, naming a bad field of the nested input `prefix` as "prefix.field" (as variables' errors do). */
function withinInput<T>(prefix: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof InvalidInputError) throw new InvalidInputError(`${prefix}.${error.field}`, error.message);
    throw error;
  }
}

builder.queryField('engineClients', (t) =>
  t.prismaField({
    type: [EngineClientRef],
    description: `The registered, unrevoked engine clients, newest first (at most ${ENGINE_CLIENTS_MAX}).`,
    complexity: cappedList(ENGINE_CLIENTS_MAX),
    resolve: (query, _root, _args, ctx) =>
      ctx.db.engineClient.findMany({
        ...query,
        where: { revokedAt: null },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: ENGINE_CLIENTS_MAX,
      }),
  }),
);

builder.prismaObjectField(CredentialRef, 'engineGrants', (t) =>
  t.relation('engineGrants', {
    description: `The engine grants of this credential, newest first, revoked and expired ones included (at most ${ENGINE_GRANTS_MAX}).`,
    query: { orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: ENGINE_GRANTS_MAX },
    complexity: cappedList(ENGINE_GRANTS_MAX),
  }),
);

const GrantEngineAccessInput = builder.inputType('GrantEngineAccessInput', {
  fields: (t) => ({
    credentialId: t.field({ type: 'UUID', required: true }),
    clientId: t.string({ required: true, description: 'An EngineClient id (engineClients).' }),
    scopes: t.field({ type: [EngineScopeRef], required: true, description: 'At least one.' }),
    expiresAt: t.field({ type: 'DateTime', description: 'In the future; null or absent: until revoked.' }),
    guardrails: t.field({
      type: EngineGuardrailsInputRef,
      description: 'Applied over the defaults; null or absent: the defaults.',
    }),
  }),
});

builder.mutationFields((t) => ({
  grantEngineAccess: t.prismaField({
    type: EngineGrantRef,
    description:
      'Lets an engine client use one of your credentials with the given scopes and guardrails. An active grant of ' +
      'the same client on the credential is replaced (revoked). Leaves ACCESS_GRANTED (and ACCESS_REVOKED) in its ' +
      'audit trail, then GUARDRAILS_CHANGED naming the guardrails that differ from the defaults, if any. At most ' +
      `${ACTIVE_GRANTS_PER_CREDENTIAL_MAX} clients may hold a grant in force on one credential (then LIMIT_EXCEEDED).`,
    args: { input: t.arg({ type: GrantEngineAccessInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const userId = viewerId(ctx);
      const terms = cleanGrantTerms(input);
      const limits = withinInput('guardrails', () => newGrantGuardrails(input.guardrails));
      const credential = await lockCredentialForGrant(ctx.db, input.credentialId);
      if (!credential) throw new NotFoundError('Credential');
      if (!VERIFIABLE_TYPES.has(credential.credentialType)) {
        throw new UnsupportedCredentialTypeError(
          credential.credentialType,
          [...VERIFIABLE_TYPES],
          'granted to trading engines',
        );
      }
      if (!(await isActiveEngineClient(ctx.db, input.clientId))) throw new NotFoundError('Engine client');
      const id = await grantAccess(
        ctx.db,
        { userId, credentialId: input.credentialId, clientId: input.clientId, request: ctx.origin },
        terms,
        limits,
      );
      return ctx.db.engineGrant.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),

  revokeEngineAccess: t.prismaField({
    type: EngineGrantRef,
    description: 'Revokes a grant at once: the engine’s next request is refused. Leaves ACCESS_REVOKED.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: async (query, _root, { id }, ctx) => {
      if (!(await revokeAccess(ctx.db, id, { userId: viewerId(ctx), request: ctx.origin }))) {
        throw new NotFoundError('Engine grant');
      }
      return ctx.db.engineGrant.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),

  setEngineGuardrails: t.prismaField({
    type: EngineGrantRef,
    description:
      'Changes the guardrails of one of your grants in force: a field left out keeps its value. Leaves one ' +
      'GUARDRAILS_CHANGED event naming the fields that changed (none when nothing did). Takes effect on the ' +
      "engine's next request, on every instance. A revoked or expired grant is NOT_FOUND, like an absent one.",
    args: {
      grantId: t.arg({ type: 'UUID', required: true }),
      input: t.arg({ type: EngineGuardrailsInputRef, required: true }),
    },
    resolve: async (query, _root, { grantId, input }, ctx) => {
      viewerId(ctx);
      if (!(await setGuardrails(ctx.db, grantId, input, ctx.origin))) throw new NotFoundError('Engine grant');
      return ctx.db.engineGrant.findUniqueOrThrow({ ...query, where: { id: grantId } });
    },
  }),

  haltEngineAccess: t.prismaField({
    type: [EngineGrantRef],
    description:
      'The kill switch: sets every grant of yours in force (or only those on credentialId) to HALTED, in one ' +
      'transaction. Halted, an engine can place or replace no order (cancelling and closing stay allowed), from ' +
      'its next request on, on every instance. Answers the grants it changed, newest first (empty when all were ' +
      'halted already), each with a GUARDRAILS_CHANGED event. Resume a grant with setEngineGuardrails.',
    args: {
      credentialId: t.arg({ type: 'UUID', description: 'Only the grants on this credential of yours.' }),
    },
    // The grants in force: at most ACTIVE_GRANTS_PER_CREDENTIAL_MAX per credential.
    complexity: ({ credentialId }, ctx) =>
      cappedList(ACTIVE_GRANTS_PER_CREDENTIAL_MAX * (credentialId ? 1 : ctx.limits.credentialsPerAccount)),
    resolve: async (query, _root, { credentialId }, ctx) => {
      const userId = viewerId(ctx);
      if (credentialId != null) {
        const credential = await ctx.db.credential.findUnique({ where: { id: credentialId }, select: { id: true } });
        if (!credential) throw new NotFoundError('Credential');
      }
      const halted = await haltGrants(ctx.db, {
        userId,
        ...(credentialId != null ? { credentialId } : {}),
        request: ctx.origin,
      });
      if (halted.length === 0) return [];
      return ctx.db.engineGrant.findMany({
        ...query,
        where: { id: { in: halted } },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      });
    },
  }),
}));
