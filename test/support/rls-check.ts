// The RLS promise at run time (docs/architecture/request-transaction.md): every statement the code
// under test sends that touches user data must run inside a transaction that
// began with a recognised scope (the user's, an engine client's, or no one's)
// under the request role, or as a reader role of the start-up checks, set transaction-locally so that it ends with that
// transaction. A violation is recorded with its statement and fails the test
// that caused it (setup-env.ts). It watches what the drivers send, through
// openDatabase's `instrument` hook like statement-counter.ts; every test
// file's openDatabase gets it (rls-check-database.ts, swapped in by
// vitest.config.ts), so no test file opts in.
//
// Test fixtures' own statements are not the code under test: what a test file
// (or test/support) sends itself through db.unscopedClient goes through a
// fixture client of its own, on a connection this check does not watch (its
// own pool on PostgreSQL; on PGlite's single backend, calls marked by an
// AsyncLocalStorage). Code in src that uses db.unscopedClient, even when a
// test calls it, stays on the watched connections.
import { AsyncLocalStorage } from 'node:async_hooks';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { getCallSites } from 'node:util';
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { Instrumentation } from '../../src/db/database.ts';

/**
 * The checker's rules, in one place. To extend: a new table holding users'
 * rows goes in userTables; a function that reads or writes them in
 * userDataFunctions, so that calling it counts as touching user data; a
 * SECURITY DEFINER function that reaches no user table in
 * definersWithoutUserData; a dedicated scope (a transaction-local setting its
 * policies or function key on) in scopes. test/db/rls-check.test.ts checks
 * that every table with row-level security and every SECURITY DEFINER
 * function in the migrations is classified here.
 */
export const RLS_CHECK_RULES = {
  /** Tables with per-user rows, under forced RLS. */
  userTables: [
    'user_accounts',
    'user_credentials',
    'credential_events',
    'engine_grants',
    'engine_grant_usage',
    'engine_responses',
  ],
  /**
   * Functions whose call touches user tables, so calling one counts as
   * touching user data: the engine API's bookkeeping (SECURITY INVOKER: they
   * read and write as their caller, under its policies, and must run in a
   * scoped transaction like any other statement).
   */
  userDataFunctions: [
    'engine_authorize',
    'engine_admit',
    'engine_refuse',
    'engine_record_response',
    'engine_client_grants',
    'engine_revoke_client_grants',
  ],
  /**
   * SECURITY DEFINER functions that reach no user table: which client a token
   * hash authenticates, and the engine rate limits' counters.
   */
  definersWithoutUserData: ['engine_token_client', 'engine_take_rate_point', 'engine_rate_wait'],
  /**
   * Tables without a user's rows, for the owner connection: better-auth's,
   * the shared rate-limit counters, and the operator's engine clients and
   * tokens (created by `npm run engine-client`, not per user; the token
   * endpoint reads them before any scope exists).
   */
  notUserData: [
    'auth_users',
    'auth_sessions',
    'auth_accounts',
    'auth_verifications',
    'auth_rate_limits',
    'engine_clients',
    'engine_tokens',
  ],
  /**
   * The settings a scope statement may name (src/db/request-transaction.ts): the first statement of
   * the transaction sets one of them and the role, both with is_local true.
   */
  scopes: { 'app.current_user_id': 'user', 'app.current_engine_client_id': 'engine client' } as Record<string, string>,
  /**
   * Scoped to no one: the request role with this setting empty sees no row of
   * any user table (request-transaction.ts withRequestRole: /ready's probe and the start-up
   * check of the request role).
   */
  noOneSetting: 'app.current_user_id',
  /**
   * Roles that scope a transaction by themselves: credential_key_reader may
   * read user_credentials.key_id and nothing else (the startup_checks
   * migration), for the start-up key-coverage check (src/db/probes.ts readCredentialKeyIds).
   */
  readerRoles: { credential_key_reader: 'key-id reader' } as Record<string, string>,
};

export interface RlsViolation {
  statement: string;
  reason: string;
}

const violations: RlsViolation[] = [];

