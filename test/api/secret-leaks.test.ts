// Secrets never leave: every credential operation, on success and failure
// paths, with the server logging at its most verbose; then no response body,
// no log line and no byte of the database holds a secret, in plain text,
// base64 or hex.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { gql, rawSignIn, rawSignUp, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { testSecrets, useServer } from '../support/server.ts';

const run = promisify(execFile);

const server = useServer({ env: { LOG_LEVEL: 'trace' } });
const responses: string[] = [];
const secrets: string[] = [];
/** The credential left stored at the end: the dump must hold it (as ciphertext). */
let survivor: string | undefined;

/** The server's own configuration, as it derives it from the environment it was given. */
const serverConfig = () =>
  loadConfig({ NODE_ENV: 'development', PORT: '0', ...testSecrets, ...server.db.env }, () => {});

/** Asserts that a call meant to succeed did, and returns its root field's value. */
function succeeded(res: Awaited<ReturnType<typeof call>>, field: string) {
  expect(res.body.errors, res.text).toBeUndefined();
  const value = res.body.data?.[field];
  expect(value, res.text).toBeTruthy();
  return value;
}

/** A distinctive secret, remembered for the final search. */
function secret(kind: string): string {
  const value = `LEAK-${kind}-${randomUUID().replaceAll('-', '')}`;
  secrets.push(value);
  return value;
}

function forms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  return [
    value,
    bytes.toString('base64'),
    bytes.toString('base64url'),
    bytes.toString('hex'),
    JSON.stringify(value).slice(1, -1),
  ];
}

async function call(query: string, variables?: Record<string, unknown>, auth?: Session | { token: string }) {
  const res = await gql(server.url, query, variables, auth);
  responses.push(res.text);
  return res;
}

async function raw(pathname: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  responses.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
}

const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id nickname apiKeyHint } }';
const UPDATE =
  'mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id apiKeyHint } }';

