// The GraphQL endpoint: graphql-yoga serving the Pothos schema, with the
// session resolved once per request and the RLS transaction per operation.

import type http from 'node:http';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { GraphQLError } from 'graphql';
import { createGraphQLError, createYoga, type Plugin } from 'graphql-yoga';
import type { Auth } from '../auth/auth.ts';
import type { ClientIpResolver } from '../auth/request-headers.ts';
import type { SessionCache } from '../auth/session-cache.ts';
import type { Config } from '../config/load.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import { schema } from '../schema/index.ts';
import { useBodySizeLimit } from './body-limit.ts';
import { useQueryComplexity } from './complexity.ts';
import { createContextFactory, type GraphQLContext, type VerificationDeps } from './context.ts';
import { useRequestEnvelope } from './envelope.ts';
import { createMaskError, useHiddenSuggestions } from './errors.ts';
import { useFastRead } from './fast-read.ts';
import { useOperationLog } from './operation-log.ts';
import { useRlsTransaction } from './rls-transaction.ts';
import { useSecretScrubbing } from './secret-scrubbing.ts';
import { loadTrustedDocuments, useTrustedDocuments } from './trusted-documents.ts';

export interface GraphQLDeps {
  config: Config;
  db: Database;
  auth: Auth;
  keyring: Keyring;
  sessions: SessionCache;
  logger: Logger;
  verification: VerificationDeps;
  /** The client IP by the TRUST_PROXY rules (the same resolver as the sign-in throttle's). */
  clientIp: ClientIpResolver;
  /** Metrics and tracing plugins (src/telemetry), run after ours. */
  telemetryPlugins?: Plugin[];
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
      if (!headers.has('cookie') || headers.has('authorization')) return;
      try {
        return csrf.onRequestParse?.(payload);
      } catch {
        throw createGraphQLError(
          'A request authenticated by cookie must be a JSON POST, or carry an x-graphql-yoga-csrf header.',
          { extensions: { code: 'CSRF_PREVENTED', http: { status: 403 } } },
        );
      }
    },
  };
}

/**
 * Gives graphql-armor's rejections (plain GraphQL errors) a code and the
 * limit's name, and drops the "Syntax Error: " armor puts before them: the
 * document parsed fine, it is only too big.
 */
const coded = (limit: string) => (_ctx: unknown, error: GraphQLError) => {
  error.message = error.message.replace(/^Syntax Error: /, '');
  Object.assign(error.extensions, { code: 'QUERY_LIMIT_EXCEEDED', limit, http: { status: 400 } });
};

/** What GraphiQL opens with: who am I, and what is stored (sign in at /login first). */
const GRAPHIQL_DEFAULT_QUERY = `# Sign in at /login first: GraphiQL then sends your session cookie.
# Secrets are write-only: only apiKeyHint ever comes back.
query Overview {
  viewer {
    id
    email
  }
  accounts {
    id
    accountName
    credentials(includeInactive: true) {
      id
      nickname
      credentialType
      apiKeyHint
      isActive
    }
  }
}
`;

/** POST bodies yoga can read; anything else gets a clear 415 instead of an empty one. */
const READABLE_BODIES = /^(application\/(json|graphql(\+json)?|x-www-form-urlencoded))\b/i;

function useUnsupportedMediaType(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method !== 'POST' || READABLE_BODIES.test(request.headers.get('content-type') ?? '')) return;
      endResponse(
        new fetchAPI.Response(
          JSON.stringify({
            errors: [
              {
                message: 'Send GraphQL requests as JSON: Content-Type: application/json.',
                extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' },
              },
            ],
          }),
          { status: 415, headers: { 'content-type': 'application/json; charset=utf-8' } },
        ),
      );
    },
  };
}

/** Yoga's log calls at `level`; nothing at all when the level is off (the level is set once, from config). */
const logAt = (logger: Logger, level: 'debug' | 'info' | 'warn') =>
  logger.isLevelEnabled(level) ? (...args: unknown[]) => logger[level](args.map(String).join(' ')) : () => {};

