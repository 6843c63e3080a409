// verifyCredential against the Alpaca stand-in (test/support/alpaca-stand-in.ts,
// the one mock), on the real server in-process and a real database: every
// status, the paper/live fallback, the timeout, no connection held while the
// broker is asked, compare-and-set against concurrent key changes, NOT_FOUND,
// the unsupported type, the limits and operations with other root fields.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaStandIns, type StandInBehaviour, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { errorOf, gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { median, otherUsersLoad } from '../support/other-users.ts';

const VERIFICATION = 'verification { status checkedAt environment brokerAccountNumber brokerAccountStatus message }';
const VERIFY = `mutation($id: UUID!) { verifyCredential(id: $id) { id nickname apiKeyHint ${VERIFICATION} account { id accountName } } }`;
const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }';
const UPDATE = `mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id apiKeyHint ${VERIFICATION} } }`;
const BY_ID = `query($id: UUID!) { credential(id: $id) { id updatedAt ${VERIFICATION} } }`;
const EVENTS =
  'query($id: UUID!) { credentialEvents(credentialId: $id) { edges { node { action changedFields verificationStatus } } } }';

/** The credential's audit trail, newest first: [action, verificationStatus]. */
async function eventsOf(who: Owner, id: string): Promise<[string, string | null][]> {
  const res = await gql(server.url, EVENTS, { id }, who.session);
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.credentialEvents.edges.map(
    (e: { node: { action: string; verificationStatus: string | null } }) => [e.node.action, e.node.verificationStatus],
  );
}

interface Verification {
  status: string;
  checkedAt: string | null;
  environment: string | null;
  brokerAccountNumber: string | null;
  brokerAccountStatus: string | null;
  message: string | null;
}

const randomKey = (prefix: string) => `${prefix}${randomUUID().replaceAll('-', '').slice(0, 18).toUpperCase()}`;

let brokers: AlpacaStandIns;
let server: InProcessServer;
const POOL_SIZE = 3;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  // A small pool: an operation holding its connection while the broker
  // hangs would show at once. A long broker timeout keeps hangs hanging.
  server = await startInProcess({
    env: { ...brokers.env, DATABASE_POOL_SIZE: String(POOL_SIZE), BROKER_TIMEOUT_MS: '30000' },
  });
});
afterAll(async () => {
  await brokers?.close();
  await server?.close();
});

interface Owner {
  session: Session;
  accountId: string;
}

