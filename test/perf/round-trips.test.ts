// SQL round trips per request, counted at the driver (countStatements in
// test/support/statement-counter.ts sees every statement the server's pools send, BEGIN/COMMIT and
// better-auth's session lookup included). Not a timing: counts are exact and
// do not depend on the machine.
//
// The promise: W1's count does not grow with the number of credentials (no
// N+1), and stays within 5 statements, BEGIN/COMMIT included. The totals
// record what a request costs today, so a change that adds a statement fails
// here. A session already in the session cache costs nothing; the first
// request of a session pays SESSION_LOOKUP more (better-auth's session and user).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, type Session, signIn, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { countStatements } from '../support/statement-counter.ts';
import { randomAlpacaKeys, type WorkloadName, workloadRequest } from '../support/workloads.ts';

/**
 * The transaction's frame: on PostgreSQL the user scope travels with BEGIN
 * (one round trip) and COMMIT; PGlite sets it in a statement of its own.
 */
const FRAME = dbKind === 'postgres' ? 2 : 3;
/** One SELECT: accounts and credentials joined. */
const CURRENT_W1_TOTAL = FRAME + 1;
/** INSERT, returning the selection; then the STORED event's INSERT (the audit trail, same transaction). */
const CURRENT_W2_TOTAL = FRAME + 2;
/** INSERT ON CONFLICT, then SELECT. */
const CURRENT_W3_TOTAL = FRAME + 2;
/** better-auth's session and user lookups, on a session-cache miss. */
const SESSION_LOOKUP = 2;

let server: InProcessServer;
let recording: string[] | undefined;

/** Runs one request and returns the statements the server sent for it. */
async function statementsOf(request: () => Promise<{ body: { errors?: unknown } }>): Promise<string[]> {
  const seen: string[] = [];
  recording = seen;
  try {
    const res = await request();
    expect(res.body.errors).toBeUndefined();
  } finally {
    recording = undefined;
  }
  return seen;
}

/** Sends one request of a benchmark workload as `session`. */
function send(workload: WorkloadName, session: Session, accountId = '') {
  const { query, variables } = workloadRequest(workload, accountId);
  return gql(server.url, query, variables, session);
}

const summary = (statements: string[]) => statements.map((sql) => sql.replace(/\s+/g, ' ').slice(0, 90));

beforeAll(async () => {
  server = await startInProcess({ instrument: countStatements((sql) => recording?.push(sql)) });
});

afterAll(async () => {
  await server?.close();
});

describe(`SQL round trips per request (${dbKind})`, () => {
  let few: Session;
  let many: Session;
  let manyAccountId: string;

  beforeAll(async () => {
    // Through the API, as users do: sign up, getOrCreateAccount, storeCredential.
    const accountOf = async (session: Session) =>
      (await send('W3', session)).body.data?.getOrCreateAccount.account.id as string;
    const store = (session: Session, accountId: string) =>
      gql(
        server.url,
        'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }',
        {
          input: { accountId, credentialType: 'alpaca', ...randomAlpacaKeys() },
        },
        session,
      );
    few = await signUp(server.url);
    many = await signUp(server.url);
    expect((await store(few, await accountOf(few))).body.errors).toBeUndefined();
    manyAccountId = await accountOf(many);
    for (let i = 0; i < 50; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => store(many, manyAccountId)));
      for (const res of batch) expect(res.body.errors).toBeUndefined();
    }
  });

  it('W1 (accounts with credentials) costs the same with 1 credential as with 50', async () => {
    const credentialsOf = async (session: Session) =>
      (await send('W1', session)).body.data?.accounts[0].credentials.length;
    expect(await credentialsOf(few)).toBe(1);
    expect(await credentialsOf(many)).toBe(50);

    const withOne = await statementsOf(() => send('W1', few));
    const withFifty = await statementsOf(() => send('W1', many));
    console.info(`W1 round trips (${dbKind}): ${withOne.length}\n  ${summary(withOne).join('\n  ')}`);

    expect(withFifty.length).toBe(withOne.length);
    // The counter sees the whole transaction.
    expect(withOne.filter((sql) => /^\s*(BEGIN|COMMIT)\b/i.test(sql))).toHaveLength(2);
    expect(withOne.length).toBe(CURRENT_W1_TOTAL);
    expect(withOne.length).toBeLessThanOrEqual(5);
  });

  it("costs the session lookup only on a session's first request", async () => {
    const fresh = await signIn(server.url, many.email, many.password);
    const first = await statementsOf(() => send('W1', fresh));
    const second = await statementsOf(() => send('W1', fresh));
    expect(first.filter((sql) => /auth_sessions|auth_users/.test(sql))).toHaveLength(SESSION_LOOKUP);
    expect(first.length).toBe(CURRENT_W1_TOTAL + SESSION_LOOKUP);
    expect(second.length).toBe(CURRENT_W1_TOTAL);
  });

  it('W2 (storeCredential) and W3 (getOrCreateAccount on an existing account) cost what they cost today', async () => {
    const w2 = await statementsOf(() => send('W2', many, manyAccountId));
    const w3 = await statementsOf(() => send('W3', many));
    console.info(`W2 round trips (${dbKind}): ${w2.length}\n  ${summary(w2).join('\n  ')}`);
    console.info(`W3 round trips (${dbKind}): ${w3.length}\n  ${summary(w3).join('\n  ')}`);
    expect(w2.length).toBe(CURRENT_W2_TOTAL);
    expect(w3.length).toBe(CURRENT_W3_TOTAL);
  });
});
