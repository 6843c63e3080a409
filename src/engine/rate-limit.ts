// ENGINE_RATE_LIMIT (docs/engines.md): forwarded requests per credential
// per minute, counted in the shared store (the database table the sign-in
// throttle and verification limits use: databaseLimiterFactory), so the limit
// holds across instances. A point is taken before the request is forwarded,
// so concurrent requests cannot overshoot it; one whose event could not be
// written after all gets its point back.
import { RateLimiterRes } from 'rate-limiter-flexible';
import {
  type AttemptLimiter,
  type AttemptLimits,
  givePointBack,
  type LimiterFactory,
  retryAfterSeconds,
} from '../auth/attempt-limiter.ts';

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

export class EngineRateLimiter {
  readonly max: number;
  readonly #perCredential;

  constructor(create: LimiterFactory, max: number) {
    this.max = max;
    this.#perCredential = create('engine:credential', { max, windowSeconds: 60 });
  }

  /** Takes one point: null when allowed, else the seconds to wait. */
  async take(credentialId: string): Promise<number | null> {
    try {
      await this.#perCredential.consume(credentialId);
      return null;
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      return retryAfterSeconds(error.msBeforeNext);
    }
  }

  /** Gives back the point of a request that was not forwarded after all. */
  async giveBack(credentialId: string): Promise<void> {
    await givePointBack(this.#perCredential, credentialId);
  }
}
