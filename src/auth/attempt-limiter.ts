// Throttling of failed sign-ins and sign-ups, per client IP and per email.
//
// Only failures count: a user who signs in correctly is never slowed down,
// while guessing passwords (or probing which emails exist) is stopped after a
// few tries. Counters live in a shared store (the database in production: see
// createAttemptLimiter in auth.ts) so the limits hold across server processes.
import type { RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';

export type AttemptKind = 'sign-in' | 'sign-up';

export interface Limit {
  /** Failures allowed within the window. */
  max: number;
  windowSeconds: number;
}

export interface AttemptLimits {
  perIp: Limit;
  perEmail: Limit;
}

export const DEFAULT_ATTEMPT_LIMITS: Record<AttemptKind, AttemptLimits> = {
  'sign-in': { perIp: { max: 20, windowSeconds: 60 }, perEmail: { max: 10, windowSeconds: 15 * 60 } },
  'sign-up': { perIp: { max: 20, windowSeconds: 60 }, perEmail: { max: 5, windowSeconds: 60 * 60 } },
};

/** A Retry-After in whole seconds, at least 1, for a limiter's msBeforeNext. */
export function retryAfterSeconds(msBeforeNext: number): number {
  return Math.max(1, Math.ceil(msBeforeNext / 1000));
}

export type LimiterFactory = (name: string, limit: Limit) => RateLimiterAbstract;

interface Counters {
  perIp: RateLimiterAbstract;
  perEmail: RateLimiterAbstract;
}

export class AttemptLimiter {
  readonly #counters: Record<AttemptKind, Counters>;

  constructor(create: LimiterFactory, limits: Record<AttemptKind, AttemptLimits> = DEFAULT_ATTEMPT_LIMITS) {
    const counters = (kind: AttemptKind): Counters => ({
      perIp: create(`${kind}:ip`, limits[kind].perIp),
      perEmail: create(`${kind}:email`, limits[kind].perEmail),
    });
    this.#counters = { 'sign-in': counters('sign-in'), 'sign-up': counters('sign-up') };
  }

  /** Seconds to wait before trying again, or null when the attempt may proceed. */
  async retryAfter(kind: AttemptKind, ip: string, email: string | undefined): Promise<number | null> {
    const { perIp, perEmail } = this.#counters[kind];
    const states = await Promise.all([perIp.get(ip), email ? perEmail.get(normalizeEmail(email)) : null]);
    const blocked = states.filter(
      (s, i): s is RateLimiterRes => s !== null && s.consumedPoints >= (i === 0 ? perIp : perEmail).points,
    );
    if (blocked.length === 0) return null;
    return retryAfterSeconds(Math.max(...blocked.map((s) => s.msBeforeNext)));
  }

  async recordFailure(kind: AttemptKind, ip: string, email: string | undefined): Promise<void> {
    const { perIp, perEmail } = this.#counters[kind];
    // penalty() counts without rejecting: the check happens in retryAfter().
    await Promise.all([perIp.penalty(ip), email ? perEmail.penalty(normalizeEmail(email)) : null]);
  }

  /** A successful sign-in clears the email's count (not the IP's). */
  async recordSuccess(kind: AttemptKind, email: string | undefined): Promise<void> {
    if (email) await this.#counters[kind].perEmail.delete(normalizeEmail(email));
  }
}

function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
