// Someone who can write to the database but has no encryption key (a stolen
// database login, a restored backup) must not be able to put an older
// ciphertext of a credential back after its owner stored new keys: the
// server would open it and send the old keys to the broker. The
// associated data of a sealed secret binds secrets_version, which
// updateCredential moves on with new keys.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecryptionError } from '../../src/crypto/cipher.ts';
import { defaultKeyId, Keyring } from '../../src/crypto/keyring.ts';
import { readCredentialSecrets } from '../../src/services/credential-secrets.ts';
import { type AlpacaStandIns, startAlpacaStandIns } from '../support/alpaca-stand-in.ts';
import { gql, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { type InProcessServer, startInProcess } from '../support/in-process.ts';
import { testSecrets } from '../support/server.ts';

let brokers: AlpacaStandIns;
let server: InProcessServer;

beforeAll(async () => {
  brokers = await startAlpacaStandIns();
  server = await startInProcess({ env: brokers.env });
});
afterAll(async () => {
  await brokers?.close();
  await server?.close();
});

const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }';
const UPDATE =
  'mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id } }';
const VERIFY = 'mutation($id: UUID!) { verifyCredential(id: $id) { verification { status } } }';

interface Sealed {
  key_id: string;
  api_key_ciphertext: Uint8Array;
  secret_key_ciphertext: Uint8Array;
}

/** The database writer's view: the owner connection, no key. */
const owner = () => server.db.unscopedClient;

describe(`an older ciphertext restored behind the server's back (${dbKind})`, () => {
  it('does not open once new keys were stored: nothing reaches the broker', async () => {
    const session = await signUp(server.url);
    const accountId = (await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session))
      .body.data?.getOrCreateAccount.account.id;
    const old = { apiKey: `PKOLD${randomUUID().slice(0, 8)}`, secretKey: `old-${randomUUID()}` };
    const id = (await gql(server.url, STORE, { input: { accountId, credentialType: 'alpaca', ...old } }, session)).body
      .data?.storeCredential.id as string;
    brokers.paper.setKey(old.apiKey, { kind: 'account', secretKey: old.secretKey });

    const [copy] = await owner().$queryRaw<Sealed[]>`
      SELECT key_id, api_key_ciphertext, secret_key_ciphertext FROM user_credentials WHERE id = ${id}::uuid`;
    // The owner replaces leaked keys...
    const fresh = { apiKey: `PKNEW${randomUUID().slice(0, 8)}`, secretKey: `new-${randomUUID()}` };
    expect((await gql(server.url, UPDATE, { id, input: fresh }, session)).body.errors).toBeUndefined();
    // ...and someone with write access puts the old ciphertexts back (the version column as it is).
    const restored = await owner().$executeRaw`
      UPDATE user_credentials SET api_key_ciphertext = ${copy?.api_key_ciphertext},
             secret_key_ciphertext = ${copy?.secret_key_ciphertext}, key_id = ${copy?.key_id}
       WHERE id = ${id}::uuid`;
    expect(restored).toBe(1);

    // The server reads the credential's keys: for the broker, and for any server-side use.
    const before = { paper: brokers.paper.requests.length, live: brokers.live.requests.length };
    const verified = await gql(server.url, VERIFY, { id }, session);
    const sent = [...brokers.paper.requests.slice(before.paper), ...brokers.live.requests.slice(before.live)];
    expect(sent.map((r) => r.apiKey)).toEqual([]);
    expect(verified.body.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    await expect(readCredentialSecrets(server.db, serverKeyring(), session.user.id, id)).rejects.toThrow(
      DecryptionError,
    );
  });
});

/** The key the in-process server seals with (test/support/server.ts's ENCRYPTION_KEY, its derived id). */
function serverKeyring(): Keyring {
  const key = Buffer.from(testSecrets.ENCRYPTION_KEY, 'base64');
  return new Keyring({ id: defaultKeyId(key), key });
}
