// Limits on broker verifications (docs/verification.md): 5 per credential and
// 30 per user per minute, counted in the shared store (the database: see
// databaseLimiterFactory in src/auth/auth.ts), so they hold across instances.
// Every attempt counts, whatever the broker answers: each may reach Alpaca.
import { RateLimiterRes } from 'rate-limiter-flexible';
import { type Limit, type LimiterFactory, retryAfterSeconds } from '../auth/attempt-limiter.ts';
import { TooManyRequestsError } from '../domain/errors.ts';

export const DEFAULT_VERIFICATION_LIMITS = {
  perCredential: { max: 5, windowSeconds: 60 },
  perUser: { max: 30, windowSeconds: 60 },
} satisfies Record<string, Limit>;

export class VerificationLimiter {
  readonly #perCredential;
  readonly #perUser;
  readonly #limits;

  constructor(create: LimiterFactory, limits = DEFAULT_VERIFICATION_LIMITS) {
    this.#perCredential = create('verify:credential', limits.perCredential);
    this.#perUser = create('verify:user', limits.perUser);
    this.#limits = limits;
  }

  /**
   * Counts one verification, or throws TooManyRequestsError. The credential's
   * counter is keyed by owner too, so nobody can use up another user's.
   */
  async consume(userId: string, credentialId: string): Promise<void> {
    await take(
      this.#perCredential.consume(`${userId}:${credentialId}`),
      'this credential',
      this.#limits.perCredential.max,
    );
    await take(this.#perUser.consume(userId), 'your credentials', this.#limits.perUser.max);
  }
}

async function take(consumed: Promise<unknown>, what: string, max: number): Promise<void> {
  try {
    await consumed;
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw error;
    const retryAfter = retryAfterSeconds(error.msBeforeNext);
    throw new TooManyRequestsError(
      `At most ${max} verifications of ${what} per minute; try again in ${retryAfter} s.`,
      retryAfter,
    );
  }
}
