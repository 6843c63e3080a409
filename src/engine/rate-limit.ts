// Limits of the engine API, all in the shared counters table
// (auth_rate_limits, rate-limiter-flexible's store, which the sign-in
// throttle uses too), so they hold across instances:
//
// - ENGINE_RATE_LIMIT: forwarded (and guardrail-refused) requests per
//   credential per minute, and as many dry runs apart from them; the point is
//   taken in the statement that writes the request's event
//   (engine_take_rate_point, prisma/migrations/20261207000100_engine_admission),
//   so concurrent requests cannot overshoot it and a request refused before
//   its event costs nothing;
// - GRANTS_LIST_RATE_LIMIT (grant-list.ts): listings per client per minute;
// - failed client authentications at the token endpoint (below).
//
// The first two are taken in SQL rather than with rate-limiter-flexible
// because they must be taken in the same statement as the event they count:
// no library takes a point inside someone else's transaction.
import type { AttemptLimiter, AttemptLimits } from '../auth/attempt-limiter.ts';

/**
 * Failed client authentications at the token endpoint, counted like failed
 * sign-ins (per client address and per (client id, address), taken before
 * the secret is checked): a 256-bit secret cannot be guessed, but each try
 * costs a database read, and a per-client-id count alone would let anyone
 * lock an engine out of its tokens.
 */
export const TOKEN_ATTEMPT_LIMITS: Record<'engine-token', AttemptLimits> = {
  'engine-token': {
    perClient: { max: 20, windowSeconds: 60 },
    perSubjectAndClient: { max: 10, windowSeconds: 15 * 60 },
  },
};

export type TokenAttemptLimiter = AttemptLimiter<'engine-token'>;
