// Throttling without lockout, taken before the check (docs/security.md):
// failures from other clients never stop the right password from a
// clean client; a burst of concurrent failures gets no more password checks
// than the limit; the engine token endpoint counts failed client
// authentications the same way. Clients are told apart by X-Forwarded-For
// through TRUST_PROXY=loopback, as behind a reverse proxy.
import { describe, expect, it } from 'vitest';
import { rawSignIn, rawSignUp, type Session, signUp, uniqueEmail } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { registerClient } from '../support/engine.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { startServer } from '../support/server.ts';
import { countStatements } from '../support/statement-counter.ts';

const from = (ip: string) => ({ 'x-forwarded-for': ip });

// The statements that read a password hash: better-auth's sign-in loads the
// user's credential account (auth_accounts.password) right before it checks it.
let hashReads = 0;
const server = useInProcessServer({
  env: { TRUST_PROXY: 'loopback' },
  instrument: countStatements((sql) => {
    if (/^\s*SELECT\b/i.test(sql) && /"auth_accounts"/.test(sql)) hashReads += 1;
  }),
});

describe(`no lockout (${dbKind})`, () => {
  it('signs in at once from a fourth address after 30 failures for the email from three others', async () => {
    const victim = await signUp(server.url);
    for (const ip of ['10.1.0.1', '10.1.0.2', '10.1.0.3']) {
      for (let i = 0; i < 10; i += 1) {
        expect((await rawSignIn(server.url, victim.email, `wrong ${i}`, from(ip))).status, `${ip} #${i}`).toBe(401);
      }
      // Each failing client is throttled for this email (per email and client).
      const blocked = await rawSignIn(server.url, victim.email, victim.password, from(ip));
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(800);
    }
    // The throttle never delays: an attempt is refused (429) or checked at once.
    const res = await rawSignIn(server.url, victim.email, victim.password, from('10.1.0.4'));
    expect(res.status).toBe(200);
    expect(res.headers.get('retry-after')).toBeNull();
  });

  it('still answers 429 to one client after 20 failures across emails, and counts an IPv6 /64 as one client', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      // Twenty-one addresses of one /64.
      statuses.push(
        (await rawSignIn(server.url, uniqueEmail('guess'), 'password123', from(`2001:db8:5:6::${i + 1}`))).status,
      );
    }
    expect(statuses).toEqual([...Array(20).fill(401), 429]);
    // The next /64 is another client.
    expect((await rawSignIn(server.url, uniqueEmail('guess'), 'password123', from('2001:db8:5:7::1'))).status).toBe(
      401,
    );
  });

  it('does not let a client clear its own count by signing in to its own account', async () => {
    const attacker = await signUp(server.url);
    const victim = await signUp(server.url);
    const ip = '10.1.1.1';
    for (let i = 0; i < 10; i += 1) await rawSignIn(server.url, victim.email, `wrong ${i}`, from(ip));
    expect((await rawSignIn(server.url, attacker.email, attacker.password, from(ip))).status).toBe(200);
    expect((await rawSignIn(server.url, victim.email, 'another guess', from(ip))).status).toBe(429);
  });

  it('gives a successful sign-in its point back: 30 in a row from one client, then 20 failures still allowed', async () => {
    const user = await signUp(server.url);
    const ip = '10.1.2.1';
    for (let i = 0; i < 30; i += 1) {
      expect((await rawSignIn(server.url, user.email, user.password, from(ip))).status).toBe(200);
    }
    const statuses: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      statuses.push((await rawSignIn(server.url, uniqueEmail(), 'password123', from(ip))).status);
    }
    expect(statuses).toEqual([...Array(20).fill(401), 429]);
  });
});

/** The device cookie a successful sign-in set, as a Cookie header value. */
function deviceCookie(res: Response): string {
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('bca_device='));
  if (!cookie) throw new Error(`no device cookie (${res.status})`);
  return cookie.split(';')[0] as string;
}