/** Before each violation is recorded in a server process the tests spawned (rls-check-register.ts). */
let onViolation: ((violation: RlsViolation) => void) | undefined;

/** Lines a spawned server writes for each violation; server.ts records them in the test process. */
export const CHILD_VIOLATION_PREFIX = 'RLS check violation in the spawned server: ';

/** In a spawned server: also writes each violation to stderr, for the test that spawned it. */
export function reportViolationsOnStderr(): void {
  onViolation = (v) => process.stderr.write(`${CHILD_VIOLATION_PREFIX}${JSON.stringify(v)}\n`);
}

export function recordRlsViolation(violation: RlsViolation): void {
  onViolation?.(violation);
  violations.push(violation);
}

/** The violations recorded since the last call (and forgets them). */
export function takeRlsViolations(): RlsViolation[] {
  return violations.splice(0);
}

/** Throws an error naming every violation since the last call, if any. */
export function failOnRlsViolations(when: string): void {
  const found = takeRlsViolations();
  if (found.length === 0) return;
  const lines = found.slice(0, 5).map((v) => `  - ${v.reason}:\n      ${v.statement}`);
  if (found.length > 5) lines.push(`  ... and ${found.length - 5} more`);
  throw new Error(
    `RLS check: ${found.length} statement(s) ${when} touched user data outside a scoped transaction\n${lines.join('\n')}`,
  );
}

const USER_DATA = new RegExp(
  `\\b(${[...RLS_CHECK_RULES.userTables, ...RLS_CHECK_RULES.userDataFunctions].join('|')})\\b`,
  'i',
);
const BEGIN = /^\s*(BEGIN|START\s+TRANSACTION)\b/i;
/** A scope statement and one more statement in one message: "SELECT set_config(...);\n<statement>". */
const ONE_MESSAGE = /^(\s*SELECT set_config\([^\n]*;)\n([\s\S]+)$/;
const END = /^\s*(COMMIT|END|ABORT|ROLLBACK(?!\s+TO\b))\b/i;
/** set_config('<name>', <'literal' or $n>, <true|false>) */
const SET_CONFIG = /set_config\(\s*'([^']+)'\s*,\s*('(?:[^']|'')*'|\$\d+)\s*,\s*(true|false)\s*\)/gi;

interface Scope {
  kind: string;
  role: string;
}

/**
 * The scope a statement sets, if it is a scope statement: a user or engine
 * client setting and the request role, both transaction-local (so they end
 * with the transaction). Values are literals (PostgreSQL: the scope rides
 * with BEGIN) or bound parameters (PGlite).
 */
export function scopeOf(sql: string, params: readonly unknown[], requestRole: string): Scope | undefined {
  const settings = new Map<string, { value: unknown; local: boolean }>();
  for (const [, name, raw, local] of sql.matchAll(SET_CONFIG)) {
    const value = raw?.startsWith('$') ? params[Number(raw.slice(1)) - 1] : raw?.slice(1, -1).replaceAll("''", "'");
    settings.set(name as string, { value, local: local?.toLowerCase() === 'true' });
  }
  const role = settings.get('role');
  if (!role?.local || typeof role.value !== 'string') return undefined;
  const reader = RLS_CHECK_RULES.readerRoles[role.value];
  if (reader) return { kind: reader, role: role.value };
  if (role.value !== requestRole) return undefined;
  for (const [setting, kind] of Object.entries(RLS_CHECK_RULES.scopes)) {
    const scope = settings.get(setting);
    if (scope?.local && typeof scope.value === 'string' && scope.value !== '') return { kind, role: requestRole };
  }
  const noOne = settings.get(RLS_CHECK_RULES.noOneSetting);
  if (noOne?.local && noOne.value === '') return { kind: 'no one', role: requestRole };
  return undefined;
}

/** One connection's transaction as seen from its statements. */
class Connection {
  private inTransaction = false;
  /** True until the transaction's first statement after BEGIN was seen. */
  private awaitingScope = false;
  private scope: Scope | undefined;
  private readonly requestRole: string;

  constructor(requestRole: string) {
    this.requestRole = requestRole;
  }

