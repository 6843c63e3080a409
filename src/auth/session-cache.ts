// A short in-process cache of resolved sessions, so a busy client does not cost
// two session queries on every request.
//
// The bound: a session that ends anywhere (sign-out or revocation on any
// instance, a direct database change, the expired-session cleanup) is
// announced by the database to every instance (src/db/session-revocations.ts),
// which forgets that user's cached sessions. The cache serves only while that
// announcement can be trusted (`fresh`); otherwise every request asks
// better-auth, and nothing is cached. A reconnection of the listener clears
// the cache (what was revoked meanwhile is unknown). Entries also expire after
// `ttlMs` (SESSION_CACHE_TTL_MS, default 30 s, 0 turns the cache off), and
// never outlive the session's own expiry. The instance that served a
// sign-out forgets at once, without waiting for the announcement.
//
// A lookup still in flight when its user's sessions are forgotten (or the
// cache is cleared) may have read the session before it was revoked: its
// answer serves the request that asked (which began before the sign-out),
// but is not cached.
import { LRUCache } from 'lru-cache';
import type { Viewer } from './auth.ts';

/** The request's session credentials: bearer token and session cookies, as sent. */
export function sessionKey(authorization: string | null, cookie: string | null): string | undefined {
  const sessionCookies = (cookie ?? '')
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c.includes('session_token='))
    .sort()
    .join(';');
  if (!authorization && !sessionCookies) return undefined;
  return `${authorization ?? ''}\u0000${sessionCookies}`;
}

/** What a session lookup found: the user, and when the session expires. */
export interface ResolvedSession {
  viewer: Viewer;
  expiresAt: Date;
}

export interface SessionCacheOptions {
  /** Most entries. */
  max?: number;
  /** Whether revocations are being heard right now; the cache serves and fills only then (always, when absent). */
  fresh?: () => boolean;
}

export class SessionCache {
  readonly #entries: LRUCache<string, Viewer> | undefined;
  readonly #keysByUser = new Map<string, Set<string>>();
  /** Lookups in flight, each with the users forgotten since it began (bounded by concurrent requests). */
  readonly #inFlight = new Set<Set<string>>();
  readonly #fresh: () => boolean;
  /** Counts clear(): a lookup that began before one is not cached. */
  #generation = 0;

  readonly ttlMs: number;

  constructor(ttlMs: number, { max = 10_000, fresh = () => true }: SessionCacheOptions = {}) {
    this.ttlMs = ttlMs;
    this.#fresh = fresh;
    this.#entries =
      ttlMs > 0
        ? new LRUCache<string, Viewer>({
            max,
            ttl: ttlMs,
            dispose: (viewer, key) => this.#keysByUser.get(viewer.id)?.delete(key),
          })
        : undefined;
  }

  /**
   * The viewer cached under `key`, or else what `lookup` finds (null: no
   * session), cached unless the user's sessions were forgotten meanwhile.
   */
  async resolve(key: string, lookup: () => Promise<ResolvedSession | null>): Promise<Viewer | null> {
    if (!this.#entries || !this.#fresh()) return (await lookup())?.viewer ?? null;
    const cached = this.#entries.get(key);
    if (cached) return cached;
    const forgottenMeanwhile = new Set<string>();
    const generation = this.#generation;
    this.#inFlight.add(forgottenMeanwhile);
    try {
      const found = await lookup();
      if (found && !forgottenMeanwhile.has(found.viewer.id) && generation === this.#generation && this.#fresh()) {
        this.#set(key, found.viewer, found.expiresAt);
      }
      return found?.viewer ?? null;
    } finally {
      this.#inFlight.delete(forgottenMeanwhile);
    }
  }

  #set(key: string, viewer: Viewer, sessionExpiresAt: Date): void {
    if (!this.#entries) return;
    const ttl = Math.min(this.ttlMs, sessionExpiresAt.getTime() - Date.now());
    if (ttl <= 0) return;
    this.#entries.set(key, viewer, { ttl });
    let keys = this.#keysByUser.get(viewer.id);
    if (!keys) {
      keys = new Set();
      this.#keysByUser.set(viewer.id, keys);
    }
    keys.add(key);
  }

  /** Forgets every cached session, and what lookups in flight found. */
  clear(): void {
    this.#generation += 1;
    this.#entries?.clear();
    this.#keysByUser.clear();
  }

  /** Forgets every cached session of a user (after a sign-out or revocation). */
  forgetUser(userId: string): void {
    for (const forgotten of this.#inFlight) forgotten.add(userId);
    for (const key of [...(this.#keysByUser.get(userId) ?? [])]) this.#entries?.delete(key);
    this.#keysByUser.delete(userId);
  }
}
