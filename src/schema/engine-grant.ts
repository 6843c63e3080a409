// Trading-engine access in GraphQL (docs/engines.md): the engine clients a
// user can choose from, the grants of a credential, and the mutations that
// grant and revoke. Rules are in src/domain/engine-grants.ts, the writes
// (with their audit events) in src/engine/grant-changes.ts; the engine API
// itself is src/engine (docs/architecture/engine-proxy.md).
//
// Lists are capped so no query makes unbounded work: engineClients answers
// the ENGINE_CLIENTS_MAX newest unrevoked clients, Credential.engineGrants
// the ENGINE_GRANTS_MAX newest grants of the credential (revoked included).
// Their caps are their complexity multipliers (src/schema/complexity.ts). 25
// grants is many engines per credential, and keeps the documented all-fields
// accounts query (100 credentials each) within the default limit; older
// revoked grants stay in the audit trail (ACCESS_GRANTED / ACCESS_REVOKED).
import { cleanGrantTerms, ENGINE_SCOPES, type EngineScope, isGrantActive } from '../domain/engine-grants.ts';
import { NotFoundError, UnsupportedCredentialTypeError } from '../domain/errors.ts';
import { VERIFIABLE_TYPES } from '../domain/verification.ts';
import { grantAccess, isActiveEngineClient, lockCredentialForGrant, revokeAccess } from '../engine/grant-changes.ts';
import { builder, viewerId } from './builder.ts';
import { cappedList } from './complexity.ts';
import { CredentialRef } from './credential.ts';

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
  }),
});

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
  }),
});

builder.mutationFields((t) => ({
  grantEngineAccess: t.prismaField({
    type: EngineGrantRef,
    description:
      'Lets an engine client use one of your credentials with the given scopes. An active grant of the same client ' +
      'on the credential is replaced (revoked). Leaves ACCESS_GRANTED (and ACCESS_REVOKED) in its audit trail.',
    args: { input: t.arg({ type: GrantEngineAccessInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const userId = viewerId(ctx);
      const terms = cleanGrantTerms(input);
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
}));
