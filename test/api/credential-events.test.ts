// The audit trail through the API (docs/audit-trail.md), on an in-process
// server (real HTTP, real database): every action and its changedFields, no
// event for failures or no-ops, history that outlives its credential, keyset
// paging while events arrive, isolation between users, the request's origin
// (TRUST_PROXY), no value of a secret, hint or nickname in any event, and no
// event from key rotation.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { rotateCredentialKeys } from '../../src/services/key-rotation.ts';
import { errorOf, type GraphQLResponse, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { testSecrets } from '../support/server.ts';

let server: InProcessServer;
const USER_AGENT = 'audit-test/1.0 (vitest)';

const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id apiKeyHint nickname } }';
const UPDATE =
  'mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id nickname isActive updatedAt } }';
const DELETE = 'mutation($id: UUID!) { deleteCredential(id: $id) }';
const EVENT = 'id credentialId action changedFields verificationStatus occurredAt clientIp userAgent';
const PAGE = `edges { cursor node { ${EVENT} } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`;
const EVENTS = `query($credentialId: UUID, $first: Int, $after: String) {
  credentialEvents(credentialId: $credentialId, first: $first, after: $after) { ${PAGE} } }`;
const CREDENTIAL_EVENTS = `query($id: UUID!, $first: Int, $after: String) {
  credential(id: $id) { id events(first: $first, after: $after) { ${PAGE} } } }`;

interface CredentialEvent {
  id: string;
  credentialId: string;
  action: string;
  changedFields: string[];
  verificationStatus: string | null;
  occurredAt: string;
  clientIp: string | null;
  userAgent: string | null;
}
interface Page {
  edges: { cursor: string; node: CredentialEvent }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

/** Every value that must never appear in an event: secrets, hints, nicknames. */
const forbidden: string[] = [];
/** Every events response, searched for those values at the end. */
const eventResponses: string[] = [];

async function call<T = Record<string, any>>(
  base: string,
  query: string,
  variables: Record<string, unknown>,
  session?: Session,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...(session ? { authorization: `Bearer ${session.token}` } : {}),
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text };
}

async function ok<T = Record<string, any>>(query: string, variables: Record<string, unknown>, session: Session) {
  const res = await call<T>(server.url, query, variables, session);
  expect(res.body.errors, res.text).toBeUndefined();
  return res.body.data as T;
}

const distinct = (kind: string) => {
  const value = `${kind}-${randomUUID().replaceAll('-', '').toUpperCase()}`;
  forbidden.push(value);
  return value;
};

async function userWithAccount(): Promise<{ session: Session; accountId: string }> {
  const session = await signUp(server.url);
  const data = await ok('mutation { getOrCreateAccount { account { id } } }', {}, session);
  return { session, accountId: data.getOrCreateAccount.account.id };
}

async function store(session: Session, accountId: string, nickname?: string): Promise<string> {
  const input = {
    accountId,
    credentialType: 'alpaca',
    apiKey: distinct('PKAPI'),
    secretKey: distinct('SECRET'),
    ...(nickname !== undefined ? { nickname } : {}),
  };
  const { storeCredential } = await ok(STORE, { input }, session);
  forbidden.push(storeCredential.apiKeyHint);
  return storeCredential.id;
}

async function update(session: Session, id: string, input: Record<string, unknown>) {
  return (await ok(UPDATE, { id, input }, session)).updateCredential;
}

async function page(
  session: Session,
  vars: { credentialId?: string; first?: number; after?: string } = {},
  base = server.url,
): Promise<Page> {
  const res = await call<{ credentialEvents: Page }>(base, EVENTS, vars, session);
  expect(res.body.errors, res.text).toBeUndefined();
  eventResponses.push(res.text);
  return res.body.data?.credentialEvents as Page;
}

const nodes = (p: Page) => p.edges.map((e) => e.node);
const history = async (session: Session, credentialId?: string) =>
  nodes(await page(session, { ...(credentialId ? { credentialId } : {}), first: 100 }));

/** Every event row of a user, read past RLS (the test connects as a superuser). */
async function rowsOf(userId: string): Promise<Record<string, unknown>[]> {
  return server.db.unscopedClient.$queryRaw<Record<string, unknown>[]>`
    SELECT * FROM credential_events WHERE user_id = ${userId}`;
}

beforeAll(async () => {
  server = await startInProcess();
});

afterAll(async () => {
  await server?.close();
});

