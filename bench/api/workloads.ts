// What the bench sends and checks: the seeded users, each server kind's
// request for a workload (the product and the baseline the same bytes,
// PostGraphile its own query), and the check that every server answers the
// same data before it is measured. A new workload: its request in
// test/support/workloads.ts, its row in DESCRIPTIONS.
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { gql, signUp } from '../../test/support/client.ts';
import { randomAlpacaKeys, type WorkloadName, workloadRequest } from '../../test/support/workloads.ts';
import type { SeededBenchUser, UserRequest } from '../load-generator.ts';

export type { WorkloadName };

/** What a server is, which decides the request it gets: the product (any variant), the raw baseline, PostGraphile. */
export type ServerKind = 'product' | 'baseline' | 'postgraphile';

export const DESCRIPTIONS: Record<WorkloadName, string> = {
  W1: 'read accounts + credentials',
  W2: 'storeCredential',
  W3: 'getOrCreateAccount (exists)',
};
export const WORKLOAD_ORDER: WorkloadName[] = ['W1', 'W2', 'W3'];

/** Runs `worker(i)` for i in [0, count) with at most `concurrency` at a time. */
async function inParallel(count: number, concurrency: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await worker(next++);
    }),
  );
}

async function gqlOk(base: string, query: string, variables: Record<string, unknown> | undefined, token: string) {
  const res = await gql(base, query, variables, { token });
  if (res.status !== 200 || res.body.errors) throw new Error(`seeding failed: ${res.status} ${res.text}`);
  return res.body.data as Record<string, any>;
}