describe(`secrets never leave (${dbKind})`, () => {
  it('drives every credential operation, succeeding and failing', async () => {
    const password = secret('password');
    const owner = await signUp(server.url, { password });
    const other = await signUp(server.url);
    const signIn = await rawSignIn(server.url, owner.email, password);
    expect(signIn.status).toBe(200);
    responses.push(await signIn.text());
    await rawSignIn(server.url, owner.email, secret('wrong-password')).then(async (r) =>
      responses.push(await r.text()),
    );
    await rawSignUp(server.url, { email: owner.email, password: secret('dup-password'), name: 'x' }).then(async (r) =>
      responses.push(await r.text()),
    );

    const account = 'mutation { getOrCreateAccount { account { id } } }';
    const accountId = succeeded(await call(account, undefined, owner), 'getOrCreateAccount').account.id as string;
    const otherAccount = succeeded(await call(account, undefined, other), 'getOrCreateAccount').account.id as string;
    const good = () => ({ accountId, credentialType: 'alpaca', apiKey: secret('api'), secretKey: secret('secret') });

    // Successes: with variables and with literals in the document.
    const stored = succeeded(await call(STORE, { input: { ...good(), nickname: 'n' } }, owner), 'storeCredential')
      .id as string;
    const literal = good();
    const storedLiteral = await call(
      `mutation { storeCredential(input: { accountId: "${accountId}", credentialType: "alpaca", apiKey: "${literal.apiKey}", secretKey: "${literal.secretKey}" }) { id } }`,
      undefined,
      owner,
    );
    survivor = succeeded(storedLiteral, 'storeCredential').id as string;
    for (const input of [{ apiKey: secret('api-new') }, { secretKey: secret('secret-new'), nickname: 'x' }]) {
      expect(succeeded(await call(UPDATE, { id: stored, input }, owner), 'updateCredential').id).toBe(stored);
    }

    // Failures of every kind.
    await call(STORE, { input: { ...good(), credentialType: 'BAD TYPE' } }, owner);
    await call(STORE, { input: { ...good(), nickname: 'n'.repeat(101) } }, owner);
    await call(STORE, { input: { ...good(), apiKey: `${secret('api-ctl')}\u0007` } }, owner);
    await call(STORE, { input: { ...good(), secretKey: `${secret('secret-long')}${'s'.repeat(300)}` } }, owner);
    const { credentialType: _omitted, ...missing } = good();
    await call(STORE, { input: missing }, owner);
    await call(STORE, { input: { ...good(), unexpected: 'field' } }, owner);
    await call(STORE, { input: { ...good(), accountId: randomUUID() } }, owner);
    await call(STORE, { input: { ...good(), accountId: otherAccount } }, owner);
    await call(STORE, { input: good() });
    await call(STORE, { input: good() }, { token: 'forged.token' });
    await call(UPDATE, { id: stored, input: { apiKey: `${secret('api-long')}${'k'.repeat(300)}` } }, owner);
    await call(UPDATE, { id: stored, input: { apiKey: secret('api-foreign') } }, other);
    await call(UPDATE, { id: randomUUID(), input: { secretKey: secret('secret-unknown') } }, owner);
    await call(
      `mutation { storeCredential(input: { accountId: "${accountId}", apiKey: "${secret('api-literal-bad')}", secretKey: "${secret('secret-literal-bad')}" }) { id } }`,
      undefined,
      owner,
    );
    await call(
      `mutation { storeCredential(input: { accountId: "${accountId}", credentialType: "alpaca", apiKey: 1234567890123, secretKey: "${secret('secret-num')}" }) { id } }`,
      undefined,
      owner,
    );
    succeeded(
      await call('mutation($id: UUID!) { deleteCredential(id: $id) }', { id: stored }, owner),
      'deleteCredential',
    );
    await call(UPDATE, { id: stored, input: { secretKey: secret('secret-deleted') } }, owner);

    // Malformed and odd requests carrying secrets.
    await raw('/graphql', `{"query": "mutation { x }", "variables": {"apiKey": "${secret('broken-json')}"`, {
      authorization: `Bearer ${owner.token}`,
    });
    await raw('/graphql', JSON.stringify([{ query: STORE, variables: { input: good() } }]), {
      authorization: `Bearer ${owner.token}`,
    });
    await raw('/graphql', JSON.stringify({ query: STORE, variables: { input: good() }, operationName: 'Nope' }), {
      authorization: `Bearer ${owner.token}`,
    });

    expect(responses.length).toBeGreaterThan(25);
    expect(secrets.length).toBeGreaterThan(25);
  });

  it('keeps even one-character secrets out of the input GraphQL echoes in its errors', async () => {
    const owner = await signUp(server.url);
    const accountId = randomUUID();
    // A missing required field makes GraphQL print the whole input object.
    const res = await call(STORE, { input: { accountId, credentialType: 'alpaca', apiKey: 'Q' } }, owner);
    const literal = await call(
      `mutation { storeCredential(input: { accountId: "${accountId}", credentialType: "alpaca", apiKey: "Z", secretKey: 7 }) { id } }`,
      undefined,
      owner,
    );
    expect(res.body.errors?.[0]?.extensions?.field).toBe('secretKey');
    expect(res.text).toContain('[redacted]');
    expect(literal.body.errors?.length).toBeGreaterThan(0);
    for (const text of [res.text, literal.text, ...server.logs]) {
      for (const echoed of ['"Q"', '\\"Q\\"', '"Z"', '\\"Z\\"']) expect(text).not.toContain(echoed);
    }
  });

  it('keeps a wrongly typed secret out of the variable error, whatever the variable is called', async () => {
    const owner = await signUp(server.url);
    const accountId = (await call('mutation { getOrCreateAccount { account { id } } }', undefined, owner)).body.data
      ?.getOrCreateAccount.account.id as string;
    const digits = String(Date.now()) + String(Math.floor(Math.random() * 1e9));
    secrets.push(digits);
    const store =
      'mutation($a: UUID!, $k: String!, $nickname: String!) { storeCredential(input: { accountId: $a, credentialType: "alpaca", apiKey: $k, secretKey: $nickname }) { id } }';
    const typed = await Promise.all([
      call(store, { a: accountId, k: [secret('var-list')], nickname: 'fine-secret' }, owner),
      call(store, { a: accountId, k: { inner: secret('var-object') }, nickname: 'fine-secret' }, owner),
      call(store, { a: accountId, k: 'fine-key', nickname: Number(digits) }, owner),
      call(
        'mutation($id: UUID!, $x: String) { updateCredential(id: $id, input: { secretKey: $x }) { id } }',
        { id: randomUUID(), x: [secret('update-var')] },
        owner,
      ),
      // A misspelt field, and a whole input of the wrong shape: GraphQL prints the value it got.
      call(
        STORE,
        { input: { accountId, credentialType: 'alpaca', apiKy: secret('typo'), secretKey: 'fine-secret' } },
        owner,
      ),
      call(STORE, { input: secret('whole-input') }, owner),
      call(
        STORE,
        { input: [{ accountId, credentialType: 'alpaca', apiKey: secret('in-list'), secretKey: 's' }] },
        owner,
      ),
    ]);
    for (const res of typed) expect(res.body.errors?.[0]?.extensions?.code, res.text).toBe('BAD_USER_INPUT');
    const echoed = typed.flatMap((res) => secrets.filter((value) => res.text.includes(value)));
    expect(echoed).toEqual([]);
  });

  it('puts no secret in any response body or header', () => {
    for (const value of secrets) {
      for (const form of forms(value)) {
        const hit = responses.find((r) => r.includes(form));
        expect(hit, `${value} appears in a response`).toBeUndefined();
      }
    }
  });

  it('puts no secret, password, token or cookie in any log line', () => {
    expect(server.logs.length).toBeGreaterThan(10);
    for (const value of secrets) {
      for (const form of forms(value)) {
        const hit = server.logs.find((l) => l.includes(form));
        expect(hit, `${value} appears in the log: ${hit}`).toBeUndefined();
      }
    }
  });

  it('leaves no plaintext secret in a dump of the database', async () => {
    const dump = await dumpDatabase();
    expect(dump.length).toBeGreaterThan(1000);
    // The dump holds the surviving credential, under the server's key, so a dump that missed the data cannot pass.
    const keyId = (await serverConfig()).encryption.current.id;
    for (const held of [survivor as string, keyId]) expect(dump.includes(Buffer.from(held)), held).toBe(true);
    for (const value of secrets) {
      for (const form of forms(value)) {
        expect(dump.includes(Buffer.from(form)), `${value} (${form.slice(0, 12)}…) is in the database`).toBe(false);
      }
    }
  });
});

/** Everything the database holds, as bytes: pg_dump, or PGlite's files plus a SQL rendering. */
async function dumpDatabase(): Promise<Buffer> {
  expect(await server.stop()).toBe(0);
  if (server.db.url) {
    const { stdout } = await run('pg_dump', ['--no-owner', '--inserts', server.db.url], {
      maxBuffer: 256 * 1024 * 1024,
      encoding: 'buffer',
    });
    return stdout;
  }
  const { database } = await serverConfig();
  if (database.kind !== 'pglite') throw new Error('the server has no DATABASE_URL, so it runs on PGlite');
  const { dataDir } = database;
  const files = (await readdir(dataDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const raw = await Promise.all(files.map((f) => readFile(path.join(f.parentPath, f.name))));
  const pglite = new PGlite(dataDir);
  try {
    const tables = await pglite.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`,
    );
    const rows: string[] = [];
    for (const { tablename } of tables.rows) {
      const result = await pglite.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${tablename}" t`);
      rows.push(...result.rows.map((r) => r.row));
    }
    return Buffer.concat([...raw, Buffer.from(rows.join('\n'))]);
  } finally {
    await pglite.close();
  }
}
