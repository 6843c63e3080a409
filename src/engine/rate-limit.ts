// ENGINE_RATE_LIMIT (contract section 11): forwarded requests per credential
// per minute, counted in the shared store (the database table the sign-in
// throttle and verification limits use: databaseLimiterFactory), so the limit
// holds across instances. A point is taken before the request is forwarded,
// so concurrent requests cannot overshoot it; one whose event could not be
// written after all gets its point back.
import { RateLimiterRes } from 'rate-limiter-flexible';
import { type LimiterFactory, retryAfterSeconds } from '../auth/attempt-limiter.ts';

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
    await this.#perCredential.reward(credentialId, 1);
  }
}