  see(statement: string, params: readonly unknown[]): void {
    let sql = statement;
    if (BEGIN.test(sql)) {
      this.inTransaction = true;
      this.scope = undefined;
      this.awaitingScope = true;
      // PostgreSQL: "BEGIN; SELECT set_config(...)" in one message (request-transaction.ts scopeTransactionsOnBegin).
      sql = sql.replace(BEGIN, '').replace(/^\s*;/, '');
      if (sql.trim() === '') return;
    }
    if (END.test(sql)) {
      this.inTransaction = false;
      this.awaitingScope = false;
      this.scope = undefined;
      return;
    }
    // One message outside a transaction: the scope statement, a line break,
    // then the statement, run as one implicit transaction
    // (request-transaction.ts oneMessage): the statement is scoped by its head.
    const oneMessage = this.inTransaction ? null : ONE_MESSAGE.exec(sql);
    if (oneMessage) {
      const [, head = '', body = ''] = oneMessage;
      if (USER_DATA.test(body) && !scopeOf(head, params, this.requestRole)) {
        recordRlsViolation({
          statement: statement.replace(/\s+/g, ' ').trim().slice(0, 400),
          reason: `in one message whose first statement is not a user scope and the role ${this.requestRole}`,
        });
      }
      return;
    }
    if (this.awaitingScope) {
      // Only the transaction's first statement can scope it.
      this.awaitingScope = false;
      this.scope = scopeOf(sql, params, this.requestRole);
      if (this.scope) return;
    }
    if (!USER_DATA.test(sql)) return;
    let reason: string | undefined;
    if (!this.inTransaction) reason = 'outside any transaction';
    else if (!this.scope)
      reason = `in a transaction that did not begin with a user scope and the role ${this.requestRole}`;
    if (reason) recordRlsViolation({ statement: statement.replace(/\s+/g, ' ').trim().slice(0, 400), reason });
  }
}

/** Marks PGlite calls made by the fixture client (see the top of this file). */
const fixtureCall = new AsyncLocalStorage<true>();

const sqlOf = (first: unknown) => (typeof first === 'string' ? first : ((first as { text?: string }).text ?? ''));

/**
 * The check's instrumentation for one database. `pglite` receives the
 * instance, which fixtureClient needs on PGlite.
 */
export function rlsCheck(requestRole: string, onPglite?: (db: PGlite) => void): Instrumentation {
  return {
    pgConnection(client: pg.PoolClient) {
      const connection = new Connection(requestRole);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      client.query = ((...args: unknown[]) => {
        const first = args[0] as { values?: unknown[] } | string;
        const values = typeof first === 'object' ? first.values : Array.isArray(args[1]) ? args[1] : undefined;
        connection.see(sqlOf(first), values ?? []);
        return query(...args);
      }) as typeof client.query;
    },
    // PGlite has one backend: one Connection. A statement is a Query ('Q') or
    // a Parse ('P') whose parameters follow in the Bind ('B'); see
    // statement-counter.ts for the layout.
    pglite(db: PGlite) {
      onPglite?.(db);
      const connection = new Connection(requestRole);
      const send = db.execProtocolStream.bind(db);
      const text = new TextDecoder();
      const cstringEnd = (bytes: Uint8Array, at: number) => bytes.indexOf(0, at);
      let parsed: string | undefined;
      db.execProtocolStream = (message, options) => {
        if (!fixtureCall.getStore()) {
          const type = String.fromCharCode(message[0] ?? 0);
          if (type === 'Q') connection.see(text.decode(message.subarray(5, cstringEnd(message, 5))), []);
          else if (type === 'P') {
            const at = cstringEnd(message, 5) + 1;
            parsed = text.decode(message.subarray(at, cstringEnd(message, at)));
          } else if (type === 'B' && parsed !== undefined) {
            connection.see(parsed, bindValues(message, text));
            parsed = undefined;
          }
        }
        return send(message, options);
      };
    },
  };
}

