// Engine clients, their OAuth tokens and users' grants (docs/engines.md),
// on the real server in-process and a real database: the RFC 8414 metadata,
// the client-credentials token endpoint (both client authentications, every
// refusal), revocation, what the database keeps of secrets; and in GraphQL
// engineClients, Credential.engineGrants, grantEngineAccess and
// revokeEngineAccess with their audit events and refusals.
import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { revokeEngineClient } from '../../src/engine/clients.ts';
import { errorOf, gql } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import {
  accessToken,
  engineRequest,
  GRANT,
  grant,
  type Owner,
  owner,
  registerClient,
  requestToken,
  revokeGrant,
  storeCredential,
} from '../support/engine.ts';
import { useInProcessServer } from '../support/in-process.ts';

const server = useInProcessServer();

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

describe(`engine clients and tokens (${dbKind})`, () => {
  it('publishes RFC 8414 metadata whose token_endpoint issues tokens', async () => {
    const res = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    const metadata = (await res.json()) as Record<string, unknown>;
    expect(metadata).toEqual({
      issuer: server.url,
      token_endpoint: `${server.url}/engine/v1/oauth/token`,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      response_types_supported: [],
    });
    const client = await registerClient(server.db);
    const token = await fetch(metadata.token_endpoint as string, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    expect(token.status).toBe(200);
  });

  it('issues opaque Bearer tokens for client_secret_basic and client_secret_post, never cached', async () => {
    const client = await registerClient(server.db);
    for (const how of ['basic', 'post'] as const) {
      const res = await requestToken(server.url, client, how);
      expect(res.status, how).toBe(200);
      expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 600 });
      expect(res.body.access_token).toMatch(/^eat_[A-Za-z0-9_-]{43}$/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('pragma')).toBe('no-cache');
      const grants = await engineRequest(server.url, 'GET', '/engine/v1/grants', {
        token: res.body.access_token as string,
      });
      expect(grants.status).toBe(200);
    }
    // A scope parameter is accepted (and means nothing: access is per grant).
    expect(
      (await requestToken(server.url, client, 'basic', { grant_type: 'client_credentials', scope: 'trade' })).status,
    ).toBe(200);
  });

  it('refuses a wrong, unknown or missing client with 401 invalid_client, another grant type with 400', async () => {
    const client = await registerClient(server.db);
    const wrong = await requestToken(server.url, { ...client, clientSecret: `${client.clientSecret}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: 'invalid_client' });
    expect(wrong.headers.get('www-authenticate')).toBe('Basic realm="engine"');
    const unknown = await requestToken(
      server.url,
      { clientId: 'ec_unknown', clientSecret: client.clientSecret },
      'post',
    );
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual({ error: 'invalid_client' });
    const form = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${server.url}/engine/v1/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
      });
    const anonymous = await form('grant_type=client_credentials');
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: 'invalid_client' });

    for (const grantType of [
      'password',
      'authorization_code',
      'refresh_token',
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
    ]) {
      const res = await requestToken(server.url, client, 'basic', { grant_type: grantType });
      expect(res.status, grantType).toBe(400);
      expect(res.body).toEqual({ error: 'unsupported_grant_type' });
    }
    const invalid = [
      await form(''),
      await form(
        `grant_type=client_credentials&grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}`,
      ),
      await fetch(`${server.url}/engine/v1/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          grant_type: 'client_credentials',
          client_id: client.clientId,
          client_secret: client.clientSecret,
        }),
      }),
      // Both ways at once (RFC 6749 2.3: one method per request).
      await form(`grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}`, {
        authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
      }),
    ];
    for (const res of invalid) {
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
    }
    const get = await fetch(`${server.url}/engine/v1/oauth/token`);
    expect(get.status).toBe(405);
  });

  it('revoking a client refuses its tokens at their next use and its next token request', async () => {
    const client = await registerClient(server.db);
    const token = await accessToken(server.url, client);
    expect((await engineRequest(server.url, 'GET', '/engine/v1/grants', { token })).status).toBe(200);
    const revoked = await revokeEngineClient(server.db, client.clientId);
    expect(revoked).toMatchObject({ id: client.clientId, revokedAt: expect.any(Date) });
    expect((await engineRequest(server.url, 'GET', '/engine/v1/grants', { token })).status).toBe(401);
    const again = await requestToken(server.url, client);
    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: 'invalid_client' });
    expect(await revokeEngineClient(server.db, 'ec_nobody')).toBeNull();
  });

  it('keeps only SHA-256 hashes of client secrets and tokens: the tables hold nothing usable', async () => {
    const client = await registerClient(server.db);
    const token = await accessToken(server.url, client);
    const stored = JSON.stringify({
      clients: await server.db.unscopedClient.engineClient.findMany(),
      tokens: await server.db.unscopedClient.engineToken.findMany(),
    });
    expect(stored).not.toContain(client.clientSecret);
    expect(stored).not.toContain(token);
    expect(stored).not.toContain(client.clientSecret.slice(4, 24));
    expect(stored).toContain(sha256(client.clientSecret));
    expect(stored).toContain(sha256(token));
  });

  it('expires tokens after ENGINE_TOKEN_TTL_SECONDS: the next call is 401', async () => {
    const client = await registerClient(server.db);
    const token = await accessToken(server.url, client);
    const row = await server.db.unscopedClient.engineToken.findUniqueOrThrow({ where: { tokenHash: sha256(token) } });
    expect(row.expiresAt.getTime() - row.createdAt.getTime()).toBe(600_000);
    await server.db.unscopedClient.engineToken.update({
      where: { tokenHash: sha256(token) },
      data: { expiresAt: new Date(Date.now() - 1) },
    });
    expect((await engineRequest(server.url, 'GET', '/engine/v1/grants', { token })).status).toBe(401);
    // Issuing the next token clears the client's expired ones.
    await accessToken(server.url, client);
    expect(await server.db.unscopedClient.engineToken.findUnique({ where: { tokenHash: sha256(token) } })).toBeNull();
  });
});

