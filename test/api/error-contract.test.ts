// The error contract (docs/errors.md), as a client sees it: for every error a client can act
// on, the HTTP status and the response body (data, message, path, code,
// field, every other extension) under inline snapshots, so that any change to
// what clients receive shows up in review. Update them with `npx vitest run
// test/api/error-contract.test.ts -u` when a change is meant.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Auth, type GraphQLResponse, gql, type Session, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const server = useInProcessServer();

const ACCOUNTS = '{ accounts { id } }';
const CREATE_ACCOUNT = 'mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }';
const GET_OR_CREATE = 'mutation($input: GetOrCreateAccountInput) { getOrCreateAccount(input: $input) { created } }';
const UPDATE_ACCOUNT =
  'mutation($id: UUID!, $input: UpdateAccountInput!) { updateAccount(id: $id, input: $input) { id } }';
const STORE = 'mutation($input: StoreCredentialInput!) { storeCredential(input: $input) { id } }';
const UPDATE =
  'mutation($id: UUID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id } }';
const DELETE = 'mutation($id: UUID!) { deleteCredential(id: $id) }';
const CREDENTIALS = '{ accounts { credentials(includeInactive: true) { id nickname apiKeyHint } } }';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/**
 * What the client received, ids replaced by a placeholder. Locations go: they
 * follow the test's query text, not the contract; everything else stays, so an
 * extension that should not be there (a stack, an original error) shows up.
 */
function contract(res: GraphQLResponse): { status: number; body: unknown } {
  const body = JSON.parse(res.text.replace(UUID, '<uuid>')) as { errors?: Record<string, unknown>[] };
  const errors = body.errors?.map(({ locations: _locations, ...error }) => error);
  return { status: res.status, body: { ...body, ...(errors ? { errors } : {}) } };
}

async function call(query: string, variables?: Record<string, unknown>, auth?: Auth) {
  return contract(await gql(server.url, query, variables, auth));
}

interface Owner {
  session: Session;
  accountId: string;
  credentialId: string;
}

async function owner(): Promise<Owner> {
  const session = await signUp(server.url);
  const account = await gql(server.url, 'mutation { getOrCreateAccount { account { id } } }', undefined, session);
  const accountId = account.body.data?.getOrCreateAccount.account.id as string;
  const stored = await gql(server.url, STORE, { input: credential(accountId) }, session);
  expect(stored.body.errors).toBeUndefined();
  return { session, accountId, credentialId: stored.body.data?.storeCredential.id as string };
}

const credential = (accountId: string, extra: Record<string, unknown> = {}) => ({
  accountId,
  credentialType: 'alpaca',
  apiKey: 'PKCONTRACTKEY0001234',
  secretKey: 'contract-secret',
  ...extra,
});

/** `{ accounts { credentials { account { … id } } } }`, `depth` levels deep (as in limits.test.ts). */
function nested(depth: number): string {
  let inner = 'id';
  for (let level = depth - 1; level >= 1; level -= 1) {
    inner =
      level === 1 ? `accounts { ${inner} }` : level % 2 === 0 ? `credentials { ${inner} }` : `account { ${inner} }`;
  }
  return `{ ${inner} }`;
}

let alice: Owner;
let bob: Owner;
let newcomer: Session;

beforeAll(async () => {
  [alice, bob, newcomer] = await Promise.all([owner(), owner(), signUp(server.url)]);
});

