// The Pothos schema builder: plugins and scalars (the context type is in
// src/graphql/context.ts).
// Each GraphQL type lives in its own module next to this one.
import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { DateResolver, DateTimeResolver, UUIDResolver } from 'graphql-scalars';
import { runtimeEnv } from '../config/load.ts';
import type { Decimal } from '../domain/decimal.ts';
import { UnauthenticatedError } from '../domain/errors.ts';
import type PrismaTypes from '../generated/pothos-types.ts';
import { getDatamodel } from '../generated/pothos-types.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { EDGES_COMPLEXITY, PAGE_INFO_COMPLEXITY, UNCAPPED_LIST_MULTIPLIER } from './complexity.ts';
import { DecimalScalar } from './decimal-scalar.ts';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  PrismaTypes: PrismaTypes;
  AuthScopes: { signedIn: boolean };
  DefaultFieldNullability: false;
  // Connections as docs/graphql.md prints them: [Edge!]! with non-null nodes.
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    UUID: { Input: string; Output: string };
    // A calendar day: resolvers return "YYYY-MM-DD" (or a Date at UTC midnight).
    Date: { Input: Date; Output: Date | string };
    // Resolvers may return Prisma's Decimal too: the scalar converts it.
    Decimal: { Input: Decimal; Output: Decimal | string };
  };
}>({
  plugins: [ScopeAuthPlugin, ComplexityPlugin, RelayPlugin, PrismaPlugin],
  defaultFieldNullability: false,
  // Field complexities only (see ./complexity.ts). The limit is checked before
  // execution by src/graphql/complexity.ts, not by the plugin's wrapper around
  // root resolvers: that runs once the operation's transaction is open.
  complexity: { defaultComplexity: 1, defaultListMultiplier: UNCAPPED_LIST_MULTIPLIER, disabled: true },
  // Only the connection types (PageInfo, edges, cursors) are used: no Node
  // interface, node/nodes query fields or global ids, so the rest of the
  // schema stays as it was.
  relay: {
    cursorType: 'String',
    clientMutationId: 'omit',
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: false, complexity: EDGES_COMPLEXITY },
    pageInfoFieldOptions: { complexity: PAGE_INFO_COMPLEXITY },
    nodeFieldOptions: { nullable: false },
  },
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
    // A prismaField resolver that forgets to spread `query` loses relation
    // loading and selections; fail loudly in development and tests.
    onUnusedQuery: runtimeEnv === 'production' ? null : 'error',
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('UUID', UUIDResolver);
builder.addScalarType('Date', DateResolver);
builder.addScalarType('Decimal', DecimalScalar);

// Every root field needs a signed-in user unless it says otherwise (viewer).
builder.queryType({ authScopes: { signedIn: true } });
builder.mutationType({ authScopes: { signedIn: true } });

/** The signed-in user's id; the root types' auth scope guarantees there is one. */
export function viewerId(ctx: GraphQLContext): string {
  if (!ctx.viewer) throw new UnauthenticatedError();
  return ctx.viewer.id;
}
