import { describe, expect, it } from 'vitest';
import { type ResolvedSession, SessionCache } from '../../src/auth/session-cache.ts';

const alice: ResolvedSession = {
  viewer: { id: 'alice', email: 'a@x', name: null },
  expiresAt: new Date(Date.now() + 3600_000),
};

/** A lookup the test finishes by hand, counting how often the cache asked. */
function manualLookup() {
  let calls = 0;
  let finish: (found: ResolvedSession | null) => void = () => {};
  return {
    lookup: () => {
      calls += 1;
      return new Promise<ResolvedSession | null>((resolve) => {
        finish = resolve;
      });
    },
    finish: (found: ResolvedSession | null) => finish(found),
    calls: () => calls,
  };
}

describe('SessionCache', () => {
  it('caches what a lookup found', async () => {
    const cache = new SessionCache(30_000);
    const manual = manualLookup();
    const first = cache.resolve('k', manual.lookup);
    manual.finish(alice);
    expect(await first).toEqual(alice.viewer);
    expect(await cache.resolve('k', manual.lookup)).toEqual(alice.viewer);
    expect(manual.calls()).toBe(1);
  });

  it("does not cache a lookup that was in flight when the user's sessions were forgotten", async () => {
    const cache = new SessionCache(30_000);
    const manual = manualLookup();
    const pending = cache.resolve('k', manual.lookup);
    cache.forgetUser('alice');
    manual.finish(alice);
    expect(await pending).toEqual(alice.viewer);
    const next = cache.resolve('k', manual.lookup);
    expect(manual.calls()).toBe(2);
    manual.finish(null);
    expect(await next).toBeNull();
  });

  it("still caches when only another user's sessions were forgotten meanwhile", async () => {
    const cache = new SessionCache(30_000);
    const manual = manualLookup();
    const pending = cache.resolve('k', manual.lookup);
    cache.forgetUser('bob');
    manual.finish(alice);
    await pending;
    await cache.resolve('k', manual.lookup);
    expect(manual.calls()).toBe(1);
  });

  it('neither serves nor fills the cache while revocations are not heard (not fresh)', async () => {
    let fresh = true;
    const cache = new SessionCache(30_000, { fresh: () => fresh });
    const manual = manualLookup();
    const first = cache.resolve('k', manual.lookup);
    manual.finish(alice);
    await first;
    fresh = false;
    // Cached, but not served: every request asks.
    const asked = cache.resolve('k', manual.lookup);
    expect(manual.calls()).toBe(2);
    manual.finish(null);
    expect(await asked).toBeNull();
    // And what it finds meanwhile is not kept.
    const other = cache.resolve('other', manual.lookup);
    manual.finish(alice);
    await other;
    fresh = true;
    const again = cache.resolve('other', manual.lookup);
    expect(manual.calls()).toBe(4);
    manual.finish(alice);
    await again;
    // Fresh again: served from memory.
    expect(await cache.resolve('k', manual.lookup)).toEqual(alice.viewer);
    expect(manual.calls()).toBe(4);
  });

  it('does not cache a lookup that was in flight when it went stale or was cleared', async () => {
    let fresh = true;
    const cache = new SessionCache(30_000, { fresh: () => fresh });
    const manual = manualLookup();
    const staleMeanwhile = cache.resolve('k', manual.lookup);
    fresh = false;
    manual.finish(alice);
    await staleMeanwhile;
    fresh = true;
    const clearedMeanwhile = cache.resolve('k', manual.lookup);
    cache.clear();
    manual.finish(alice);
    await clearedMeanwhile;
    const next = cache.resolve('k', manual.lookup);
    expect(manual.calls()).toBe(3);
    manual.finish(alice);
    await next;
  });

  it('forgets everything on clear()', async () => {
    const cache = new SessionCache(30_000);
    const manual = manualLookup();
    const first = cache.resolve('k', manual.lookup);
    manual.finish(alice);
    await first;
    cache.clear();
    const next = cache.resolve('k', manual.lookup);
    expect(manual.calls()).toBe(2);
    manual.finish(null);
    expect(await next).toBeNull();
  });

  it('caches nothing with a TTL of 0', async () => {
    const cache = new SessionCache(0);
    const manual = manualLookup();
    for (let i = 1; i <= 2; i += 1) {
      const pending = cache.resolve('k', manual.lookup);
      manual.finish(alice);
      await pending;
      expect(manual.calls()).toBe(i);
    }
  });
});