/** Users, accounts and credentials through the product's HTTP API, as clients create them. */
export async function seed(
  base: string,
  {
    users: userCount,
    credentialsPerUser,
    concurrency,
  }: { users: number; credentialsPerUser: number; concurrency: number },
): Promise<SeededBenchUser[]> {
  const users: SeededBenchUser[] = [];
  const started = Date.now();
  const runId = randomBytes(4).toString('hex');
  await inParallel(userCount, concurrency, async (i) => {
    const session = await signUp(base, { email: `bench-${runId}-${i}@example.test`, name: `Bench ${i}` });
    const { query, variables } = workloadRequest('W3', '');
    const account = (await gqlOk(base, query, variables, session.token)).getOrCreateAccount.account;
    // All of a user's credentials in one request (aliased storeCredential
    // calls, one transaction): the real resolver, a third of the requests.
    if (credentialsPerUser > 0) {
      const indexes = Array.from({ length: credentialsPerUser }, (_, c) => c);
      await gqlOk(
        base,
        `mutation(${indexes.map((c) => `$c${c}: StoreCredentialInput!`).join(', ')}) { ` +
          `${indexes.map((c) => `c${c}: storeCredential(input: $c${c}) { id }`).join(' ')} }`,
        Object.fromEntries(
          indexes.map((c) => [
            `c${c}`,
            // Every other one without a nickname, so both display paths are exercised.
            {
              accountId: account.id,
              credentialType: 'alpaca',
              ...randomAlpacaKeys(),
              ...(c % 2 ? {} : { nickname: `Paper ${c + 1}` }),
            },
          ]),
        ),
        session.token,
      );
    }
    users.push({ token: session.token, userId: session.user.id, accountId: account.id });
    if (users.length % 100 === 0 || users.length === userCount) {
      process.stdout.write(
        `  seeded ${users.length}/${userCount} users (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
      );
    }
  });
  return users;
}

/**
 * PostGraphile's W1: the same rows under its generated names (Amber preset:
 * the primary key column is `rowId`, `id` is the global node id), aliased to
 * the product's field names. nickname is the stored column: PostGraphile has
 * no "credentialType when none" rule, so the check applies it (postgraphileRows).
 */
const POSTGRAPHILE_W1 =
  'query Accounts { accounts: allUserAccounts(orderBy: CREATED_AT_ASC) { nodes { id: rowId accountName ' +
  'credentials: userCredentialsByAccountIdAndUserId(condition: { isActive: true }, orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) ' +
  '{ nodes { id: rowId nickname credentialType apiKeyHint } } } } }';

/**
 * What a server of `kind` receives for `workload` from `user`: product and
 * baseline the same bytes (bearer token), PostGraphile its own query with the
 * user id in x-user-id. With `template`, W2's keys are placeholders that
 * bench/load.lua fills with fresh random keys on every request.
 */
export function userRequest(kind: ServerKind, workload: WorkloadName, user: SeededBenchUser, template: boolean) {
  if (kind === 'postgraphile') {
    if (workload !== 'W1') throw new Error('PostGraphile runs W1 only');
    return {
      header: 'x-user-id',
      value: user.userId,
      body: JSON.stringify({ query: POSTGRAPHILE_W1, operationName: 'Accounts' }),
    } satisfies UserRequest;
  }
  const request = workloadRequest(workload, user.accountId);
  const input = request.variables?.input as Record<string, unknown> | undefined;
  if (template && workload === 'W2' && input) Object.assign(input, { apiKey: '@APIKEY@', secretKey: '@SECRETKEY@' });
  return {
    header: 'Authorization',
    value: `Bearer ${user.token}`,
    body: JSON.stringify(request),
  } satisfies UserRequest;
}

async function post(url: string, request: UserRequest) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', [request.header]: request.value },
    body: request.body,
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { data?: any; errors?: unknown[] } };
}

/** PostGraphile's W1 answer in the product's shape (connections' nodes, the default nickname). */
function postgraphileRows(data: any) {
  return {
    accounts: data.accounts.nodes.map((a: any) => ({
      id: a.id,
      accountName: a.accountName,
      credentials: a.credentials.nodes.map((c: any) => ({ ...c, nickname: c.nickname ?? c.credentialType })),
    })),
  };
}

/** Every server must answer the same request with the same data, and refuse a bad token alike. */
export async function checkEquivalent(
  workload: WorkloadName,
  servers: { name: string; kind: ServerKind; url: string }[],
  users: SeededBenchUser[],
): Promise<void> {
  const comparable = (kind: ServerKind, data: any) => {
    if (kind === 'postgraphile') return postgraphileRows(data);
    if (workload !== 'W2') return data;
    const { id, ...rest } = data.storeCredential; // fresh ids differ, everything else must not
    return { ...rest, idIsUuid: /^[0-9a-f-]{36}$/.test(id) };
  };
  for (const user of users.slice(0, 3)) {
    // One set of keys for all (W2), so that the hints agree.
    const product = userRequest('product', workload, user, false);
    const answers = await Promise.all(
      servers.map((s) => post(s.url, s.kind === 'postgraphile' ? userRequest(s.kind, workload, user, false) : product)),
    );
    const first = answers[0];
    for (const [i, answer] of answers.entries()) {
      const server = servers[i] as (typeof servers)[number];
      if (
        answer.status !== 200 ||
        answer.body.errors ||
        !first?.body.data ||
        !isDeepStrictEqual(comparable(server.kind, answer.body.data), comparable('product', first.body.data))
      ) {
        throw new Error(`${workload}: the servers disagree:\nfirst: ${first?.text}\n${server.name}: ${answer.text}`);
      }
    }
    if (workload === 'W1' && !first?.body.data.accounts[0]?.credentials.length) {
      throw new Error(`W1: no credentials in the answer, nothing was compared: ${first?.text}`);
    }
  }
  const [user] = users;
  if (!user) throw new Error('no seeded users');
  for (const server of servers) {
    if (server.kind === 'postgraphile') {
      // No user id: RLS (app.current_user_id empty) must leave nothing visible.
      const res = await post(server.url, { ...userRequest(server.kind, workload, user, false), value: '' });
      if (res.status !== 200 || res.body.data?.accounts?.nodes?.length !== 0) {
        throw new Error(`postgraphile without a user id answered ${res.status} ${res.text}`);
      }
      continue;
    }
    const res = await post(server.url, {
      ...userRequest(server.kind, workload, user, false),
      value: 'Bearer not-a-session.signature',
    });
    if (res.status !== 401) throw new Error(`${server.name} accepted a bogus token (${res.status})`);
  }
}