export function createGraphQLHandler({
  config,
  db,
  auth,
  keyring,
  sessions,
  logger,
  verification,
  clientIp,
  telemetryPlugins = [],
}: GraphQLDeps) {
  const { limits } = config;
  const yogaLogger = logger.child({ component: 'graphql' });
  const trusted = config.trustedDocuments === 'off' ? undefined : loadTrustedDocuments();
  if (config.trustedDocuments === 'required') {
    yogaLogger.info(
      { trustedDocuments: 'required', documents: trusted?.size },
      `TRUSTED_DOCUMENTS=required: only the SDK's ${trusted?.size} operations run, sent by hash; GraphiQL is off`,
    );
  }
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: config.graphiql && {
      title: 'Brokerage credentials API',
      credentials: 'same-origin',
      defaultQuery: GRAPHIQL_DEFAULT_QUERY,
    },
    renderGraphiQL,
    landingPage: false,
    // The GraphQL-over-HTTP draft's name for a trusted document's id.
    extraParamNames: ['documentId'],
    // useBodySizeLimit below enforces limits.bodyBytes, at less cost.
    maxRequestBodySize: false,
    // No upload in this API (useUnsupportedMediaType answers multipart with
    // 415): without the multipart parser, yoga does not test for one per request.
    multipart: false,
    // Never add details of unexpected errors to responses, in any environment.
    maskedErrors: { maskError: createMaskError(yogaLogger) },
    // A no-op at a disabled level: yoga logs at debug on every request, and
    // formatting those arguments for pino to drop costs per request.
    logging: {
      debug: logAt(yogaLogger, 'debug'),
      info: logAt(yogaLogger, 'info'),
      warn: logAt(yogaLogger, 'warn'),
      // Yoga logs the original of every error maskError rewrites: client errors
      // too, whose messages can quote input (secrets). maskError logs the
      // unexpected ones itself, so these are dropped.
      error: () => {},
    },
    // CORS is answered for every route in src/http/cors.ts.
    cors: false,
    context: createContextFactory({
      auth,
      sessions,
      keyring,
      verification,
      clientIp,
      limits: { credentialsPerAccount: limits.credentialsPerAccount },
    }),
    plugins: [
      // First: every later plugin reads the parameters it has checked.
      useRequestEnvelope(),
      useUnsupportedMediaType(),
      useBodySizeLimit(limits.bodyBytes),
      useCookieCsrfPrevention(),
      ...(trusted ? [useTrustedDocuments(config.trustedDocuments, trusted)] : []),
      // Document limits, checked once per distinct document (yoga caches
      // validation). Cost is not armor's (it ignores page sizes): see useQueryComplexity.
      EnvelopArmorPlugin({
        maxDepth: { n: limits.depth, ignoreIntrospection: true, flattenFragments: true, onReject: [coded('depth')] },
        costLimit: { enabled: false },
        maxAliases: { n: limits.aliases, onReject: [coded('aliases')] },
        maxTokens: { n: limits.tokens, onReject: [coded('tokens')] },
        maxDirectives: { n: 20, onReject: [coded('directives')] },
        // "Did you mean …" would reveal the schema where introspection is off.
        blockFieldSuggestion: { enabled: !config.graphiql },
      }),
      ...(config.graphiql ? [] : [useDisableIntrospection()]),
      ...(config.graphiql ? [] : [useHiddenSuggestions()]),
      // Before the RLS transaction opens: a refused operation sends no SQL.
      useQueryComplexity(limits.complexity),
      // Before the RLS plugin: the hot read then runs inside the transaction it opens.
      useFastRead(),
      useRlsTransaction(db),
      useSecretScrubbing(schema),
      // It feeds the request log line only, which is not written below info.
      ...(logger.isLevelEnabled('info') ? [useOperationLog()] : []),
      // Last: the tracing plugin's execute span then wraps the RLS transaction.
      ...telemetryPlugins,
    ],
  });
}

export type GraphQLHandler = ReturnType<typeof createGraphQLHandler>;