describe(`device cookie (${dbKind})`, () => {
  it('is set on a successful sign-in: signed, HttpOnly, SameSite=Strict, only for /api/auth', async () => {
    const user = await signUp(server.url);
    const res = await rawSignIn(server.url, user.email, user.password, from('10.5.0.9'));
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('bca_device=')) as string;
    expect(cookie).toMatch(/^bca_device=[^;]+\.[^;]+; Max-Age=15552000; Path=\/api\/auth; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(user.email);
  });

  it('lets a browser that signed in before through from an address an attacker keeps throttled', async () => {
    const victim = await signUp(server.url);
    const shared = '10.5.0.1';
    const cookie = deviceCookie(await rawSignIn(server.url, victim.email, victim.password, from(shared)));
    // The attacker behind the same address: 10 guesses at the victim, 10 at others.
    for (let i = 0; i < 10; i += 1) await rawSignIn(server.url, victim.email, `wrong ${i}`, from(shared));
    for (let i = 0; i < 10; i += 1) await rawSignIn(server.url, uniqueEmail(), `wrong ${i}`, from(shared));
    expect((await rawSignIn(server.url, victim.email, victim.password, from(shared))).status).toBe(429);
    const res = await rawSignIn(server.url, victim.email, victim.password, { ...from(shared), cookie });
    expect(res.status).toBe(200);
  });

  it('gives nothing to a cookie for another email or a forged one, and bounds a stolen one', async () => {
    const attacker = await signUp(server.url);
    const victim = await signUp(server.url);
    const ip = '10.5.1.1';
    const own = deviceCookie(await rawSignIn(server.url, attacker.email, attacker.password, from(ip)));
    for (let i = 0; i < 10; i += 1) {
      expect((await rawSignIn(server.url, victim.email, `wrong ${i}`, { ...from(ip), cookie: own })).status).toBe(401);
    }
    expect((await rawSignIn(server.url, victim.email, 'guess', { ...from(ip), cookie: own })).status).toBe(429);
    // Signing in to its own account with its own cookie clears nothing of the victim's.
    expect((await rawSignIn(server.url, attacker.email, attacker.password, { ...from(ip), cookie: own })).status).toBe(
      200,
    );
    expect((await rawSignIn(server.url, victim.email, 'guess', { ...from(ip), cookie: own })).status).toBe(429);
    const forged = `${own.split('.')[0]}.${'A'.repeat(43)}=`;
    expect((await rawSignIn(server.url, victim.email, 'guess', { ...from(ip), cookie: forged })).status).toBe(429);

    // The victim's own cookie, stolen: 10 guesses on the device, then the address's own limits.
    const stolen = deviceCookie(await rawSignIn(server.url, victim.email, victim.password, from('10.5.1.2')));
    const statuses: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      statuses.push(
        (await rawSignIn(server.url, victim.email, `wrong ${i}`, { ...from('10.5.1.3'), cookie: stolen })).status,
      );
    }
    expect(statuses).toEqual([...Array(20).fill(401), 429]);
  });
});

describe(`a burst is throttled like attempts one by one (${dbKind})`, () => {
  it('checks at most 10 passwords for 60 concurrent wrong ones for an email from one client', async () => {
    const victim = await signUp(server.url);
    hashReads = 0;
    const statuses = await Promise.all(
      Array.from({ length: 60 }, (_, i) => rawSignIn(server.url, victim.email, `wrong ${i}`, from('10.2.0.1'))),
    ).then((all) => all.map((r) => r.status));
    console.info(`[${dbKind}] 60 concurrent wrong passwords, one email: ${hashReads} password checks`);
    expect(hashReads).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 401)).toHaveLength(hashReads);
    expect(statuses.filter((s) => s === 429)).toHaveLength(60 - hashReads);
  });

  it('checks at most 20 passwords for 60 concurrent wrong ones across six emails from one client', async () => {
    const users: Session[] = [];
    for (let i = 0; i < 6; i += 1) users.push(await signUp(server.url));
    hashReads = 0;
    const statuses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        rawSignIn(server.url, (users[i % 6] as Session).email, `wrong ${i}`, from('10.2.0.2')),
      ),
    ).then((all) => all.map((r) => r.status));
    console.info(`[${dbKind}] 60 concurrent wrong passwords, six emails: ${hashReads} password checks`);
    expect(hashReads).toBeLessThanOrEqual(20);
    expect(statuses.filter((s) => s === 401)).toHaveLength(hashReads);
  });

  it('lets at most 5 of 30 concurrent failed sign-ups for one email through', async () => {
    const taken = await signUp(server.url);
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        rawSignUp(server.url, { email: taken.email, password: `another password ${i}`, name: 'dup' }, from('10.2.0.3')),
      ),
    ).then((all) => all.map((r) => r.status));
    expect(statuses.filter((s) => s !== 429).length).toBeLessThanOrEqual(5);
    expect(statuses.filter((s) => s === 200)).toHaveLength(0);
  });
});

