// Property-based: hostile strings for every input field. The server accepts
// exactly the values the input rules of docs/graphql.md (written out again below,
// not imported from src) call valid: it stores those and returns them
// verbatim (trimmed), and answers BAD_USER_INPUT naming the field, writing
// nothing, for every other; never a 500.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
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

// The input rules (docs/graphql.md). Lengths are in code points, after
// trimming (String#trim). "Control characters" are Unicode's (general
// category Cc: C0, DEL, C1). Text with a lone surrogate is not text: it could
// be neither stored nor returned verbatim. The rules name control
// characters for the keys; the server applies the same text rule to the names
// too (src/domain/text.ts), and this oracle holds it to that.
const codePoints = (value: string) => [...value].length;
const isText = (value: string) => !/\p{Cc}|\p{Cs}/u.test(value);
const textWithin = (value: string, min: number, max: number) => {
  const trimmed = value.trim();
  return isText(trimmed) && codePoints(trimmed) >= min && codePoints(trimmed) <= max;
};
const VALID: Record<'accountName' | 'nickname' | 'credentialType' | 'apiKey' | 'secretKey', (v: string) => boolean> = {
  accountName: (v) => textWithin(v, 1, 100),
  // Blank means "no nickname" (shown as the credential type).
  nickname: (v) => v.trim() === '' || textWithin(v, 1, 100),
  credentialType: (v) => /^[a-z][a-z0-9_]{1,31}$/.test(v),
  apiKey: (v) => textWithin(v, 1, 256),
  secretKey: (v) => textWithin(v, 1, 256),
};

/**
 * apiKeyHint as docs/graphql.md shows it ("••••X7Q2"): the mask, then at most
 * the last 4 characters of the (trimmed) key, never more than half of it,
 * and all 4 once the key has 8 or more.
 */
function expectHintOf(hint: string, apiKey: string) {
  const shown = /^••••(.*)$/su.exec(hint)?.[1];
  expect(shown, hint).toBeDefined();
  const visible = codePoints(shown as string);
  expect(apiKey.endsWith(shown as string), `${hint} ends ${JSON.stringify(apiKey)}`).toBe(true);
  expect(visible).toBeLessThanOrEqual(4);
  expect(visible * 2).toBeLessThanOrEqual(codePoints(apiKey));
  if (codePoints(apiKey) >= 8) expect(visible).toBe(4);
}

/** Per field: hostile strings, plus values the rules accept often enough that both outcomes occur. */
const inputs = {
  accountName: hostile,
  nickname: hostile,
  credentialType: fc.oneof(hostile, fc.stringMatching(/^[a-z][a-z0-9_]{1,31}$/)),
  apiKey: hostile,
  secretKey: hostile,
};

/** Values on each side of a field's rules, run on every run besides the random ones. */
function edges(max: number): string[] {
  return [
    'x'.repeat(max),
    'x'.repeat(max + 1),
    '🙂'.repeat(max), // max code points, twice as many UTF-16 units
    '🙂'.repeat(max + 1),
    ` ${'x'.repeat(max)}\t`, // trimmed to max
    '',
    ' ',
    'a\u0007b',
    '\u0085x', // C1 control, which String#trim keeps
    '\u007f',
    '\ud800x',
    'x\u00a0', // no-break space, trimmed
    '\ufeffx', // BOM, trimmed
  ];
}
const EDGES: Record<keyof typeof VALID, string[]> = {
  accountName: edges(100),
  nickname: edges(100),
  credentialType: ['ab', 'a', `a${'b'.repeat(31)}`, `a${'b'.repeat(32)}`, 'Alpaca', '1abc', 'ab-c', ' alpaca', 'a_1'],
  apiKey: edges(256),
  secretKey: edges(256),
};

const server = useInProcessServer();
let user: Session;
let accountId: string;
let stored = 0;

const STORE =
  'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id credentialType nickname apiKeyHint } }';
const UPDATE_ACCOUNT =
  'mutation($id: UUID!, $input: UpdateAccountInput!) { updateAccount(id: $id, input: $input) { accountName } }';
const valid = { credentialType: 'alpaca', apiKey: 'PKVALIDKEY0000001234', secretKey: 'valid-secret' };

/**
 * A clean success exactly when the rules call `value` valid, BAD_USER_INPUT
 * naming `field` otherwise; never anything else. Counts both outcomes.
 */
function outcome(
  res: GraphQLResponse,
  field: keyof typeof VALID,
  value: string,
  seen: Record<'rejected' | 'accepted', number>,
): 'rejected' | 'accepted' {
  expect(res.status, res.text).toBeLessThan(500);
  const result = res.body.errors ? 'rejected' : 'accepted';
  expect(result, `${field} = ${JSON.stringify(value)}: ${res.text}`).toBe(
    VALID[field](value) ? 'accepted' : 'rejected',
  );
  seen[result] += 1;
  if (result === 'accepted') return result;
  expect(res.body.errors).toHaveLength(1);
  expect(res.body.errors?.[0]?.extensions, res.text).toMatchObject({ code: 'BAD_USER_INPUT', field });
  expect(res.body.data ?? null).toBeNull();
  return result;
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
    const seen = { accepted: 0, rejected: 0 };
    await fc.assert(
      fc.asyncProperty(inputs.accountName, async (accountName) => {
        const res = await gql(server.url, UPDATE_ACCOUNT, { id: accountId, input: { accountName } }, user);
        if (outcome(res, 'accountName', accountName, seen) === 'accepted') {
          expect(res.body.data?.updateAccount.accountName).toBe(accountName.trim());
          current = accountName.trim();
        }
        const now = await gql(server.url, '{ accounts { accountName } }', undefined, user);
        expect(now.body.data?.accounts[0].accountName).toBe(current);
      }),
      { numRuns: RUNS, examples: EDGES.accountName.map((v) => [v]) },
    );
    expect(seen.accepted, 'some values accepted').toBeGreaterThan(0);
    expect(seen.rejected, 'some values rejected').toBeGreaterThan(0);
  });

  for (const field of ['nickname', 'credentialType', 'apiKey', 'secretKey'] as const) {
    it(`${field}: rejected with nothing written, or stored and returned as given`, async () => {
      const seen = { accepted: 0, rejected: 0 };
      await fc.assert(
        fc.asyncProperty(inputs[field], async (value) => {
          const before = stored;
          const res = await gql(server.url, STORE, { input: { accountId, ...valid, [field]: value } }, user);
          if (outcome(res, field, value, seen) === 'accepted') {
            stored += 1;
            const credential = res.body.data?.storeCredential;
            if (field === 'nickname') expect(credential.nickname).toBe(value.trim() || 'alpaca');
            if (field === 'credentialType') expect(credential.credentialType).toBe(value);
            expectHintOf(credential.apiKeyHint, field === 'apiKey' ? value.trim() : valid.apiKey);
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
        { numRuns: RUNS, examples: EDGES[field].map((v) => [v]) },
      );
      expect(seen.accepted, 'some values accepted').toBeGreaterThan(0);
      expect(seen.rejected, 'some values rejected').toBeGreaterThan(0);
    });
  }
});