describe(`error contract (${dbKind})`, () => {
  it('UNAUTHENTICATED with HTTP 401, for no session and a forged one alike', async () => {
    const none = await call(ACCOUNTS);
    expect(none).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "UNAUTHENTICATED",
              },
              "message": "You must be signed in. Sign in at /api/auth/sign-in/email, then send the session cookie or an Authorization: Bearer token.",
              "path": [
                "accounts",
              ],
            },
          ],
        },
        "status": 401,
      }
    `);
    expect(await call(ACCOUNTS, undefined, { token: 'forged.token' })).toEqual(none);
    expect(await call(ACCOUNTS, undefined, { cookie: 'better-auth.session_token=forged.sig' })).toEqual(none);
    expect(await call(STORE, { input: credential(alice.accountId) })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "UNAUTHENTICATED",
              },
              "message": "You must be signed in. Sign in at /api/auth/sign-in/email, then send the session cookie or an Authorization: Bearer token.",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 401,
      }
    `);
  });

  it('BAD_USER_INPUT on accountName, and nothing written', async () => {
    expect(await call(CREATE_ACCOUNT, { input: { accountName: '   ' } }, newcomer)).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "accountName",
              },
              "message": "accountName must not be empty.",
              "path": [
                "createAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await call(CREATE_ACCOUNT, { input: { accountName: 'x'.repeat(101) } }, newcomer)).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "accountName",
              },
              "message": "accountName must be at most 100 characters (got 101).",
              "path": [
                "createAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await call(CREATE_ACCOUNT, { input: { accountName: 'tab\there' } }, newcomer)).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "accountName",
              },
              "message": "accountName must not contain control characters.",
              "path": [
                "createAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await call(CREATE_ACCOUNT, { input: { accountName: 'lone \ud800' } }, newcomer)).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "accountName",
              },
              "message": "accountName must be valid Unicode text.",
              "path": [
                "createAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await call(GET_OR_CREATE, { input: { accountName: ' ' } }, newcomer)).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "accountName",
              },
              "message": "accountName must not be empty (leave it out for the default name).",
              "path": [
                "getOrCreateAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect((await gql(server.url, ACCOUNTS, undefined, newcomer)).body).toEqual({ data: { accounts: [] } });
    expect(
      await call(UPDATE_ACCOUNT, { id: alice.accountId, input: { accountName: '', isActive: false } }, alice.session),
    ).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "accountName",
              },
              "message": "accountName must not be empty.",
              "path": [
                "updateAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
  });

  it('BAD_USER_INPUT on credentialType, apiKey, secretKey and nickname, and nothing written', async () => {
    const store = (extra: Record<string, unknown>) =>
      call(STORE, { input: credential(alice.accountId, extra) }, alice.session);
    expect(await store({ credentialType: 'Alpaca' })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "credentialType",
              },
              "message": "credentialType must be 2-32 lower-case letters, digits or underscores, starting with a letter (e.g. "alpaca").",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await store({ apiKey: '' })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "apiKey",
              },
              "message": "apiKey must not be empty.",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await store({ apiKey: 'k'.repeat(257) })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "apiKey",
              },
              "message": "apiKey must be at most 256 characters (got 257).",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await store({ apiKey: 'PK\u0007KEY' })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "apiKey",
              },
              "message": "apiKey must not contain control characters.",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await store({ secretKey: ' ' })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "secretKey",
              },
              "message": "secretKey must not be empty.",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await store({ secretKey: 's'.repeat(257) })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "secretKey",
              },
              "message": "secretKey must be at most 256 characters (got 257).",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(await store({ nickname: 'n'.repeat(101) })).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "nickname",
              },
              "message": "nickname must be at most 100 characters (got 101).",
              "path": [
                "storeCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect(
      await call(
        UPDATE,
        { id: alice.credentialId, input: { nickname: 'n'.repeat(101), isActive: false } },
        alice.session,
      ),
    ).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "nickname",
              },
              "message": "nickname must be at most 100 characters (got 101).",
              "path": [
                "updateCredential",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    expect((await gql(server.url, CREDENTIALS, undefined, alice.session)).body).toEqual({
      data: { accounts: [{ credentials: [{ id: alice.credentialId, nickname: 'alpaca', apiKeyHint: '••••1234' }] }] },
    });
  });

  it('BAD_USER_INPUT with the field for variables that do not fit their types, echoing no secret', async () => {
    const { secretKey: _left, ...noSecret } = credential(alice.accountId, { apiKey: 'PK-ECHO-NEVER' });
    const missing = await gql(server.url, STORE, { input: noSecret }, alice.session);
    expect(missing.text).not.toContain('PK-ECHO-NEVER');
    expect(contract(missing)).toMatchInlineSnapshot(`
      {
        "body": {
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "secretKey",
              },
              "message": "Variable "$input" got invalid value { accountId: "<uuid>", credentialType: "alpaca", apiKey: "[redacted]" }; Field "secretKey" of required type "String!" was not provided.",
            },
          ],
        },
        "status": 400,
      }
    `);
    expect(await call(DELETE, { id: 'not-a-uuid' }, alice.session)).toMatchInlineSnapshot(`
      {
        "body": {
          "errors": [
            {
              "extensions": {
                "code": "BAD_USER_INPUT",
                "field": "id",
              },
              "message": "Variable "$id" got invalid value "not-a-uuid"; Value is not a valid UUID: not-a-uuid",
            },
          ],
        },
        "status": 400,
      }
    `);
  });

  it('BAD_USER_INPUT naming the nested field for a Decimal sent as a number', async () => {
    const grant = 'mutation($input: GrantEngineAccessInput!) { grantEngineAccess(input: $input) { id } }';
    const input = { credentialId: alice.credentialId, clientId: 'ec_contract', scopes: ['READ'] };
    expect(
      await call(grant, { input: { ...input, guardrails: { maxOrderNotional: 5000.5 } } }, alice.session),
    ).toMatchInlineSnapshot(`
        {
          "body": {
            "errors": [
              {
                "extensions": {
                  "code": "BAD_USER_INPUT",
                  "field": "guardrails.maxOrderNotional",
                },
                "message": "Variable "$input" got invalid value 5000.5 at "input.guardrails.maxOrderNotional"; A Decimal must be a decimal number sent as a string, like "5000" or "0.25".",
              },
            ],
          },
          "status": 400,
        }
      `);
  });

  it("NOT_FOUND for another user's id exactly as for an absent one", async () => {
    const cases: [string, (id: string) => Record<string, unknown>, string][] = [
      [UPDATE, (id) => ({ id, input: { nickname: 'Hijacked' } }), bob.credentialId],
      [DELETE, (id) => ({ id }), bob.credentialId],
      [UPDATE_ACCOUNT, (id) => ({ id, input: { accountName: 'Hijacked' } }), bob.accountId],
      [STORE, (id) => ({ input: credential(id) }), bob.accountId],
    ];
    const absent = [];
    for (const [query, variables, foreignId] of cases) {
      const unknown = await call(query, variables(randomUUID()), alice.session);
      expect(await call(query, variables(foreignId), alice.session)).toEqual(unknown);
      absent.push(unknown);
    }
    expect(absent).toMatchInlineSnapshot(`
      [
        {
          "body": {
            "data": null,
            "errors": [
              {
                "extensions": {
                  "code": "NOT_FOUND",
                },
                "message": "Credential not found.",
                "path": [
                  "updateCredential",
                ],
              },
            ],
          },
          "status": 200,
        },
        {
          "body": {
            "data": null,
            "errors": [
              {
                "extensions": {
                  "code": "NOT_FOUND",
                },
                "message": "Credential not found.",
                "path": [
                  "deleteCredential",
                ],
              },
            ],
          },
          "status": 200,
        },
        {
          "body": {
            "data": null,
            "errors": [
              {
                "extensions": {
                  "code": "NOT_FOUND",
                },
                "message": "Account not found.",
                "path": [
                  "updateAccount",
                ],
              },
            ],
          },
          "status": 200,
        },
        {
          "body": {
            "data": null,
            "errors": [
              {
                "extensions": {
                  "code": "NOT_FOUND",
                },
                "message": "Account not found.",
                "path": [
                  "storeCredential",
                ],
              },
            ],
          },
          "status": 200,
        },
      ]
    `);
    expect((await gql(server.url, CREDENTIALS, undefined, bob.session)).body.data?.accounts).toEqual([
      { credentials: [{ id: bob.credentialId, nickname: 'alpaca', apiKeyHint: '••••1234' }] },
    ]);
  });

  it('CONFLICT on a second createAccount', async () => {
    expect(await call(CREATE_ACCOUNT, { input: { accountName: 'Second' } }, alice.session)).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "CONFLICT",
              },
              "message": "You already have an account: use getOrCreateAccount or updateAccount.",
              "path": [
                "createAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
  });

  it('QUERY_LIMIT_EXCEEDED with the limit, HTTP 400', async () => {
    expect(await call(nested(11), undefined, alice.session)).toMatchInlineSnapshot(`
      {
        "body": {
          "errors": [
            {
              "extensions": {
                "code": "QUERY_LIMIT_EXCEEDED",
                "limit": "depth",
              },
              "message": "Query depth limit of 10 exceeded, found 11.",
            },
          ],
        },
        "status": 400,
      }
    `);
    const aliases = `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`;
    expect(await call(aliases, undefined, alice.session)).toMatchInlineSnapshot(`
      {
        "body": {
          "errors": [
            {
              "extensions": {
                "code": "QUERY_LIMIT_EXCEEDED",
                "limit": "aliases",
              },
              "message": "Aliases limit of 15 exceeded, found 16.",
            },
          ],
        },
        "status": 400,
      }
    `);
  });

  it('INTERNAL_SERVER_ERROR for anything unexpected, with no detail, logged server-side', async () => {
    // A database error the code cannot expect: a trigger that fails one insert
    // with a message quoting SQL (run as the owner, as a migration would).
    await server.db.unscopedClient.$executeRawUnsafe(`
      CREATE FUNCTION contract_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.account_name = 'Unexpected' THEN
          RAISE EXCEPTION 'internal detail: SELECT secret FROM user_credentials' USING ERRCODE = 'XX000';
        END IF;
        RETURN NEW;
      END $$`);
    await server.db.unscopedClient.$executeRawUnsafe(
      'CREATE TRIGGER contract_test_fail BEFORE INSERT ON user_accounts FOR EACH ROW EXECUTE FUNCTION contract_test_fail()',
    );
    const logged = server.logs.length;
    const res = await gql(server.url, CREATE_ACCOUNT, { input: { accountName: 'Unexpected' } }, newcomer);
    expect(res.text).not.toMatch(/internal detail|user_credentials|prisma|SELECT|at .*\.ts:\d+|stack/i);
    expect(contract(res)).toMatchInlineSnapshot(`
      {
        "body": {
          "data": null,
          "errors": [
            {
              "extensions": {
                "code": "INTERNAL_SERVER_ERROR",
              },
              "message": "Unexpected error.",
              "path": [
                "createAccount",
              ],
            },
          ],
        },
        "status": 200,
      }
    `);
    const line = server.logs.slice(logged).find((l) => l.includes('unexpected error in a GraphQL operation'));
    expect(line).toBeDefined();
    expect(JSON.parse(line as string)).toMatchObject({ level: 50, path: 'createAccount' });
    expect((await gql(server.url, ACCOUNTS, undefined, newcomer)).body).toEqual({ data: { accounts: [] } });
  });
});
