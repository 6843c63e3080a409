// A short in-process cache of resolved sessions, so a busy client does not cost
// two session queries on every request.
//
// The bound: a session revoked through THIS process (sign-out, revoking
// sessions) is forgotten as soon as that request finishes; one revoked any
// other way (another instance, a direct database change) or expired stays
// usable here for at most `ttlMs` (SESSION_CACHE_TTL_MS, default 30 s, 0 turns
// the cache off), and never past the session's own expiry.
//
// A lookup still in flight when its user's sessions are forgotten may have
// read the session before it was revoked: its answer serves the request that
// asked (which began before the sign-out), but is not cached.
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

export class SessionCache {
  readonly #entries: LRUCache<string, Viewer> | undefined;
  readonly #keysByUser = new Map<string, Set<string>>();
  /** Lookups in flight, each with the users forgotten since it began (bounded by concurrent requests). */
  readonly #inFlight = new Set<Set<string>>();

  readonly ttlMs: number;

  constructor(ttlMs: number, max = 10_000) {
    this.ttlMs = ttlMs;
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
    const cached = this.#entries?.get(key);
    if (cached) return cached;
    if (!this.#entries) return (await lookup())?.viewer ?? null;
    const forgottenMeanwhile = new Set<string>();
    this.#inFlight.add(forgottenMeanwhile);
    try {
      const found = await lookup();
      if (found && !forgottenMeanwhile.has(found.viewer.id)) this.#set(key, found.viewer, found.expiresAt);
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

  /** Forgets every cached session of a user (after a sign-out or revocation). */
  forgetUser(userId: string): void {
    for (const forgotten of this.#inFlight) forgotten.add(userId);
    for (const key of [...(this.#keysByUser.get(userId) ?? [])]) this.#entries?.delete(key);
    this.#keysByUser.delete(userId);
  }
}
