// The rules of the attempt limiter on an in-memory store: which client key an
// address gets, which counters an attempt takes, what a success gives back.
import fc from 'fast-check';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { describe, expect, it } from 'vitest';
import {
  AttemptLimiter,
  clientKey,
  DEFAULT_ATTEMPT_LIMITS,
  emailKey,
  givePointBack,
  type LimiterFactory,
} from '../../src/auth/attempt-limiter.ts';
import { deviceCookieValue, deviceFor, newDeviceId } from '../../src/auth/device-cookie.ts';

const memory: LimiterFactory = (name, limit) =>
  new RateLimiterMemory({ keyPrefix: name, points: limit.max, duration: limit.windowSeconds });

describe('clientKey', () => {
  it('keeps IPv4 addresses, maps IPv4-mapped IPv6 to IPv4, and keys IPv6 by its /64', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:DB8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('unknown')).toBe('unknown');
  });

  it('gives every address of a /64 one key and addresses of different /64s different keys', () => {
    const hextet = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(
        fc.array(hextet, { minLength: 8, maxLength: 8 }),
        fc.array(hextet, { minLength: 4, maxLength: 4 }),
        (a, tail) => {
          const ip = (parts: number[]) => parts.map((p) => p.toString(16)).join(':');
          const prefix = a.slice(0, 4);
          expect(clientKey(ip(a))).toBe(clientKey(ip([...prefix, ...tail])));
          const other = [...prefix];
          other[3] = ((other[3] as number) + 1) % 0x10000;
          expect(clientKey(ip([...other, ...tail]))).not.toBe(clientKey(ip(a)));
        },
      ),
    );
  });
});

describe('emailKey', () => {
  it('normalises case and spaces, and hashes a value too long for an index key', () => {
    expect(emailKey('  Ada@Example.COM ')).toBe('ada@example.com');
    const long = `${'a'.repeat(5000)}@example.com`;
    expect(emailKey(long)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(emailKey(long.toUpperCase())).toBe(emailKey(long));
  });
});

describe('AttemptLimiter', () => {
  const limits = {
    'sign-in': { perClient: { max: 4, windowSeconds: 60 }, perSubjectAndClient: { max: 2, windowSeconds: 60 } },
  };

  it('throttles the (email, client) pair and the client, never the email for other clients', async () => {
    const limiter = new AttemptLimiter(memory, limits);
    expect(await limiter.take('sign-in', '10.0.0.1', 'ada@example.com')).toBeNull();
    expect(await limiter.take('sign-in', '10.0.0.1', 'ADA@example.com')).toBeNull();
    expect(await limiter.take('sign-in', '10.0.0.1', 'ada@example.com')).toBeGreaterThan(0);
    // Another client for the same email is clean.
    expect(await limiter.take('sign-in', '10.0.0.2', 'ada@example.com')).toBeNull();
    // The first client is at 3 of 4: one more email, then nothing.
    expect(await limiter.take('sign-in', '10.0.0.1', 'bob@example.com')).toBeNull();
    expect(await limiter.take('sign-in', '10.0.0.1', 'eve@example.com')).toBeGreaterThan(0);
  });

  it('gives a success its client point back and clears its pair, without a credit', async () => {
    const limiter = new AttemptLimiter(memory, limits);
    for (let i = 0; i < 10; i += 1) {
      expect(await limiter.take('sign-in', '10.0.0.3', 'ada@example.com')).toBeNull();
      await limiter.succeeded('sign-in', '10.0.0.3', 'ada@example.com');
    }
    // A success without a point taken (its window ended meanwhile) leaves 0, not -1.
    await limiter.succeeded('sign-in', '10.0.0.4', 'ada@example.com');
    for (let i = 0; i < 4; i += 1) expect(await limiter.take('sign-in', '10.0.0.4', `u${i}@example.com`)).toBeNull();
    expect(await limiter.take('sign-in', '10.0.0.4', 'u9@example.com')).toBeGreaterThan(0);
  });

  it('counts a device on its own counter while under its limit, then on the client; a device success gives no client point back', async () => {
    const limiter = new AttemptLimiter(memory, {
      'sign-in': { ...limits['sign-in'], perDevice: { max: 2, windowSeconds: 60 } },
    });
    const ip = '10.0.0.5';
    // The client is used up by others.
    for (let i = 0; i < 4; i += 1) await limiter.take('sign-in', ip, `x${i}@example.com`);
    expect(await limiter.take('sign-in', ip, 'ada@example.com')).toBeGreaterThan(0);
    // The device still may, twice; then the client's (spent) limits apply.
    expect(await limiter.take('sign-in', ip, 'ada@example.com', 'dev1')).toBeNull();
    expect(await limiter.take('sign-in', ip, 'ada@example.com', 'dev1')).toBeNull();
    expect(await limiter.take('sign-in', ip, 'ada@example.com', 'dev1')).toBeGreaterThan(0);
    // A success with the device clears the device only.
    await limiter.succeeded('sign-in', ip, 'ada@example.com', 'dev1');
    expect(await limiter.take('sign-in', ip, 'bob@example.com')).toBeGreaterThan(0);
    expect(await limiter.take('sign-in', ip, 'ada@example.com', 'dev1')).toBeNull();
  });

  it('has the documented defaults', () => {
    expect(DEFAULT_ATTEMPT_LIMITS).toEqual({
      'sign-in': {
        perClient: { max: 20, windowSeconds: 60 },
        perSubjectAndClient: { max: 10, windowSeconds: 900 },
        perDevice: { max: 10, windowSeconds: 900 },
      },
      'sign-up': { perClient: { max: 20, windowSeconds: 60 }, perSubjectAndClient: { max: 5, windowSeconds: 3600 } },
    });
  });
});

describe('givePointBack', () => {
  it('never leaves a negative count', async () => {
    const limiter = memory('t', { max: 1, windowSeconds: 60 });
    await givePointBack(limiter, 'k');
    await limiter.consume('k');
    await expect(limiter.consume('k')).rejects.toMatchObject({ consumedPoints: 2 });
  });
});

describe('device cookie values', () => {
  it('name a device for the email they were issued for, and for no other', () => {
    const id = newDeviceId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const value = deviceCookieValue(id, 'Ada@Example.com');
    expect(value).not.toContain('ada');
    expect(deviceFor(value, 'ada@example.com')).toBe(id);
    expect(deviceFor(value, 'eve@example.com')).toBeUndefined();
    expect(deviceFor(value, undefined)).toBeUndefined();
    // Signature wrong (false) or cookie absent (null): no device.
    expect(deviceFor(false, 'ada@example.com')).toBeUndefined();
    expect(deviceFor(null, 'ada@example.com')).toBeUndefined();
    expect(deviceFor(`${value}:x`, 'ada@example.com')).toBeUndefined();
  });
});