async function owner(url = server.url): Promise<Owner> {
  const session = await signUp(url);
  const res = await gql(url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
  return { session, accountId: res.body.data?.getOrCreateAccount.account.id };
}

/** Stores a credential with the given keys (random ones by default) and returns its id and keys. */
async function credential(
  who: Owner,
  options: { apiKey?: string; secretKey?: string; credentialType?: string; url?: string } = {},
) {
  const apiKey = options.apiKey ?? randomKey('PK');
  const secretKey = options.secretKey ?? `sk-${randomUUID()}`;
  const input = { accountId: who.accountId, credentialType: options.credentialType ?? 'alpaca', apiKey, secretKey };
  const res = await gql(options.url ?? server.url, STORE, { input }, who.session);
  expect(res.body.errors).toBeUndefined();
  return { id: res.body.data?.storeCredential.id as string, apiKey, secretKey };
}

function verify(who: Owner, id: string, url = server.url) {
  return gql(url, VERIFY, { id }, who.session);
}

function verificationOf(res: Awaited<ReturnType<typeof verify>>): Verification {
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.verifyCredential.verification;
}

/** Requests each stand-in received for this API key. */
function seen(apiKey: string) {
  return {
    paper: brokers.paper.requests.filter((r) => r.apiKey === apiKey).length,
    live: brokers.live.requests.filter((r) => r.apiKey === apiKey).length,
  };
}

describe(`verifyCredential (${dbKind})`, () => {
  it('starts UNVERIFIED, then VERIFIED by paper for a PK key valid there, with the nested selection', async () => {
    const who = await owner();
    const { id, apiKey, secretKey } = await credential(who);
    const before = await gql(server.url, BY_ID, { id }, who.session);
    expect(before.body.data?.credential.verification).toEqual({
      status: 'UNVERIFIED',
      checkedAt: null,
      environment: null,
      brokerAccountNumber: null,
      brokerAccountStatus: null,
      message: null,
    });

    brokers.paper.setKey(apiKey, { kind: 'account', secretKey, accountNumber: 'PA3ABCDEFGH1', status: 'ACTIVE' });
    const started = Date.now();
    const res = await verify(who, id);
    const verification = verificationOf(res);
    expect(verification).toMatchObject({
      status: 'VERIFIED',
      environment: 'PAPER',
      brokerAccountNumber: '••••FGH1',
      brokerAccountStatus: 'ACTIVE',
      message: null,
    });
    expect(Date.parse(verification.checkedAt as string)).toBeGreaterThanOrEqual(started - 1000);
    expect(res.body.data?.verifyCredential.account).toEqual({ id: who.accountId, accountName: expect.any(String) });
    expect(res.body.data?.verifyCredential.apiKeyHint).toBe(`••••${apiKey.slice(-4)}`);
    expect(seen(apiKey)).toEqual({ paper: 1, live: 0 });
    // The stand-in saw the stored keys in Alpaca's headers.
    const request = brokers.paper.requests.find((r) => r.apiKey === apiKey);
    expect(request).toMatchObject({ method: 'GET', path: '/v2/account', secretKey });

    // Stored: a later read shows the same.
    const after = await gql(server.url, BY_ID, { id }, who.session);
    expect(after.body.data?.credential.verification).toEqual(verification);
    // A check changes nothing the user stored: updatedAt stays (checkedAt says when).
    expect(after.body.data?.credential.updatedAt).toBe(before.body.data?.credential.updatedAt);
    // ...but it is in the audit trail, with its outcome.
    expect(await eventsOf(who, id)).toEqual([
      ['VERIFIED', 'VERIFIED'],
      ['STORED', null],
    ]);
  });

  it('asks live first for other keys; VERIFIED LIVE with the broker status word', async () => {
    const who = await owner();
    const { id, apiKey, secretKey } = await credential(who, { apiKey: randomKey('AK') });
    brokers.live.setKey(apiKey, { kind: 'account', secretKey, accountNumber: '123456789', status: 'ACCOUNT_UPDATED' });
    expect(verificationOf(await verify(who, id))).toMatchObject({
      status: 'VERIFIED',
      environment: 'LIVE',
      brokerAccountNumber: '••••6789',
      brokerAccountStatus: 'ACCOUNT_UPDATED',
    });
    expect(seen(apiKey)).toEqual({ paper: 0, live: 1 });
  });

  it('falls back to the other environment on 401/403, and only then', async () => {
    const who = await owner();
    // A PK key that only live knows: paper answers 401, live accepts.
    const a = await credential(who);
    brokers.live.setKey(a.apiKey, { kind: 'account', secretKey: a.secretKey });
    expect(verificationOf(await verify(who, a.id))).toMatchObject({ status: 'VERIFIED', environment: 'LIVE' });
    expect(seen(a.apiKey)).toEqual({ paper: 1, live: 1 });
    expect(brokers.paper.requests.findLast((r) => r.apiKey === a.apiKey)?.requestId).toBeDefined();

    // A live-looking key that paper knows, and live answers 403.
    const b = await credential(who, { apiKey: randomKey('AK') });
    brokers.live.setKey(b.apiKey, { kind: 'status', status: 403 });
    brokers.paper.setKey(b.apiKey, { kind: 'account', secretKey: b.secretKey });
    expect(verificationOf(await verify(who, b.id))).toMatchObject({ status: 'VERIFIED', environment: 'PAPER' });
    expect(seen(b.apiKey)).toEqual({ paper: 1, live: 1 });

    // Unreachable first: no fallback (the keys may be fine there).
    const c = await credential(who);
    brokers.paper.setKey(c.apiKey, { kind: 'status', status: 503 });
    brokers.live.setKey(c.apiKey, { kind: 'account', secretKey: c.secretKey });
    expect(verificationOf(await verify(who, c.id))).toMatchObject({ status: 'UNREACHABLE', environment: null });
    expect(seen(c.apiKey)).toEqual({ paper: 1, live: 0 });
  });

  it('is INVALID when both refuse (unknown keys, a wrong secret, 403)', async () => {
    const who = await owner();
    const unknown = await credential(who);
    const wrongSecret = await credential(who);
    brokers.paper.setKey(wrongSecret.apiKey, { kind: 'account', secretKey: 'another-secret' });
    const forbidden = await credential(who, { apiKey: randomKey('AK') });
    brokers.live.setKey(forbidden.apiKey, { kind: 'status', status: 403 });
    brokers.paper.setKey(forbidden.apiKey, { kind: 'status', status: 403 });
    for (const c of [unknown, wrongSecret, forbidden]) {
      const v = verificationOf(await verify(who, c.id));
      expect(v).toMatchObject({
        status: 'INVALID',
        environment: null,
        brokerAccountNumber: null,
        brokerAccountStatus: null,
      });
      expect(v.checkedAt).not.toBeNull();
      expect(v.message).toMatch(/refused/);
      expect(seen(c.apiKey)).toEqual({ paper: 1, live: 1 });
      expect((await eventsOf(who, c.id))[0]).toEqual(['VERIFIED', 'INVALID']);
    }
  });

  it('is UNREACHABLE on 5xx, 429, an unreadable body, a body that is no account, and a reset connection', async () => {
    const who = await owner();
    const cases: [StandInBehaviour, RegExp][] = [
      [{ kind: 'status', status: 500 }, /server error \(HTTP 500\)/],
      [{ kind: 'status', status: 502 }, /server error \(HTTP 502\)/],
      [{ kind: 'status', status: 429 }, /limiting requests \(HTTP 429\)/],
      [{ kind: 'garbage' }, /not an account/],
      [{ kind: 'not-account' }, /not an account/],
      [{ kind: 'reset' }, /Could not connect/],
      [{ kind: 'status', status: 404 }, /unexpectedly \(HTTP 404\)/],
    ];
    for (const [behaviour, message] of cases) {
      const c = await credential(who);
      brokers.paper.setKey(c.apiKey, behaviour);
      const v = verificationOf(await verify(who, c.id));
      expect(v, JSON.stringify(behaviour)).toMatchObject({ status: 'UNREACHABLE', environment: null });
      expect(v.message).toMatch(message);
      expect(v.message).toMatch(/^(Alpaca paper|Could not connect to Alpaca paper)/);
      expect(seen(c.apiKey)).toEqual({ paper: 1, live: 0 });
      expect((await eventsOf(who, c.id))[0]).toEqual(['VERIFIED', 'UNREACHABLE']);
    }
  });

  it('is UNREACHABLE when nothing listens at the broker URL', async () => {
    const closed = await startAlpacaStandIns();
    const url = closed.paper.url;
    await closed.close();
    const other = await startInProcess({ env: { ALPACA_PAPER_URL: url, ALPACA_LIVE_URL: brokers.live.url } });
    try {
      const who = await owner(other.url);
      const c = await credential(who, { url: other.url });
      const v = verificationOf(await verify(who, c.id, other.url));
      expect(v).toMatchObject({ status: 'UNREACHABLE', message: 'Could not connect to Alpaca paper.' });
    } finally {
      await other.close();
    }
  });

  it('never sends keys that cannot be Alpaca keys (characters outside visible ASCII): INVALID', async () => {
    const who = await owner();
    const requestsBefore = brokers.paper.requests.length + brokers.live.requests.length;
    const cases = [
      { apiKey: `PK${randomUUID()}ünï` },
      // A valid-looking API key (known to paper) with a secret that is not: the secret must not travel either.
      { apiKey: randomKey('PK'), secretKey: `sk-${randomUUID()}-ünï☃` },
      { apiKey: randomKey('AK'), secretKey: `with space ${randomUUID()}` },
    ];
    for (const keys of cases) {
      const c = await credential(who, keys);
      brokers.paper.setKey(c.apiKey, { kind: 'account', secretKey: c.secretKey });
      brokers.live.setKey(c.apiKey, { kind: 'account', secretKey: c.secretKey });
      const v = verificationOf(await verify(who, c.id));
      expect(v, JSON.stringify(keys)).toMatchObject({ status: 'INVALID', message: expect.stringMatching(/not sent/) });
      expect(seen(c.apiKey)).toEqual({ paper: 0, live: 0 });
      expect(await eventsOf(who, c.id)).toEqual([
        ['VERIFIED', 'INVALID'],
        ['STORED', null],
      ]);
    }
    // Not under another API key either: no request at all reached a broker.
    expect(brokers.paper.requests.length + brokers.live.requests.length).toBe(requestsBefore);
  });

  it('answers NOT_FOUND for an absent id and for another user’s, which reaches no broker', async () => {
    const alice = await owner();
    const bob = await owner();
    const hers = await credential(alice);
    brokers.paper.setKey(hers.apiKey, { kind: 'account', secretKey: hers.secretKey });
    const res = await verify(bob, hers.id);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    expect(res.body.data).toBeNull();
    expect(errorOf(await verify(bob, randomUUID())).code).toBe('NOT_FOUND');
    expect(errorOf(await verify(bob, randomUUID())).message).toBe(errorOf(res).message);
    expect(seen(hers.apiKey)).toEqual({ paper: 0, live: 0 });
    const still = await gql(server.url, BY_ID, { id: hers.id }, alice.session);
    expect(still.body.data?.credential.verification.status).toBe('UNVERIFIED');
  });

  it('refuses other credential types with UNSUPPORTED_CREDENTIAL_TYPE; nothing changes', async () => {
    const who = await owner();
    const c = await credential(who, { credentialType: 'binance' });
    const before = await gql(server.url, BY_ID, { id: c.id }, who.session);
    const res = await verify(who, c.id);
    expect(errorOf(res).code).toBe('UNSUPPORTED_CREDENTIAL_TYPE');
    expect(errorOf(res).message).toMatch(/binance/);
    expect(seen(c.apiKey)).toEqual({ paper: 0, live: 0 });
    const after = await gql(server.url, BY_ID, { id: c.id }, who.session);
    expect(after.body.data).toEqual(before.body.data);
    // Nothing was checked, so nothing is in the audit trail but the store.
    expect(await eventsOf(who, c.id)).toEqual([['STORED', null]]);
  });

  it('needs a session', async () => {
    const res = await gql(server.url, VERIFY, { id: randomUUID() });
    expect(res.status).toBe(401);
    expect(errorOf(res).code).toBe('UNAUTHENTICATED');
  });

  it('resets to UNVERIFIED when new keys are stored, and keeps the result on a nickname change', async () => {
    const who = await owner();
    const c = await credential(who);
    brokers.paper.setKey(c.apiKey, { kind: 'account', secretKey: c.secretKey });
    const verified = verificationOf(await verify(who, c.id));
    expect(verified.status).toBe('VERIFIED');

    const renamed = await gql(server.url, UPDATE, { id: c.id, input: { nickname: 'Paper 1' } }, who.session);
    expect(renamed.body.data?.updateCredential.verification).toEqual(verified);
    const deactivated = await gql(server.url, UPDATE, { id: c.id, input: { isActive: false } }, who.session);
    expect(deactivated.body.data?.updateCredential.verification).toEqual(verified);

    const newSecret = await gql(server.url, UPDATE, { id: c.id, input: { secretKey: 'sk-new' } }, who.session);
    expect(newSecret.body.data?.updateCredential.verification).toEqual({
      status: 'UNVERIFIED',
      checkedAt: null,
      environment: null,
      brokerAccountNumber: null,
      brokerAccountStatus: null,
      message: null,
    });
    // The old secret no longer matches what the stand-in knows.
    expect(verificationOf(await verify(who, c.id)).status).toBe('INVALID');
    const newKey = randomKey('PK');
    brokers.paper.setKey(newKey, { kind: 'account', secretKey: 'sk-new' });
    const rekeyed = await gql(server.url, UPDATE, { id: c.id, input: { apiKey: newKey } }, who.session);
    expect(rekeyed.body.data?.updateCredential.verification.status).toBe('UNVERIFIED');
    expect(verificationOf(await verify(who, c.id)).status).toBe('VERIFIED');
  });

  it('does not write a result for keys replaced while the broker was asked (compare-and-set)', async () => {
    const who = await owner();
    const c = await credential(who);
    brokers.paper.setKey(c.apiKey, { kind: 'hang' });
    const pending = verify(who, c.id);
    await until(() => seen(c.apiKey).paper === 1);
    const newKey = randomKey('PK');
    const update = await gql(server.url, UPDATE, { id: c.id, input: { apiKey: newKey } }, who.session);
    expect(update.body.errors).toBeUndefined();
    brokers.paper.release();
    const res = await pending;
    // The answer is the credential as it now is: new hint, still UNVERIFIED.
    expect(res.body.data?.verifyCredential.apiKeyHint).toBe(`••••${newKey.slice(-4)}`);
    expect(verificationOf(res).status).toBe('UNVERIFIED');
    // No result was written, so no VERIFIED event: only the store and the key change.
    expect(await eventsOf(who, c.id)).toEqual([
      ['UPDATED', null],
      ['STORED', null],
    ]);
  });

  it('answers NOT_FOUND when the credential was deleted while the broker was asked', async () => {
    const who = await owner();
    const c = await credential(who);
    brokers.paper.setKey(c.apiKey, { kind: 'hang' });
    const pending = verify(who, c.id);
    await until(() => seen(c.apiKey).paper === 1);
    const deleted = await gql(
      server.url,
      'mutation($id: UUID!) { deleteCredential(id: $id) }',
      { id: c.id },
      who.session,
    );
    expect(deleted.body.data).toEqual({ deleteCredential: c.id });
    brokers.paper.release();
    expect(errorOf(await pending).code).toBe('NOT_FOUND');
  });

  it('holds no connection while the broker hangs: 15 hung verifications, other users still answered', async () => {
    const hung = await Promise.all(
      Array.from({ length: 15 }, async () => {
        const who = await owner();
        const c = await credential(who);
        brokers.paper.setKey(c.apiKey, { kind: 'hang' });
        return { who, c };
      }),
    );
    const others = await Promise.all(Array.from({ length: 5 }, () => owner()));
    const load = () => otherUsersLoad(server.url, others);
    await load(); // warm-up
    const quiet = await load();

    const pending = hung.map(({ who, c }) => verify(who, c.id));
    await until(() => brokers.paper.hanging === 15);
    // While all 15 hang (with a pool of 3): the same load again.
    const during = await load();
    expect(brokers.paper.hanging).toBe(15);
    console.info(
      `[${dbKind}] 15 verifications hanging at the broker, pool of ${POOL_SIZE}: ${during.length} other-user ` +
        `requests answered, median ${median(during).toFixed(1)} ms (max ${(during.at(-1) as number).toFixed(1)}) ` +
        `against ${median(quiet).toFixed(1)} ms without hangs: ratio ${(median(during) / median(quiet)).toFixed(2)}`,
    );

    brokers.paper.release();
    for (const res of await Promise.all(pending)) {
      expect(verificationOf(res)).toMatchObject({
        status: 'UNREACHABLE',
        message: 'Could not connect to Alpaca paper.',
      });
    }
  });

  it('refuses verifyCredential beside other root fields (OPERATION_NOT_SUPPORTED), without asking the broker', async () => {
    const who = await owner();
    const c = await credential(who);
    brokers.paper.setKey(c.apiKey, { kind: 'account', secretKey: c.secretKey });
    const documents = [
      `mutation($id: UUID!) { verifyCredential(id: $id) { id } updateCredential(id: $id, input: { nickname: "x" }) { id } }`,
      `mutation($id: UUID!) { updateCredential(id: $id, input: { nickname: "x" }) { id } verifyCredential(id: $id) { id } }`,
      `mutation($id: UUID!) { a: verifyCredential(id: $id) { id } b: verifyCredential(id: $id) { id } }`,
      `mutation($id: UUID!) { ...V getOrCreateAccount { created } } fragment V on Mutation { verifyCredential(id: $id) { id } }`,
    ];
    for (const query of documents) {
      const res = await gql(server.url, query, { id: c.id }, who.session);
      expect(errorOf(res).code, query).toBe('OPERATION_NOT_SUPPORTED');
      expect(errorOf(res).message).toMatch(/verifyCredential must be the only field of its operation/);
      expect(res.body.data).toBeUndefined();
    }
    expect(seen(c.apiKey)).toEqual({ paper: 0, live: 0 });
    const still = await gql(
      server.url,
      `query($id: UUID!) { credential(id: $id) { nickname } }`,
      { id: c.id },
      who.session,
    );
    expect(still.body.data?.credential.nickname).toBe('alpaca');

    // __typename beside it is fine, as is a named operation among others.
    const typed = await gql(
      server.url,
      `mutation($id: UUID!) { __typename verifyCredential(id: $id) { verification { status } } }`,
      { id: c.id },
      who.session,
    );
    expect(typed.body.data).toEqual({
      __typename: 'Mutation',
      verifyCredential: { verification: { status: 'VERIFIED' } },
    });
  });

  it('limits to 5 per credential and 30 per user per minute: TOO_MANY_REQUESTS with retryAfter', async () => {
    const who = await owner();
    const first = await credential(who);
    for (let i = 0; i < 5; i++) expect(verificationOf(await verify(who, first.id)).status).toBe('INVALID');
    const refused = await verify(who, first.id);
    expect(errorOf(refused).code).toBe('TOO_MANY_REQUESTS');
    const retryAfter = refused.body.errors?.[0]?.extensions?.retryAfter as number;
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.status).toBe(429);
    expect(refused.body.errors?.[0]?.extensions).toEqual({ code: 'TOO_MANY_REQUESTS', retryAfter });
    expect(refused.body.errors?.[0]?.message).toMatch(/At most 5 verifications of this credential per minute/);
    expect(seen(first.apiKey)).toEqual({ paper: 5, live: 5 });

    // Another credential of the same user still may, up to 30 in all.
    const more = await Promise.all(Array.from({ length: 6 }, () => credential(who)));
    let allowed = 5;
    for (const c of more) {
      for (let i = 0; i < 5 && allowed < 30; i++, allowed++) {
        expect(verificationOf(await verify(who, c.id)).status).toBe('INVALID');
      }
    }
    const last = more.at(-1)?.id as string;
    expect(errorOf(await verify(who, last)).code).toBe('TOO_MANY_REQUESTS');

    // Other users are not affected.
    const other = await owner();
    const theirs = await credential(other);
    expect(verificationOf(await verify(other, theirs.id)).status).toBe('INVALID');
  });

  it('takes the points before the broker is asked: 20 concurrent verifications of one credential reach it 5 times', async () => {
    const who = await owner();
    const c = await credential(who);
    const results = await Promise.all(Array.from({ length: 20 }, () => verify(who, c.id)));
    expect(results.filter((r) => errorOf(r).code === 'TOO_MANY_REQUESTS')).toHaveLength(15);
    expect(seen(c.apiKey)).toEqual({ paper: 5, live: 5 });
  });

  // PGlite allows one process, so one instance: the store is the same table either way.
  it.skipIf(dbKind === 'pglite')('shares the limits between instances on one database', async () => {
    const second = await startInProcess({ env: brokers.env, database: server.testDb });
    try {
      const who = await owner();
      const c = await credential(who);
      for (const url of [server.url, second.url, server.url, second.url, second.url]) {
        expect(verificationOf(await verify(who, c.id, url)).status).toBe('INVALID');
      }
      expect(errorOf(await verify(who, c.id, server.url)).code).toBe('TOO_MANY_REQUESTS');
      expect(errorOf(await verify(who, c.id, second.url)).code).toBe('TOO_MANY_REQUESTS');
    } finally {
      await second.close();
    }
  });

  it('verifies 100 in a row against the stand-in, each far below the broker timeout (median printed)', async () => {
    const owners = await Promise.all(Array.from({ length: 4 }, () => owner()));
    // One store at a time per account (stores on one account wait for each
    // other: the credential cap counts under a lock on the account), the
    // four accounts side by side.
    const creds = (
      await Promise.all(
        owners.map(async (who) => {
          const stored = [];
          for (let i = 0; i < 25; i += 1) {
            const c = await credential(who);
            brokers.paper.setKey(c.apiKey, { kind: 'account', secretKey: c.secretKey });
            stored.push({ who, c });
          }
          return stored;
        }),
      )
    ).flat();
    const times: number[] = [];
    for (const { who, c } of creds) {
      const started = performance.now();
      const res = await verify(who, c.id);
      times.push(performance.now() - started);
      expect(verificationOf(res).status).toBe('VERIFIED');
    }
    times.sort((a, b) => a - b);
    // What can be asserted on a loaded machine: no verification waited for a
    // timeout or a retry. (The median itself is a measurement, not a test.)
    expect(times.at(-1)).toBeLessThan(5_000);
    console.info(
      `[${dbKind}] verifyCredential against the stand-in, ${times.length} sequential: ` +
        `median ${(times[50] as number).toFixed(1)} ms, p90 ${(times[90] as number).toFixed(1)} ms`,
    );
    // 100 verifications one after the other: 45 s on PGlite with a core kept busy.
  }, 180_000);
});