describe(`the audit trail (${dbKind})`, () => {
  it('records every action with the fields that changed, newest first', async () => {
    const { session, accountId } = await userWithAccount();
    const nickname = distinct('Nick');
    const id = await store(session, accountId, nickname);
    await update(session, id, { nickname: distinct('Renamed') });
    await update(session, id, { apiKey: distinct('PKNEW'), secretKey: distinct('SECRETNEW') });
    await update(session, id, { secretKey: distinct('SECRETONLY') });
    await update(session, id, { isActive: false, nickname: distinct('Old') });
    await update(session, id, { isActive: true });
    await update(session, id, { nickname: '' });
    await ok(DELETE, { id }, session);

    const events = await history(session, id);
    expect(events.map((e) => [e.action, e.changedFields])).toEqual([
      ['DELETED', []],
      ['UPDATED', ['nickname']],
      ['REACTIVATED', ['isActive']],
      ['DEACTIVATED', ['nickname', 'isActive']],
      ['UPDATED', ['secretKey']],
      ['UPDATED', ['apiKey', 'secretKey']],
      ['UPDATED', ['nickname']],
      ['STORED', []],
    ]);
    for (const e of events) {
      expect(e).toMatchObject({ credentialId: id, verificationStatus: null, userAgent: USER_AGENT });
      expect(e.clientIp).toBe('127.0.0.1');
    }
    const times = events.map((e) => Date.parse(e.occurredAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });

  it('orders the events of one operation as they were written', async () => {
    const { session, accountId } = await userWithAccount();
    const id = await store(session, accountId);
    const res = await call(
      server.url,
      `mutation($id: UUID!) {
        a: updateCredential(id: $id, input: { nickname: "First" }) { id }
        b: updateCredential(id: $id, input: { isActive: false }) { id }
        c: updateCredential(id: $id, input: { isActive: true }) { id }
      }`,
      { id },
      session,
    );
    expect(res.body.errors).toBeUndefined();
    expect((await history(session, id)).map((e) => e.action)).toEqual([
      'REACTIVATED',
      'DEACTIVATED',
      'UPDATED',
      'STORED',
    ]);
  });

  it('records one DEACTIVATED for concurrent deactivations: each update sees the one before it', async () => {
    const { session, accountId } = await userWithAccount();
    const id = await store(session, accountId);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => call(server.url, UPDATE, { id, input: { isActive: false } }, session)),
    );
    for (const res of results) expect(res.body.errors, res.text).toBeUndefined();
    expect((await history(session, id)).map((e) => e.action)).toEqual(['DEACTIVATED', 'STORED']);
  });

  it('counts a new key as a change even when it equals the old one', async () => {
    const { session, accountId } = await userWithAccount();
    const apiKey = distinct('PKSAME');
    const { storeCredential } = await ok(
      STORE,
      { input: { accountId, credentialType: 'alpaca', apiKey, secretKey: distinct('S') } },
      session,
    );
    forbidden.push(storeCredential.apiKeyHint);
    await update(session, storeCredential.id, { apiKey });
    expect((await history(session, storeCredential.id)).map((e) => [e.action, e.changedFields])).toEqual([
      ['UPDATED', ['apiKey']],
      ['STORED', []],
    ]);
  });

  it('writes nothing for an update that changes nothing', async () => {
    const { session, accountId } = await userWithAccount();
    const nickname = distinct('Same');
    const id = await store(session, accountId, nickname);
    const before = await update(session, id, {});
    for (const input of [{ nickname }, { isActive: true }, { nickname: ` ${nickname} `, isActive: true }, {}]) {
      const after = await update(session, id, input);
      expect(after).toEqual(before);
    }
    const unnamed = await store(session, accountId);
    await update(session, unnamed, { nickname: '   ' });
    expect((await history(session)).map((e) => e.action)).toEqual(['STORED', 'STORED']);
    expect(await rowsOf(session.user.id)).toHaveLength(2);
  });

  it('writes nothing when the mutation fails, and the change is undone with its event', async () => {
    const { session, accountId } = await userWithAccount();
    const other = await userWithAccount();
    const id = await store(session, accountId, distinct('Kept'));
    const othersId = await store(other.session, other.accountId);
    const failures: [string, Record<string, unknown>, string][] = [
      [UPDATE, { id, input: { apiKey: ' ' } }, 'BAD_USER_INPUT'],
      [UPDATE, { id, input: { nickname: 'x'.repeat(101) } }, 'BAD_USER_INPUT'],
      [UPDATE, { id: randomUUID(), input: { isActive: false } }, 'NOT_FOUND'],
      [UPDATE, { id: othersId, input: { isActive: false } }, 'NOT_FOUND'],
      [DELETE, { id: randomUUID() }, 'NOT_FOUND'],
      [DELETE, { id: othersId }, 'NOT_FOUND'],
      [
        STORE,
        { input: { accountId: other.accountId, credentialType: 'alpaca', apiKey: 'PKX1234567', secretKey: 's' } },
        'NOT_FOUND',
      ],
      [
        STORE,
        { input: { accountId, credentialType: 'Alpaca!', apiKey: 'PKX1234567', secretKey: 's' } },
        'BAD_USER_INPUT',
      ],
    ];
    for (const [query, variables, code] of failures) {
      expect(errorOf(await call(server.url, query, variables, session)).code).toBe(code);
    }
    // One operation, two mutations: the first succeeds, the second fails, so
    // the operation's transaction rolls back the first change and its event.
    const both = await call(
      server.url,
      `mutation($id: UUID!, $missing: UUID!) {
        off: updateCredential(id: $id, input: { isActive: false }) { id }
        gone: deleteCredential(id: $missing)
      }`,
      { id, missing: randomUUID() },
      session,
    );
    expect(errorOf(both).code).toBe('NOT_FOUND');
    const now = await ok('query($id: UUID!) { credential(id: $id) { isActive } }', { id }, session);
    expect(now.credential.isActive).toBe(true);

    expect((await history(session)).map((e) => e.action)).toEqual(['STORED']);
    expect(await rowsOf(session.user.id)).toHaveLength(1);
    expect((await history(other.session)).map((e) => e.action)).toEqual(['STORED']);
  });

  it('leaves the credential as it was when its event cannot be written', async () => {
    const { session, accountId } = await userWithAccount();
    const id = await store(session, accountId, distinct('Before'));
    const CREDENTIAL = 'query($id: UUID!) { credential(id: $id) { nickname isActive apiKeyHint updatedAt } }';
    const stored = async () =>
      server.db.unscopedClient.$queryRaw<Record<string, unknown>[]>`
        SELECT nickname, is_active, api_key_hint, api_key_ciphertext, secret_key_ciphertext, secrets_version, updated_at
          FROM user_credentials WHERE account_id = ${accountId}::uuid ORDER BY id`;
    const before = { api: await ok(CREDENTIAL, { id }, session), rows: await stored() };
    // The code cannot make its own INSERT fail: a trigger (installed as the
    // owner, as a migration would) refuses the events of one user agent.
    const failingAgent = `event-write-fails-${randomUUID()}`;
    await server.db.unscopedClient.$executeRawUnsafe(`
      CREATE FUNCTION events_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.user_agent = '${failingAgent}' THEN RAISE EXCEPTION 'event write refused by the test'; END IF;
        RETURN NEW;
      END $$`);
    await server.db.unscopedClient.$executeRawUnsafe(
      'CREATE TRIGGER events_test_refuse BEFORE INSERT ON credential_events FOR EACH ROW EXECUTE FUNCTION events_test_refuse()',
    );
    try {
      const attempts: [string, Record<string, unknown>][] = [
        [UPDATE, { id, input: { nickname: 'Renamed', secretKey: 'a-new-secret', apiKey: 'PKNEWKEY000000000001' } }],
        [UPDATE, { id, input: { isActive: false } }],
        [DELETE, { id }],
        [STORE, { input: { accountId, credentialType: 'alpaca', apiKey: 'PKX1234567', secretKey: 's' } }],
      ];
      for (const [query, variables] of attempts) {
        const res = await call(server.url, query, variables, session, { 'user-agent': failingAgent });
        expect(errorOf(res).code, JSON.stringify(variables)).toBe('INTERNAL_SERVER_ERROR');
        expect(res.text).not.toContain('event write refused');
      }
    } finally {
      await server.db.unscopedClient.$executeRawUnsafe('DROP TRIGGER events_test_refuse ON credential_events');
      await server.db.unscopedClient.$executeRawUnsafe('DROP FUNCTION events_test_refuse()');
    }
    // The trigger did fire (the same requests succeed without it), and undid everything.
    expect(await ok(CREDENTIAL, { id }, session)).toEqual(before.api);
    expect(await stored()).toEqual(before.rows);
    expect((await history(session)).map((e) => e.action)).toEqual(['STORED']);
    expect((await update(session, id, { isActive: false })).isActive).toBe(false);
  });

  it('keeps the history of a deleted credential, ending with DELETED', async () => {
    const { session, accountId } = await userWithAccount();
    const id = await store(session, accountId);
    await update(session, id, { isActive: false });
    const viaCredential = await ok(CREDENTIAL_EVENTS, { id, first: 5 }, session);
    expect(nodes(viaCredential.credential.events).map((e: CredentialEvent) => e.action)).toEqual([
      'DEACTIVATED',
      'STORED',
    ]);
    await ok(DELETE, { id }, session);
    expect((await ok('query($id: UUID!) { credential(id: $id) { id } }', { id }, session)).credential).toBeNull();
    const events = await history(session, id);
    expect(events.map((e) => e.action)).toEqual(['DELETED', 'DEACTIVATED', 'STORED']);
    expect(events.every((e) => e.credentialId === id)).toBe(true);
  });

  it('pages newest first without repeating or skipping, while new events arrive', async () => {
    const { session, accountId } = await userWithAccount();
    const id = await store(session, accountId);
    for (let i = 1; i < 25; i++) await update(session, id, { nickname: `Name ${i}` });
    const all = await history(session, id);
    expect(all).toHaveLength(25);

    const first = await page(session, { credentialId: id, first: 10 });
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    expect(first.pageInfo.startCursor).toBe(first.edges[0]?.cursor);
    expect(first.pageInfo.endCursor).toBe(first.edges[9]?.cursor);
    // A new event between pages sorts before everything seen: later pages do not shift.
    await update(session, id, { nickname: 'Arrived meanwhile' });
    const second = await page(session, { credentialId: id, first: 10, after: first.pageInfo.endCursor as string });
    const third = await page(session, { credentialId: id, first: 10, after: second.pageInfo.endCursor as string });
    expect(second.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    expect(third.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    expect(third.edges).toHaveLength(5);
    expect([first, second, third].flatMap(nodes).map((e) => e.id)).toEqual(all.map((e) => e.id));

    // The same pages through Credential.events and through the user-wide listing.
    const viaCredential = await ok(CREDENTIAL_EVENTS, { id, first: 10, after: first.pageInfo.endCursor }, session);
    expect(nodes(viaCredential.credential.events)).toEqual(nodes(second));
    const newest = await page(session, { first: 1 });
    expect(nodes(newest).map((e) => e.changedFields)).toEqual([['nickname']]);
    expect((await history(session)).slice(1).map((e) => e.id)).toEqual(all.map((e) => e.id));
    // After the last event: an empty page.
    const end = await page(session, { credentialId: id, after: third.pageInfo.endCursor as string });
    expect(end.edges).toEqual([]);
    expect(end.pageInfo.hasNextPage).toBe(false);
  });

  it('defaults to 20 per page and refuses first outside 1..100 or a foreign cursor', async () => {
    const { session, accountId } = await userWithAccount();
    const id = await store(session, accountId);
    for (let i = 1; i < 21; i++) await update(session, id, { isActive: i % 2 === 0 });
    const defaultPage = await page(session);
    expect(defaultPage.edges).toHaveLength(20);
    expect(defaultPage.pageInfo.hasNextPage).toBe(true);
    expect((await page(session, { first: 100 })).edges).toHaveLength(21);

    const cursor = Buffer.from(`OffsetConnection:3`).toString('base64');
    const invalid: [Record<string, unknown>, string][] = [
      [{ first: 0 }, 'first'],
      [{ first: 101 }, 'first'],
      [{ first: -1 }, 'first'],
      [{ after: 'not a cursor' }, 'after'],
      [{ after: cursor }, 'after'],
      [{ after: Buffer.from('CredentialEvent:not-a-uuid').toString('base64') }, 'after'],
      [{ after: Buffer.from(`CredentialEvent:${randomUUID()}`).toString('base64') }, 'after'],
    ];
    for (const [vars, field] of invalid) {
      for (const [query, extra] of [
        [EVENTS, {}],
        [CREDENTIAL_EVENTS, { id }],
      ] as const) {
        const res = await call(server.url, query, { ...vars, ...extra }, session);
        expect(errorOf(res), `${JSON.stringify(vars)}`).toMatchObject({ code: 'BAD_USER_INPUT', field });
      }
    }
  });

  it('shows each user only their own events', async () => {
    const a = await userWithAccount();
    const b = await userWithAccount();
    const aId = await store(a.session, a.accountId);
    const bId = await store(b.session, b.accountId);
    await ok(DELETE, { id: aId }, a.session);
    expect((await history(b.session)).map((e) => e.credentialId)).toEqual([bId]);
    expect(await history(b.session, aId)).toEqual([]);
    expect((await history(a.session)).map((e) => [e.credentialId, e.action])).toEqual([
      [aId, 'DELETED'],
      [aId, 'STORED'],
    ]);
    // A's cursor names an event B cannot see: refused, as a made-up one is.
    const aPage = await page(a.session, { first: 1 });
    const withAsCursor = await call(server.url, EVENTS, { after: aPage.pageInfo.endCursor }, b.session);
    expect(errorOf(withAsCursor)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(errorOf(withAsCursor).message).not.toContain(aId);
    const anonymous = await call(server.url, EVENTS, {});
    expect(errorOf(anonymous).code).toBe('UNAUTHENTICATED');
  });

  it('keeps the client IP by the TRUST_PROXY rules and at most 256 characters of user agent', async () => {
    const { session, accountId } = await userWithAccount();
    const forwarded = { 'x-forwarded-for': '203.0.113.7', 'user-agent': `UA-${'x'.repeat(400)}` };
    const input = { accountId, credentialType: 'alpaca', apiKey: distinct('PKIP'), secretKey: distinct('SIP') };
    const direct = await call(server.url, STORE, { input }, session, forwarded);
    expect(direct.body.errors).toBeUndefined();
    forbidden.push(direct.body.data?.storeCredential.apiKeyHint);
    const [event] = await history(session);
    // Without TRUST_PROXY the header is the client's own claim: ignored.
    expect(event?.clientIp).toBe('127.0.0.1');
    expect(event?.userAgent).toBe(forwarded['user-agent'].slice(0, 256));

    const proxied = await startInProcess({ env: { TRUST_PROXY: 'loopback' } });
    try {
      const user = await signUp(proxied.url);
      const account = await call(proxied.url, 'mutation { getOrCreateAccount { account { id } } }', {}, user);
      const res = await call(
        proxied.url,
        STORE,
        { input: { ...input, accountId: account.body.data?.getOrCreateAccount.account.id } },
        user,
        forwarded,
      );
      expect(res.body.errors).toBeUndefined();
      const [viaProxy] = nodes(await page(user, {}, proxied.url));
      expect(viaProxy?.clientIp).toBe('203.0.113.7');
    } finally {
      await proxied.close();
    }
  });

  it('writes no event when rotate-key re-encrypts', async () => {
    const { session, accountId } = await userWithAccount();
    await store(session, accountId);
    await store(session, accountId);
    const countAll = async () =>
      Number(
        (await server.db.unscopedClient.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM credential_events`)[0]?.n,
      );
    const before = await countAll();
    const oldKey = Buffer.from(testSecrets.ENCRYPTION_KEY, 'base64');
    const newKey = randomBytes(32);
    const result = await rotateCredentialKeys({
      db: server.db,
      keyring: new Keyring({ id: defaultKeyId(newKey), key: newKey }, [{ id: defaultKeyId(oldKey), key: oldKey }]),
      batchSize: 50,
    });
    expect(result.done).toBeGreaterThanOrEqual(2);
    expect(await countAll()).toBe(before);
  });

  it('holds no secret, hint or nickname value in any event', async () => {
    // Traffic of its own, so the test asserts when run alone; the values the
    // other tests of the file collected are searched for as well.
    const { session, accountId } = await userWithAccount();
    const id = await store(session, accountId, distinct('Nick'));
    await update(session, id, {
      apiKey: distinct('PKNEW'),
      secretKey: distinct('SECRETNEW'),
      nickname: distinct('Renamed'),
      isActive: false,
    });
    await ok(DELETE, { id }, session);
    expect((await history(session, id)).map((e) => e.action)).toEqual(['DELETED', 'DEACTIVATED', 'STORED']);
    expect(forbidden.length).toBeGreaterThanOrEqual(7);
    const everything = JSON.stringify(
      await server.db.unscopedClient.$queryRaw`SELECT * FROM credential_events`,
      (_key, value) => (typeof value === 'bigint' ? String(value) : value),
    );
    const responses = eventResponses.join('\n');
    expect(responses).toContain(id);
    expect(everything).toContain(id);
    for (const value of forbidden) {
      expect(everything).not.toContain(value);
      expect(responses).not.toContain(value);
    }
    // Names of changed fields only.
    const fields = await server.db.unscopedClient.$queryRaw<{ field: string }[]>`
      SELECT DISTINCT unnest(changed_fields) AS field FROM credential_events`;
    expect(fields.map((f) => f.field).sort()).toEqual(['apiKey', 'isActive', 'nickname', 'secretKey']);
  });
});
