// Property-based: hostile strings for every input field. The server answers
// BAD_USER_INPUT naming the field (and writes nothing), or stores the value
// and returns it verbatim (trimmed, as the contract says); never a 500.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiKeyHint } from '../../src/domain/credential.ts';
import { type GraphQLResponse, gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 40);

const METACHARACTERS = [
  "'",
  '"',
  "'; DROP TABLE user_credentials; --",
  '$1',
  '\\',
  '%_',
  '{ viewer { id } }',
  '#',
  '\u0000',
  '\u202e',
  '\ufeff',
  '\ud800',
  '\udfff',
  '🙂',
  'e\u0301',
  '\r\n',
];

/** Unicode, control characters, lone surrogates, metacharacters, and sizes around and far past the limits. */
const hostile = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }).map((codes) => String.fromCharCode(...codes)),
  fc.array(fc.constantFrom(...METACHARACTERS), { minLength: 1, maxLength: 8 }).map((parts) => parts.join('')),
  fc.integer({ min: 90, max: 110 }).map((n) => 'n'.repeat(n)),
  fc.integer({ min: 250, max: 262 }).map((n) => 'k'.repeat(n)),
  fc.string({ minLength: 1000, maxLength: 5000 }),
  fc.constantFrom('', ' ', '\t\n', 'alpaca', 'Alpaca', 'a', 'alpaca_paper_2'),
);

const server = useInProcessServer();
let user: Session;
let accountId: string;
let stored = 0;

const STORE =
  'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id credentialType nickname apiKeyHint } }';
const UPDATE_ACCOUNT =
  'mutation($id: UUID!, $input: UpdateAccountInput!) { updateAccount(id: $id, input: $input) { accountName } }';
const valid = { credentialType: 'alpaca', apiKey: 'PKVALIDKEY0000001234', secretKey: 'valid-secret' };

/** Either BAD_USER_INPUT naming `field`, or a clean success; never anything else. */
function outcome(res: GraphQLResponse, field: string): 'rejected' | 'accepted' {
  expect(res.status, res.text).toBeLessThan(500);
  if (!res.body.errors) return 'accepted';
  expect(res.body.errors).toHaveLength(1);
  expect(res.body.errors[0]?.extensions, res.text).toMatchObject({ code: 'BAD_USER_INPUT', field });
  expect(res.body.data ?? null).toBeNull();
  return 'rejected';
}

async function credentialCount(): Promise<number> {
  const res = await gql(server.url, '{ accounts { credentials(includeInactive: true) { id } } }', undefined, user);
  return res.body.data?.accounts[0].credentials.length;
}

beforeAll(async () => {
  user = await signUp(server.url);
  accountId = (await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, user)).body.data
    ?.getOrCreateAccount.account.id;
});

describe(`hostile input (${dbKind}, ${RUNS} runs per field)`, () => {
  it('accountName: rejected with nothing changed, or stored and returned verbatim', async () => {
    let current = (await gql(server.url, '{ accounts { accountName } }', undefined, user)).body.data?.accounts[0]
      .accountName;
    await fc.assert(
      fc.asyncProperty(hostile, async (accountName) => {
        const res = await gql(server.url, UPDATE_ACCOUNT, { id: accountId, input: { accountName } }, user);
        if (outcome(res, 'accountName') === 'accepted') {
          expect(res.body.data?.updateAccount.accountName).toBe(accountName.trim());
          current = accountName.trim();
        }
        const now = await gql(server.url, '{ accounts { accountName } }', undefined, user);
        expect(now.body.data?.accounts[0].accountName).toBe(current);
      }),
      { numRuns: RUNS },
    );
  });

  for (const field of ['nickname', 'credentialType', 'apiKey', 'secretKey'] as const) {
    it(`${field}: rejected with nothing written, or stored and returned as given`, async () => {
      await fc.assert(
        fc.asyncProperty(hostile, async (value) => {
          const before = stored;
          const res = await gql(server.url, STORE, { input: { accountId, ...valid, [field]: value } }, user);
          if (outcome(res, field) === 'accepted') {
            stored += 1;
            const credential = res.body.data?.storeCredential;
            if (field === 'nickname') expect(credential.nickname).toBe(value.trim() || 'alpaca');
            if (field === 'credentialType') expect(credential.credentialType).toBe(value);
            if (field === 'apiKey') expect(credential.apiKeyHint).toBe(apiKeyHint(value.trim()));
            const read = await gql(
              server.url,
              'query($id: UUID!) { credential(id: $id) { nickname credentialType apiKeyHint } }',
              { id: credential.id },
              user,
            );
            expect(read.body.data?.credential).toEqual({
              nickname: credential.nickname,
              credentialType: credential.credentialType,
              apiKeyHint: credential.apiKeyHint,
            });
          }
          expect(await credentialCount()).toBe(stored === before ? before : before + 1);
        }),
        { numRuns: RUNS },
      );
    });
  }
});
