// The session cache and sign-out: a session lookup that began
// before a sign-out and ends after it must not put the revoked session back
// into the cache (it would stay usable for SESSION_CACHE_TTL_MS).
import { describe, expect, it } from 'vitest';
import { gql, signOut, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { queryGate } from '../support/query-gate.ts';

const VIEWER = '{ viewer { id } }';
/** better-auth's session lookup: the first of the two queries getSession makes. */
const SESSION_LOOKUP = /^SELECT[\s\S]*FROM "public"\."auth_sessions"/;

describe(`session cache across a sign-out (${dbKind})`, () => {
  const gate = queryGate();
  const server = useInProcessServer({ instrument: gate.instrument });

  it('does not cache a session whose lookup was overtaken by its sign-out', async () => {
    const session = await signUp(server.url);
    const bearer = { token: session.token };
    // A request whose session lookup has read the session, held there...
    const held = gate.arm(SESSION_LOOKUP);
    const early = gql(server.url, VIEWER, undefined, bearer);
    await held;
    // ...while the session is signed out (and the cache cleared) ...
    expect((await signOut(server.url, bearer)).status).toBe(200);
    // ...and then finishes: it began before the sign-out, so it may still be served.
    gate.release();
    expect((await early).body.data?.viewer).toEqual({ id: session.user.id });
    // The next request must not find the revoked session in the cache.
    expect((await gql(server.url, VIEWER, undefined, bearer)).body.data?.viewer).toBeNull();
    expect((await gql(server.url, '{ accounts { id } }', undefined, bearer)).status).toBe(401);
  });
});