const GRANTS = `query($id: UUID!) { credential(id: $id) { engineGrants { id scopes createdAt expiresAt revokedAt isActive credentialId client { id name } } } }`;
const EVENTS =
  'query($id: UUID!) { credentialEvents(credentialId: $id) { edges { node { action engineClientId engineRequest changedFields verificationStatus } } } }';

async function grantsOf(who: Owner, id: string) {
  const res = await gql(server.url, GRANTS, { id }, who.session);
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.credential.engineGrants as Record<string, unknown>[];
}

async function eventsOf(who: Owner, id: string) {
  const res = await gql(server.url, EVENTS, { id }, who.session);
  expect(res.body.errors).toBeUndefined();
  return res.body.data?.credentialEvents.edges.map((e: { node: unknown }) => e.node);
}

describe(`engine grants in GraphQL (${dbKind})`, () => {
  it('lists the registered, unrevoked clients in engineClients', async () => {
    const kept = await registerClient(server.db, 'Kept engine');
    const gone = await registerClient(server.db, 'Gone engine');
    await revokeEngineClient(server.db, gone.clientId);
    const who = await owner(server.url);
    const res = await gql(server.url, '{ engineClients { id name } }', undefined, who.session);
    const clients = res.body.data?.engineClients as { id: string; name: string }[];
    expect(clients).toContainEqual({ id: kept.clientId, name: 'Kept engine' });
    expect(clients.map((c) => c.id)).not.toContain(gone.clientId);
    expect(JSON.stringify(res.body)).not.toMatch(/secret|hash/i);
    const anonymous = await gql(server.url, '{ engineClients { id } }');
    expect(anonymous.status).toBe(401);
  });

  it('grants, replaces and revokes, each with its audit event in the same transaction', async () => {
    const who = await owner(server.url);
    const credential = await storeCredential(server.url, who);
    const client = await registerClient(server.db, 'Replace engine');
    const other = await registerClient(server.db, 'Other engine');

    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const first = await gql(
      server.url,
      GRANT,
      { input: { credentialId: credential.id, clientId: client.clientId, scopes: ['READ'], expiresAt } },
      who.session,
    );
    expect(first.body.data?.grantEngineAccess).toMatchObject({
      scopes: ['READ'],
      expiresAt,
      revokedAt: null,
      isActive: true,
      client: { id: client.clientId, name: 'Replace engine' },
    });
    const firstId = first.body.data?.grantEngineAccess.id as string;
    const otherGrant = await grant(server.url, who, {
      credentialId: credential.id,
      clientId: other.clientId,
      scopes: ['TRADE'],
    });
    // Granting the same client again replaces its active grant (not the other client's).
    const second = await grant(server.url, who, {
      credentialId: credential.id,
      clientId: client.clientId,
      scopes: ['TRADE', 'READ'],
    });
    const grants = await grantsOf(who, credential.id);
    expect(grants.map((g) => g.id)).toEqual([second.id, otherGrant.id, firstId]);
    expect(grants[0]).toMatchObject({
      scopes: ['READ', 'TRADE'],
      isActive: true,
      revokedAt: null,
      credentialId: credential.id,
    });
    expect(grants[1]).toMatchObject({ isActive: true });
    expect(grants[2]).toMatchObject({ isActive: false, revokedAt: expect.any(String) });

    const revoked = await revokeGrant(server.url, who, second.id);
    expect(revoked.body.data?.revokeEngineAccess).toMatchObject({ id: second.id, isActive: false });
    // Revoking again changes nothing and writes nothing.
    const again = await revokeGrant(server.url, who, second.id);
    expect(again.body.data?.revokeEngineAccess.revokedAt).toBe(revoked.body.data?.revokeEngineAccess.revokedAt);

    const events = await eventsOf(who, credential.id);
    const engine = (action: string, clientId: string) => ({
      action,
      engineClientId: clientId,
      engineRequest: null,
      changedFields: [],
      verificationStatus: null,
    });
    expect(events).toEqual([
      engine('ACCESS_REVOKED', client.clientId),
      engine('ACCESS_GRANTED', client.clientId),
      engine('ACCESS_REVOKED', client.clientId),
      engine('ACCESS_GRANTED', other.clientId),
      engine('ACCESS_GRANTED', client.clientId),
      { action: 'STORED', engineClientId: null, engineRequest: null, changedFields: [], verificationStatus: null },
    ]);
  });

  it('makes no grant and revokes none whose audit event cannot be written (one transaction)', async () => {
    const who = await owner(server.url);
    const credential = await storeCredential(server.url, who);
    const kept = await registerClient(server.db, 'Kept grant');
    const refused = await registerClient(server.db, 'Refused grant');
    const keptGrant = await grant(server.url, who, {
      credentialId: credential.id,
      clientId: kept.clientId,
      scopes: ['READ'],
    });
    const before = await grantsOf(who, credential.id);
    // The code cannot make its own INSERT fail: a trigger (installed as the
    // owner, as a migration would) refuses every event of this credential.
    await server.db.unscopedClient.$executeRawUnsafe(`
      CREATE FUNCTION grants_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.credential_id = '${credential.id}' THEN RAISE EXCEPTION 'event write refused by the test'; END IF;
        RETURN NEW;
      END $$`);
    await server.db.unscopedClient.$executeRawUnsafe(
      'CREATE TRIGGER grants_test_refuse BEFORE INSERT ON credential_events FOR EACH ROW EXECUTE FUNCTION grants_test_refuse()',
    );
    try {
      const granting = await gql(
        server.url,
        GRANT,
        { input: { credentialId: credential.id, clientId: refused.clientId, scopes: ['TRADE'] } },
        who.session,
      );
      expect(errorOf(granting).code).toBe('INTERNAL_SERVER_ERROR');
      // Replacing the kept client's grant: its old grant must stay as it was.
      const replacing = await gql(
        server.url,
        GRANT,
        { input: { credentialId: credential.id, clientId: kept.clientId, scopes: ['READ', 'TRADE'] } },
        who.session,
      );
      expect(errorOf(replacing).code).toBe('INTERNAL_SERVER_ERROR');
      expect(errorOf(await revokeGrant(server.url, who, keptGrant.id)).code).toBe('INTERNAL_SERVER_ERROR');
    } finally {
      await server.db.unscopedClient.$executeRawUnsafe('DROP TRIGGER grants_test_refuse ON credential_events');
      await server.db.unscopedClient.$executeRawUnsafe('DROP FUNCTION grants_test_refuse()');
    }
    expect(await grantsOf(who, credential.id)).toEqual(before);
    expect(before).toMatchObject([{ id: keptGrant.id, isActive: true, scopes: ['READ'] }]);
    expect((await eventsOf(who, credential.id)).map((e: { action: string }) => e.action)).toEqual([
      'ACCESS_GRANTED',
      'STORED',
    ]);
  });

  it('answers NOT_FOUND for another user’s or an absent credential, an unknown or revoked client; BAD_USER_INPUT on scopes and expiresAt; nothing written', async () => {
    const alice = await owner(server.url);
    const bob = await owner(server.url);
    const hers = await storeCredential(server.url, alice);
    const his = await storeCredential(server.url, bob);
    const client = await registerClient(server.db);
    const revokedClient = await registerClient(server.db);
    await revokeEngineClient(server.db, revokedClient.clientId);
    const attempt = (input: Record<string, unknown>) =>
      gql(
        server.url,
        GRANT,
        { input: { credentialId: his.id, clientId: client.clientId, scopes: ['READ'], ...input } },
        bob.session,
      );

    const foreign = await attempt({ credentialId: hers.id });
    expect(errorOf(foreign)).toMatchObject({ code: 'NOT_FOUND' });
    const absent = await attempt({ credentialId: randomUUID() });
    expect(errorOf(absent)).toEqual(errorOf(foreign));
    expect(errorOf(await attempt({ clientId: 'ec_unknown' })).code).toBe('NOT_FOUND');
    expect(errorOf(await attempt({ clientId: revokedClient.clientId })).code).toBe('NOT_FOUND');
    expect(errorOf(await attempt({ scopes: [] }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'scopes' });
    expect(errorOf(await attempt({ expiresAt: new Date(Date.now() - 60_000).toISOString() }))).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'expiresAt',
    });
    expect(errorOf(await attempt({ scopes: ['ADMIN'] })).code).toBe('BAD_USER_INPUT');
    // Nothing was written anywhere.
    expect(await grantsOf(bob, his.id)).toEqual([]);
    expect(await grantsOf(alice, hers.id)).toEqual([]);
    expect((await eventsOf(bob, his.id)).map((e: { action: string }) => e.action)).toEqual(['STORED']);
    expect((await eventsOf(alice, hers.id)).map((e: { action: string }) => e.action)).toEqual(['STORED']);

    // Revoking someone else's grant is NOT_FOUND, exactly like an absent one, and changes nothing.
    const hersGrant = await grant(server.url, alice, {
      credentialId: hers.id,
      clientId: client.clientId,
      scopes: ['READ'],
    });
    const stolen = await revokeGrant(server.url, bob, hersGrant.id);
    expect(errorOf(stolen).code).toBe('NOT_FOUND');
    expect(errorOf(await revokeGrant(server.url, bob, randomUUID()))).toEqual(errorOf(stolen));
    expect((await grantsOf(alice, hers.id))[0]).toMatchObject({ id: hersGrant.id, isActive: true });
  });

  it('refuses credentials no engine can use (UNSUPPORTED_CREDENTIAL_TYPE)', async () => {
    const who = await owner(server.url);
    const other = await storeCredential(server.url, who, { credentialType: 'binance' });
    const client = await registerClient(server.db);
    const res = await gql(
      server.url,
      GRANT,
      { input: { credentialId: other.id, clientId: client.clientId, scopes: ['READ'] } },
      who.session,
    );
    expect(errorOf(res)).toMatchObject({ code: 'UNSUPPORTED_CREDENTIAL_TYPE' });
    expect(errorOf(res).message).toMatch(/binance.*granted to trading engines/);
    expect(await grantsOf(who, other.id)).toEqual([]);
    expect((await eventsOf(who, other.id)).map((e: { action: string }) => e.action)).toEqual(['STORED']);
  });

  it('is gone with its credential; the trail stays', async () => {
    const who = await owner(server.url);
    const credential = await storeCredential(server.url, who);
    const client = await registerClient(server.db);
    const token = await accessToken(server.url, client);
    await grant(server.url, who, { credentialId: credential.id, clientId: client.clientId, scopes: ['READ'] });
    expect((await engineRequest(server.url, 'GET', '/engine/v1/grants', { token })).json.grants).toHaveLength(1);
    await gql(server.url, 'mutation($id: UUID!) { deleteCredential(id: $id) }', { id: credential.id }, who.session);
    expect((await engineRequest(server.url, 'GET', '/engine/v1/grants', { token })).json.grants).toEqual([]);
    expect((await eventsOf(who, credential.id)).map((e: { action: string }) => e.action)).toEqual([
      'DELETED',
      'ACCESS_GRANTED',
      'STORED',
    ]);
  });
});
