// The Pothos schema builder: plugins, scalars and the GraphQL context type.
// Each GraphQL type lives in its own module next to this one.
import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { DateTimeResolver, UUIDResolver } from 'graphql-scalars';
import type { Viewer } from '../auth/auth.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { ScopedDb } from '../db/rls.ts';
import { UnauthenticatedError } from '../domain/errors.ts';
import type PrismaTypes from '../generated/pothos-types.ts';
import { getDatamodel } from '../generated/pothos-types.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';

export interface GraphQLContext {
  /** The signed-in user, resolved once per request from the session; null when signed out. */
  viewer: Viewer | null;
  /**
   * The database, already scoped to the viewer: the transaction that the RLS
   * plugin (src/graphql/rls-transaction.ts) opened for this operation. Outside
   * such a transaction, any use of it throws.
   */
  db: ScopedDb;
  /** Seals new secrets with the current key; opens old ones by key id. */
  keyring: Keyring;
}

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  PrismaTypes: PrismaTypes;
  AuthScopes: { signedIn: boolean };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    UUID: { Input: string; Output: string };
  };
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (ctx) => ({ signedIn: ctx.viewer !== null }),
    unauthorizedError: () => new UnauthenticatedError(),
  },
  prisma: {
    // The transaction client stands in for the full client: plugin-prisma only
    // runs model queries on it. Every query therefore runs under RLS.
    client: (ctx) => ctx.db as unknown as PrismaClient,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('UUID', UUIDResolver);

// Every root field needs a signed-in user unless it says otherwise (viewer).
builder.queryType({ authScopes: { signedIn: true } });
builder.mutationType({ authScopes: { signedIn: true } });

/** The signed-in user's id; the root types' auth scope guarantees there is one. */
export function viewerId(ctx: GraphQLContext): string {
  if (!ctx.viewer) throw new UnauthenticatedError();
  return ctx.viewer.id;
}
