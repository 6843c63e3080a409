// Authentication: better-auth with email and password, sessions in the same
// database (its own tables, reached through the unscoped client; no user data
// lives there), and the bearer plugin for programs that cannot keep cookies.
import { betterAuth } from 'better-auth';
import { prismaAdapter } from 'better-auth/adapters/prisma';
import { APIError, createAuthMiddleware } from 'better-auth/api';
import { bearer } from 'better-auth/plugins/bearer';
import { RateLimiterPrisma } from 'rate-limiter-flexible';
import type { Config } from '../config/load.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { type AttemptKind, AttemptLimiter, DEFAULT_ATTEMPT_LIMITS, type LimiterFactory } from './attempt-limiter.ts';
import {
  DEVICE_COOKIE,
  DEVICE_COOKIE_MAX_AGE_SECONDS,
  deviceCookieValue,
  deviceFor,
  newDeviceId,
} from './device-cookie.ts';
import { CLIENT_IP_HEADER } from './request-headers.ts';
import { type SessionCache, sessionKey } from './session-cache.ts';

/** The signed-in user, as GraphQL's `viewer` shows it. */
export interface Viewer {
  id: string;
  email: string;
  name: string | null;
}

const THROTTLED_PATHS: Record<string, AttemptKind> = {
  '/sign-in/email': 'sign-in',
  '/sign-up/email': 'sign-up',
};

export interface AuthDeps {
  config: Config;
  prisma: PrismaClient;
  logger: Logger;
  /** Overrides the database-backed counters (tests). */
  limiterFactory?: LimiterFactory;
}

/**
 * Counters in the database (auth_rate_limits, not user data: keys and counts
 * only), shared by every server process. Also used by the verification limits.
 */
/**
 * better-auth logs its refusals of a client's request (a cross-site origin,
 * a foreign callback URL, a cross-site navigation sign-in: CSRF protection
 * doing its job, answered 403) at error level; they are the client's fault,
 * not the server's, so they are warnings here and error stays for faults.
 */
const CLIENT_REFUSALS =
  /^(Invalid (origin|callbackURL|redirectURL|errorCallbackURL|newUserCallbackURL)\b|Blocked cross-site)/;

export function betterAuthLogLevel<L extends 'debug' | 'info' | 'warn' | 'error'>(
  level: L,
  message: string,
): L | 'warn' {
  return level === 'error' && CLIENT_REFUSALS.test(message) ? 'warn' : level;
}

export function databaseLimiterFactory(prisma: PrismaClient): LimiterFactory {
  return (name, limit) =>
    new RateLimiterPrisma({
      storeClient: prisma,
      tableName: 'authRateLimit',
      keyPrefix: name,
      points: limit.max,
      duration: limit.windowSeconds,
    });
}

export function createAuth({ config, prisma, logger, limiterFactory }: AuthDeps) {
  const attempts = new AttemptLimiter(limiterFactory ?? databaseLimiterFactory(prisma), DEFAULT_ATTEMPT_LIMITS);

  const throttled = (path: string | undefined) => (path ? THROTTLED_PATHS[path] : undefined);
  const emailOf = (body: unknown) =>
    typeof (body as { email?: unknown } | undefined)?.email === 'string'
      ? (body as { email: string }).email
      : undefined;
  const ipOf = (headers: Headers | undefined) => headers?.get(CLIENT_IP_HEADER) ?? 'unknown';
  // Sign-ins only: the device id of a valid device cookie issued for this email.
  const deviceOf = async (
    ctx: { getSignedCookie(name: string, secret: string): Promise<string | false | null>; context: { secret: string } },
    kind: AttemptKind,
    email: string | undefined,
  ) =>
    kind === 'sign-in' ? deviceFor(await ctx.getSignedCookie(DEVICE_COOKIE, ctx.context.secret), email) : undefined;
  const secureCookies = new URL(config.auth.baseURL).protocol === 'https:';

  return betterAuth({
    appName: 'Brokerage credentials API',
    baseURL: config.auth.baseURL,
    basePath: '/api/auth',
    secret: config.auth.secret,
    trustedOrigins: config.auth.trustedOrigins,
    database: prismaAdapter(prisma, { provider: 'postgresql' }),
    // Our trading account is UserAccount; better-auth's login methods are AuthAccount.
    account: { modelName: 'authAccount' },
    emailAndPassword: { enabled: true, autoSignIn: true, minPasswordLength: 8, maxPasswordLength: 128 },
    plugins: [bearer({ requireSignature: true })],
    // better-auth's own limiter counts every request (3 sign-ins per 10 s by
    // default), successes too; ours counts failures per client and per
    // (email, client), in the database (see attempt-limiter.ts).
    rateLimit: { enabled: false },
    advanced: { ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] } },
    telemetry: { enabled: false },
    // better-auth's own spans (route and operation names only) when tracing
    // is on; off, it would load @opentelemetry/api for no-op spans.
    experimental: { instrumentation: { enabled: config.tracing !== undefined } },
    // Unexpected errors (an unreachable database...) go to our HTTP layer,
    // which logs them without request data and answers 503/500 as JSON.
    onAPIError: { throw: true },
    logger: {
      log: (level, message) => logger[betterAuthLogLevel(level, message)]({ component: 'better-auth' }, message),
    },
    hooks: {
      // The point is taken before better-auth checks the password (consume
      // first), so concurrent attempts cannot all pass a check made before
      // any of them is counted; a success gives it back.
      before: createAuthMiddleware(async (ctx) => {
        const kind = throttled(ctx.path);
        if (!kind) return;
        const email = emailOf(ctx.body);
        const wait = await attempts.take(kind, ipOf(ctx.request?.headers), email, await deviceOf(ctx, kind, email));
        if (wait !== null) {
          throw new APIError(
            'TOO_MANY_REQUESTS',
            { message: `Too many failed attempts. Try again in ${wait} seconds.`, code: 'TOO_MANY_REQUESTS' },
            { 'Retry-After': String(wait) },
          );
        }
      }),
      after: createAuthMiddleware(async (ctx) => {
        const kind = throttled(ctx.path);
        if (!kind || ctx.context.returned instanceof APIError) return;
        const email = emailOf(ctx.body);
        const device = await deviceOf(ctx, kind, email);
        await attempts.succeeded(kind, ipOf(ctx.request?.headers), email, device);
        if (kind === 'sign-in' && email) {
          await ctx.setSignedCookie(
            DEVICE_COOKIE,
            deviceCookieValue(device ?? newDeviceId(), email),
            ctx.context.secret,
            {
              httpOnly: true,
              sameSite: 'strict',
              secure: secureCookies,
              path: '/api/auth',
              maxAge: DEVICE_COOKIE_MAX_AGE_SECONDS,
            },
          );
        }
      }),
    },
  });
}

export type Auth = ReturnType<typeof createAuth>;

/**
 * Resolves the session of a request (cookie or bearer) into the signed-in
 * user, or null. Requests without credentials cost nothing; others hit the
 * session cache first (see session-cache.ts for its bound).
 */
export async function getViewer(auth: Auth, headers: Headers, cache: SessionCache): Promise<Viewer | null> {
  const key = sessionKey(headers.get('authorization'), headers.get('cookie'));
  if (!key) return null;
  return cache.resolve(key, async () => {
    const session = await auth.api.getSession({ headers });
    if (!session) return null;
    return {
      viewer: { id: session.user.id, email: session.user.email, name: session.user.name || null },
      expiresAt: new Date(session.session.expiresAt),
    };
  });
}