describe(`engine token endpoint (${dbKind})`, () => {
  it('answers 429 slow_down after 10 wrong secrets for a client from one address; the right one from another still works', async () => {
    const client = await registerClient(server.db);
    const wrong = { clientId: client.clientId, clientSecret: `${client.clientSecret}x` };
    const ip = '10.3.0.1';
    const statuses: number[] = [];
    for (let i = 0; i < 11; i += 1) statuses.push((await tokenRequest(wrong, ip)).status);
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
    const refused = await tokenRequest(client, ip);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      error: 'slow_down',
      error_description: expect.stringMatching(/try again in \d+ s/),
    });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.text).not.toContain(client.clientSecret);
    expect((await tokenRequest(client, '10.3.0.2')).status).toBe(200);
  });

  it('checks at most 10 secrets for 40 concurrent wrong ones', async () => {
    const client = await registerClient(server.db);
    const wrong = { clientId: client.clientId, clientSecret: `${client.clientSecret}x` };
    const statuses = await Promise.all(Array.from({ length: 40 }, () => tokenRequest(wrong, '10.3.0.3'))).then((all) =>
      all.map((r) => r.status),
    );
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(30);
  });
});

/** A client_secret_post token request from `ip` (forwarded by the trusted loopback proxy). */
async function tokenRequest(client: { clientId: string; clientSecret: string }, ip: string) {
  const res = await fetch(`${server.url}/engine/v1/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(ip) },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: client.clientId,
      client_secret: client.clientSecret,
    }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as Record<string, unknown> };
}

// Two server processes on one PostgreSQL database (PGlite is one process's).
describe.runIf(dbKind === 'postgres')('counters shared by two instances (postgres)', () => {
  it('throttles a client on both after failures spread over both; a clean client signs in on either', async () => {
    const env = { TRUST_PROXY: 'loopback' };
    const first = await startServer({ env });
    const second = await startServer({ env, db: first.db });
    try {
      const victim = await signUp(first.url);
      for (let i = 0; i < 10; i += 1) {
        const target = i % 2 === 0 ? first : second;
        expect((await rawSignIn(target.url, victim.email, `wrong ${i}`, from('10.4.0.1'))).status).toBe(401);
      }
      expect((await rawSignIn(second.url, victim.email, victim.password, from('10.4.0.1'))).status).toBe(429);
      expect((await rawSignIn(first.url, victim.email, victim.password, from('10.4.0.1'))).status).toBe(429);
      expect((await rawSignIn(second.url, victim.email, victim.password, from('10.4.0.2'))).status).toBe(200);
      expect((await rawSignIn(first.url, victim.email, victim.password, from('10.4.0.3'))).status).toBe(200);

      // The per-client count is shared too: 20 failures over both, then 429 on either.
      for (let i = 0; i < 20; i += 1) {
        const target = i % 2 === 0 ? first : second;
        expect((await rawSignIn(target.url, uniqueEmail(), 'password123', from('10.4.0.9'))).status).toBe(401);
      }
      expect((await rawSignIn(first.url, uniqueEmail(), 'password123', from('10.4.0.9'))).status).toBe(429);
      expect((await rawSignIn(second.url, uniqueEmail(), 'password123', from('10.4.0.9'))).status).toBe(429);
    } finally {
      await second.stop();
      await first.close();
    }
  });
});
