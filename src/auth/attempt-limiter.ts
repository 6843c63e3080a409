// Throttling of failed attempts without lockout: sign-ins, sign-ups, and the
// engine token endpoint's client authentications.
//
// Failures are counted per client and per (subject, client) pair, never per
// subject alone. The subject is what the attempt names: an email for sign-in
// and sign-up, a client id at the token endpoint. However many attempts for a
// subject fail elsewhere, the right password from a client that has not been
// failing signs in at once (the pattern rate-limiter-flexible documents for
// login endpoints). A client is its IP address, IPv6 by /64 (clientKey).
//
// Points are taken before the password is checked (take), so a burst of
// concurrent attempts is throttled like the same attempts sent one by one; a
// success gives the client's point back and clears the pair (succeeded).
// Counters live in a shared store (the database in production: see
// databaseLimiterFactory in auth.ts) so the limits hold across processes.
import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';

export type AttemptKind = 'sign-in' | 'sign-up';

export interface Limit {
  /** Failures allowed within the window. */
  max: number;
  windowSeconds: number;
}

export interface AttemptLimits {
  perClient: Limit;
  perSubjectAndClient: Limit;
  /** Failures from a browser holding a device cookie for the email (device-cookie.ts). */
  perDevice?: Limit;
}

export const DEFAULT_ATTEMPT_LIMITS: Record<AttemptKind, AttemptLimits> = {
  'sign-in': {
    perClient: { max: 20, windowSeconds: 60 },
    perSubjectAndClient: { max: 10, windowSeconds: 15 * 60 },
    perDevice: { max: 10, windowSeconds: 15 * 60 },
  },
  'sign-up': { perClient: { max: 20, windowSeconds: 60 }, perSubjectAndClient: { max: 5, windowSeconds: 60 * 60 } },
};

/** A Retry-After in whole seconds, at least 1, for a limiter's msBeforeNext. */
export function retryAfterSeconds(msBeforeNext: number): number {
  return Math.max(1, Math.ceil(msBeforeNext / 1000));
}

/**
 * The counter key of a client address: IPv4 as is, IPv6 by its /64 (one
 * subscriber's usual allocation, so a host cannot step through its 2^64
 * addresses to dodge the limit), IPv4-mapped IPv6 as the IPv4 address.
 */
export function clientKey(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((p) => p.toString(16)).join(':')}::/64`;
}

/**
 * The counter key of an email: trimmed and lower-cased like better-auth
 * does; an over-long value (better-auth refuses it anyway) by its SHA-256,
 * so no key exceeds what the store's primary-key index accepts.
 */
export function emailKey(email: string): string {
  const normal = email.trim().toLowerCase();
  return normal.length <= 254 ? normal : `sha256:${createHash('sha256').update(normal).digest('hex')}`;
}

/**
 * Takes one point from each limiter at once (one round trip each, in
 * parallel): null when every one allowed it, else the longest wait in
 * seconds. A refused attempt's points stay taken; they do not lengthen a
 * window, which starts at a key's first point.
 */
export async function takePoints(taken: [RateLimiterAbstract, string][]): Promise<number | null> {
  const results = await Promise.allSettled(taken.map(([limiter, key]) => limiter.consume(key)));
  let wait: number | null = null;
  for (const result of results) {
    if (result.status === 'fulfilled') continue;
    if (!(result.reason instanceof RateLimiterRes)) throw result.reason;
    wait = Math.max(wait ?? 0, retryAfterSeconds(result.reason.msBeforeNext));
  }
  return wait;
}

/**
 * Gives back a point taken by takePoints. If the key's window ended in
 * between, the store starts a new one at -1 (a free attempt): that is
 * raised back to 0, by an increment, so concurrent callers err on the strict side.
 */
export async function givePointBack(limiter: RateLimiterAbstract, key: string): Promise<void> {
  const res = await limiter.reward(key, 1);
  if (res.consumedPoints < 0) await limiter.penalty(key, -res.consumedPoints);
}

export type LimiterFactory = (name: string, limit: Limit) => RateLimiterAbstract;

interface Counters {
  perClient: RateLimiterAbstract;
  perSubjectAndClient: RateLimiterAbstract;
  perDevice?: RateLimiterAbstract;
}

/** Counters for each kind of attempt it is given limits for. */
export class AttemptLimiter<Kind extends string = AttemptKind> {
  readonly #counters: Record<Kind, Counters>;

  constructor(create: LimiterFactory, limits: Record<Kind, AttemptLimits>) {
    const kinds = Object.keys(limits) as Kind[];
    this.#counters = Object.fromEntries(
      kinds.map((kind) => [
        kind,
        {
          perClient: create(`${kind}:ip`, limits[kind].perClient),
          // Stored as "email+ip" whatever the subject: counters keep their keys across versions.
          perSubjectAndClient: create(`${kind}:email+ip`, limits[kind].perSubjectAndClient),
          ...(limits[kind].perDevice ? { perDevice: create(`${kind}:device`, limits[kind].perDevice) } : {}),
        },
      ]),
    ) as Record<Kind, Counters>;
  }

  /**
   * Counts the attempt as a failure before it is checked: null when it may
   * proceed, else the seconds to wait. Without a subject only the client
   * counts. With a device (a valid device cookie for this email) only the
   * device counts while it is under its limit; past it, the client's counters.
   */
  async take(kind: Kind, ip: string, subject: string | undefined, device?: string): Promise<number | null> {
    const { perClient, perSubjectAndClient, perDevice } = this.#counters[kind];
    if (device && perDevice && (await takePoints([[perDevice, device]])) === null) return null;
    const client = clientKey(ip);
    return takePoints([
      [perClient, client],
      ...(subject ? [[perSubjectAndClient, pairKey(subject, client)] as [RateLimiterAbstract, string]] : []),
    ]);
  }

  /**
   * The attempt succeeded: its points are given back. With a device, the
   * device's count starts afresh and the client's is left alone (no client
   * point was taken, and giving one back would let a client with a cookie
   * for its own account wipe out failures it made for others).
   */
  async succeeded(kind: Kind, ip: string, subject: string | undefined, device?: string): Promise<void> {
    const { perClient, perSubjectAndClient, perDevice } = this.#counters[kind];
    const client = clientKey(ip);
    await Promise.all([
      device && perDevice ? perDevice.delete(device) : givePointBack(perClient, client),
      subject ? perSubjectAndClient.delete(pairKey(subject, client)) : null,
    ]);
  }
}

/** A subject is normalised as an email is (trimmed, lower-cased), a client id too. */
function pairKey(subject: string, client: string): string {
  return `${emailKey(subject)}|${client}`;
}