describe(`verifyCredential with a short BROKER_TIMEOUT_MS (${dbKind})`, () => {
  let quick: InProcessServer;
  const TIMEOUT_MS = 400;
  beforeAll(async () => {
    quick = await startInProcess({ env: { ...brokers.env, BROKER_TIMEOUT_MS: String(TIMEOUT_MS) } });
  });
  afterAll(() => quick?.close());

  it('gives up after BROKER_TIMEOUT_MS, not before and not much after, on a broker that never answers or stops mid-body: UNREACHABLE', async () => {
    const who = await owner(quick.url);
    for (const kind of ['hang', 'hang-body'] as const) {
      const c = await credential(who, { url: quick.url });
      brokers.paper.setKey(c.apiKey, { kind });
      const started = performance.now();
      const res = await verify(who, c.id, quick.url);
      const elapsed = performance.now() - started;
      expect(verificationOf(res), kind).toMatchObject({
        status: 'UNREACHABLE',
        message: 'Alpaca paper did not answer in time.',
      });
      // Not before the timeout, and not at the default's (5 s) either: the
      // bound is this setting. The 3 s of slack are for a loaded machine; a
      // request that ignored the setting would take at least 5 s.
      expect(elapsed, kind).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(elapsed, kind).toBeLessThan(TIMEOUT_MS + 3_000);
      expect(seen(c.apiKey)).toEqual({ paper: 1, live: 0 });
    }
    brokers.paper.release();
  });
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