/** A Bind message's parameters, as text (PGlite sends them in text format). */
function bindValues(message: Uint8Array, text: TextDecoder): (string | null)[] {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  let at = message.indexOf(0, 5) + 1; // after the portal name
  at = message.indexOf(0, at) + 1; // after the statement name
  at += 2 + 2 * view.getInt16(at);
  const count = view.getInt16(at);
  at += 2;
  const values: (string | null)[] = [];
  for (let i = 0; i < count; i++) {
    const length = view.getInt32(at);
    at += 4;
    values.push(length < 0 ? null : text.decode(message.subarray(at, at + length)));
    at += Math.max(length, 0);
  }
  return values;
}

/**
 * A view of the PGlite instance for the fixture client: the same backend,
 * every call marked so that the check skips it (transaction callbacks too).
 */
export function fixturePglite(db: PGlite): PGlite {
  type Tx = Parameters<Parameters<PGlite['transaction']>[0]>[0];
  const marked = <T>(run: () => T): T => fixtureCall.run(true, run);
  const wrapTx = (tx: Tx): Tx =>
    ({
      query: (...args: Parameters<Tx['query']>) => marked(() => tx.query(...args)),
      sql: (...args: Parameters<Tx['sql']>) => marked(() => tx.sql(...args)),
      exec: (...args: Parameters<Tx['exec']>) => marked(() => tx.exec(...args)),
      rollback: () => marked(() => tx.rollback()),
      listen: (...args: Parameters<Tx['listen']>) => marked(() => tx.listen(...args)),
      get closed() {
        return tx.closed;
      },
    }) as Tx;
  return new Proxy(db, {
    get(target, property) {
      if (property === 'query') return (...args: Parameters<PGlite['query']>) => marked(() => target.query(...args));
      if (property === 'exec') return (...args: Parameters<PGlite['exec']>) => marked(() => target.exec(...args));
      if (property === 'transaction')
        return (work: (tx: Tx) => Promise<unknown>) => marked(() => target.transaction((tx) => work(wrapTx(tx))));
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const ROOT = path.resolve(import.meta.dirname, '../..');
const TEST_CODE = `${path.join(ROOT, 'test')}${path.sep}`;
const TEST_CODE_URL = pathToFileURL(TEST_CODE).href;

/**
 * Whether the code that accessed a property of the proxied client (the frame
 * right above the proxy's trap) is a test file or test/support: a fixture.
 * Only the immediate caller counts, so src code a test calls is never a
 * fixture. getCallSites reads the frames without formatting a stack.
 */
export function calledFromTestCode(): boolean {
  // [0] this function, [1] the trap, [2] the code that accessed the property.
  const caller = getCallSites(3)[2]?.scriptName ?? '';
  return caller.startsWith(TEST_CODE) || caller.startsWith(TEST_CODE_URL);
}

const CODE_UNDER_TEST = Symbol('the real client');

/**
 * The Prisma delegates of RLS_CHECK_RULES.notUserData: their statements are
 * never checked, so who sends them does not matter, and better-auth's many
 * accesses skip the frame lookup (about 10-30 µs each here). A nested write
 * through one of them into a user table still goes to the watched client.
 */
const NOT_USER_DATA_MODELS = new Set([
  'user',
  'session',
  'authAccount',
  'verification',
  'authRateLimit',
  'engineClient',
  'engineToken',
]);

/**
 * The real client behind a routed db.unscopedClient: for the check's own
 * test (test/unit/rls-check.test.ts), which sends statements as src would.
 */
export function codeUnderTestClient<T extends object>(routed: T): T {
  return (routed as Record<symbol, T>)[CODE_UNDER_TEST] ?? routed;
}

/**
 * db.unscopedClient as tests see it: property accesses made by test code go
 * to `fixture()` (created on first use), every other access to the real client.
 */
export function routeFixtureAccess<T extends object>(real: T, fixture: () => T): T {
  const handler: ProxyHandler<T> = {
    get(target, property) {
      if (property === CODE_UNDER_TEST) return target;
      const routed = typeof property === 'string' && !NOT_USER_DATA_MODELS.has(property);
      const client = routed && calledFromTestCode() ? fixture() : target;
      const value = Reflect.get(client, property, client);
      return typeof value === 'function' ? value.bind(client) : value;
    },
  };
  return new Proxy(real, handler);
}
