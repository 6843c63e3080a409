// The GraphQL endpoint: graphql-yoga serving the Pothos schema, with the
// session resolved once per request and the RLS transaction per operation.
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, type Plugin } from 'graphql-yoga';
import type http from 'node:http';
import { getViewer, type Auth } from '../auth/auth.ts';
import type { Config } from '../config.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { GraphQLContext } from '../schema/builder.ts';
import { schema } from '../schema/index.ts';
import { createMaskError } from './errors.ts';
import { unscopedDb, useRlsTransaction } from './rls-transaction.ts';
import { useSecretScrubbing } from './secret-scrubbing.ts';

export interface GraphQLDeps {
  config: Config;
  db: Database;
  auth: Auth;
  keyring: Keyring;
  logger: Logger;
}

interface ServerContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
}

/**
 * CSRF protection where it matters: only a cookie can make a browser send
 * credentials on a request another site triggers. For cookie requests we apply
 * the Guild's rule (no simple requests without a custom header); bearer-token
 * and anonymous requests carry no ambient credentials and are left alone.
 */
function useCookieCsrfPrevention(): Plugin {
  const csrf = useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight'] });
  return {
    onRequestParse(payload) {
      const { headers } = payload.request;
      if (headers.has('cookie') && !headers.has('authorization')) return csrf.onRequestParse?.(payload);
    },
  };
}

export function createGraphQLHandler({ config, db, auth, keyring, logger }: GraphQLDeps) {
  const yogaLogger = logger.child({ component: 'graphql' });
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: config.graphiql && { title: 'Brokerage credentials API', credentials: 'same-origin' },
    renderGraphiQL,
    landingPage: false,
    // Never add details of unexpected errors to responses, in any environment.
    maskedErrors: { maskError: createMaskError(yogaLogger) },
    logging: {
      debug: (...args) => yogaLogger.debug(args.map(String).join(' ')),
      info: (...args) => yogaLogger.info(args.map(String).join(' ')),
      warn: (...args) => yogaLogger.warn(args.map(String).join(' ')),
      // Yoga logs the original of every error maskError rewrites: client errors
      // too, whose messages can quote input (secrets). maskError logs the
      // unexpected ones itself, so these are dropped.
      error: () => {},
    },
    cors: {
      origin: config.auth.trustedOrigins,
      credentials: true,
      allowedHeaders: ['content-type', 'authorization', 'x-graphql-yoga-csrf', 'apollo-require-preflight'],
      methods: ['GET', 'POST', 'OPTIONS'],
    },
    // The one place the GraphQL context is built.
    context: async ({ request }) => ({ viewer: await getViewer(auth, request.headers), db: unscopedDb, keyring }),
    plugins: [
      useCookieCsrfPrevention(),
      ...(config.graphiql ? [] : [useDisableIntrospection()]),
      useRlsTransaction(db),
      useSecretScrubbing(),
    ],
  });
}

export type GraphQLHandler = ReturnType<typeof createGraphQLHandler>;
