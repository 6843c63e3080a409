// Trusted documents (TRUSTED_DOCUMENTS, src/graphql/trusted-documents.ts):
// with `required` the server runs only the SDK's operations, sent by hash;
// `allowed` (the default) takes hashes and text; `off` knows no hashes.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, documentHashes, GraphQLRequestError } from 'brokerage-credentials-api/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTrustedDocuments } from '../../src/graphql/trusted-documents.ts';
import { startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { registerClient } from '../support/engine.ts';
import { useInProcessServer } from '../support/in-process.ts';
import { countStatements } from '../support/statement-counter.ts';

const brokers = await startAlpacaStandIns();
afterAll(() => brokers.close());

const manifest = loadTrustedDocuments();
const VIEWER_HASH = documentHashes.Viewer as string;

/** A POST of `body` as JSON (bearer token optional); its status and parsed body. */
async function post(url: string, body: unknown, token?: string) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      data?: unknown;
      errors?: { message: string; extensions?: Record<string, unknown> }[];
    },
  };
}

const byHash = (sha256Hash: string, variables?: unknown) => ({
  variables,
  extensions: { persistedQuery: { version: 1, sha256Hash } },
});

describe('the manifest', () => {
  it("lists each SDK operation once, under the SHA-256 of its text, and the client's hashes are its keys", async () => {
    expect(Object.keys(documentHashes).length).toBeGreaterThan(10);
    expect(manifest.size).toBe(Object.keys(documentHashes).length);
    for (const [name, hash] of Object.entries(documentHashes)) {
      const document = manifest.get(hash) as string;
      expect(document, name).toMatch(new RegExp(`^(query|mutation) ${name}\\b`));
      // Computed here with WebCrypto, not with the codegen's own documentHash.
      const sha256 = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(document)));
      expect(sha256.toString('hex'), name).toBe(hash);
    }
  });

  it('does not load when a document does not match its hash', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bca-manifest-'));
    try {
      const file = path.join(dir, 'persisted-documents.json');
      await writeFile(file, JSON.stringify({ [VIEWER_HASH]: '{ accounts { credentials { id } } }' }));
      expect(() => loadTrustedDocuments(file)).toThrow(/has another hash/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe(`TRUSTED_DOCUMENTS=required (${dbKind})`, () => {
  const statements: string[] = [];
  const server = useInProcessServer({
    env: { ...brokers.env, TRUSTED_DOCUMENTS: 'required' },
    instrument: countStatements((sql) => statements.push(sql)),
  });

  it('says so at start, and serves no GraphiQL', async () => {
    const count = Object.keys(documentHashes).length;
    expect(server.logs.some((l) => l.includes(`TRUSTED_DOCUMENTS=required: only the SDK's ${count} operations`))).toBe(
      true,
    );
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toContain('YogaGraphiQL');
  });

  it('refuses any document sent as text, before anything runs (HTTP 400, PERSISTED_QUERY_ID_REQUIRED)', async () => {
    const session = await signUp(server.url);
    await post(server.url, byHash(VIEWER_HASH), session.token);
    statements.length = 0;
    const viewerText = manifest.get(VIEWER_HASH) as string;
    for (const query of ['{ accounts { id } }', viewerText, '{ __schema { types { name } } }']) {
      const res = await post(server.url, { query }, session.token);
      expect(res.status, query).toBe(400);
      expect(res.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_ID_REQUIRED');
      expect(res.body.errors?.[0]?.message).toMatch(/trusted documents only/);
    }
    expect(statements).toEqual([]);
  });

  it('refuses an unknown hash with PERSISTED_QUERY_NOT_IN_LIST, and takes documentId too', async () => {
    const unknown = await post(server.url, byHash('0'.repeat(64)));
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_IN_LIST');
    expect(await post(server.url, { documentId: `sha256:${VIEWER_HASH}` })).toEqual({
      status: 200,
      body: { data: { viewer: null } },
    });
    expect((await post(server.url, { documentId: VIEWER_HASH })).body).toEqual({ data: { viewer: null } });
  });

  it('serves every SDK operation by hash (the client with trustedDocuments: true)', async () => {
    const session = await signUp(server.url, { name: 'Trusting' });
    const sent: { query?: string; extensions?: { persistedQuery?: { sha256Hash: string } } }[] = [];
    const client = createClient({
      url: `${server.url}/graphql`,
      token: session.token,
      trustedDocuments: true,
      fetch: async (input, init) => {
        sent.push(JSON.parse(String(init?.body)));
        return fetch(input, init);
      },
    });
    expect((await client.Viewer()).viewer?.name).toBe('Trusting');
    const { account } = (await client.GetOrCreateAccount()).getOrCreateAccount;
    await expect(client.CreateAccount({ input: { accountName: 'Second' } })).rejects.toThrow(GraphQLRequestError);
    await client.UpdateAccount({ id: account.id, input: { accountName: 'Trusted' } });
    const apiKey = 'PKTRUSTED000000001';
    brokers.paper.setKey(apiKey, { kind: 'account', secretKey: 'trusted-secret', accountNumber: 'PA3TRUST0001' });
    const { storeCredential } = await client.StoreCredential({
      input: { accountId: account.id, credentialType: 'alpaca', apiKey, secretKey: 'trusted-secret' },
    });
    const { updateCredential } = await client.UpdateCredential({
      id: storeCredential.id,
      input: { nickname: 'Paper' },
    });
    expect(updateCredential.nickname).toBe('Paper');
    expect((await client.VerifyCredential({ id: storeCredential.id })).verifyCredential.verification.status).toBe(
      'VERIFIED',
    );
    expect((await client.Accounts()).accounts[0]?.credentials.map((c) => c.nickname)).toEqual(['Paper']);
    expect((await client.Account({ id: account.id }))?.account?.accountName).toBe('Trusted');
    expect((await client.Credential({ id: storeCredential.id })).credential?.account.id).toBe(account.id);
    const history = await client.CredentialHistory({ id: storeCredential.id, first: 100 });
    expect(history.credential?.events.edges.map((e) => e.node.action)).toEqual(['VERIFIED', 'UPDATED', 'STORED']);
    expect((await client.CredentialEvents({ first: 2 })).credentialEvents.pageInfo.hasNextPage).toBe(true);
    const engine = await registerClient(server.db);
    expect((await client.EngineClients()).engineClients.map((c) => c.id)).toContain(engine.clientId);
    const { grantEngineAccess } = await client.GrantEngineAccess({
      input: { credentialId: storeCredential.id, clientId: engine.clientId, scopes: ['READ'] },
    });
    expect(grantEngineAccess.guardrails.tradingState).toBe('ACTIVE');
    const { setEngineGuardrails } = await client.SetEngineGuardrails({
      grantId: grantEngineAccess.id,
      input: { maxOrderNotional: '5000', symbols: ['aapl'] },
    });
    expect(setEngineGuardrails.guardrails).toMatchObject({ maxOrderNotional: '5000', symbols: ['AAPL'] });
    expect(setEngineGuardrails.usageToday).toMatchObject({ orders: 0, notional: '0' });
    const { haltEngineAccess } = await client.HaltEngineAccess({ credentialId: storeCredential.id });
    expect(haltEngineAccess).toEqual([expect.objectContaining({ id: grantEngineAccess.id })]);
    expect(haltEngineAccess[0]?.guardrails.tradingState).toBe('HALTED');
    expect((await client.RevokeEngineAccess({ id: grantEngineAccess.id })).revokeEngineAccess.revokedAt).not.toBeNull();
    const grants = await client.CredentialEngineGrants({ id: storeCredential.id });
    expect(grants.credential?.engineGrants.map((g) => g.id)).toEqual([grantEngineAccess.id]);
    expect((await client.DeleteCredential({ id: storeCredential.id })).deleteCredential).toBe(storeCredential.id);

    const hashes = sent.map((body) => body.extensions?.persistedQuery?.sha256Hash);
    expect(sent.every((body) => body.query === undefined)).toBe(true);
    expect(new Set(hashes)).toEqual(new Set(Object.values(documentHashes)));
  });
});

describe(`TRUSTED_DOCUMENTS=allowed, the default (${dbKind})`, () => {
  const server = useInProcessServer();

  it('runs documents by hash and as text; an unknown hash answers PERSISTED_QUERY_NOT_FOUND', async () => {
    const session = await signUp(server.url, { name: 'Either' });
    const viewer = { data: { viewer: { id: session.user.id, email: session.email, name: 'Either' } } };
    expect((await post(server.url, byHash(VIEWER_HASH), session.token)).body).toEqual(viewer);
    expect((await gql(server.url, '{ viewer { id email name } }', undefined, session)).body).toEqual(viewer);
    const unknown = await post(server.url, byHash('f'.repeat(64)));
    expect(unknown.body.errors?.[0]).toMatchObject({
      message: 'PersistedQueryNotFound',
      extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
    });
    const neither = await post(server.url, { variables: {} });
    expect(neither.status).toBe(400);
    expect(neither.body.errors?.[0]).toMatchObject({ message: 'Must provide query string.' });
  });
});

describe(`TRUSTED_DOCUMENTS=off (${dbKind})`, () => {
  const server = useInProcessServer({ env: { TRUSTED_DOCUMENTS: 'off' } });

  it('does not know hashes: a request without text has no query', async () => {
    const res = await post(server.url, byHash(VIEWER_HASH));
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.message).toBe('Must provide query string.');
    expect((await gql(server.url, '{ viewer { id } }')).body).toEqual({ data: { viewer: null } });
  });
});
