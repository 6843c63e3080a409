// The start-up checks' rules, without a database: what a set of facts about
// the request role, the keyring or a failed listen() is refused for.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import { describeTarget, unreachableReason } from '../../src/startup/database-reach.ts';
import { DatabaseUnreachableError, exitCodeFor, failureLine } from '../../src/startup/failure.ts';
import { uncoveredKeyIds } from '../../src/startup/key-coverage.ts';
import { listeningAt, listenRefusal } from '../../src/startup/listen-address.ts';
import { compareGrants, expectedGrants, REQUEST_ROLE_GRANTS, roleProblems } from '../../src/startup/request-role.ts';

const key = (id: string) => ({ id, key: Buffer.alloc(32) });

describe('uncoveredKeyIds', () => {
  it('lists the stored ids that neither the current nor an older key has', () => {
    const encryption = { current: key('k2'), previous: [key('k1')] };
    expect(uncoveredKeyIds([], encryption)).toEqual([]);
    expect(uncoveredKeyIds(['k1', 'k2'], encryption)).toEqual([]);
    expect(uncoveredKeyIds(['k2', 'k0', 'old', 'k1'], encryption)).toEqual(['k0', 'old']);
  });
});

describe('request role grants', () => {
  it('expands the manifest: schema, whole-table and per-column privileges', () => {
    const grants = expectedGrants();
    expect(grants).toContain('schema public: USAGE');
    expect(grants).toContain('user_accounts: SELECT');
    expect(grants).toContain('user_accounts.account_name: UPDATE');
    expect(grants).toContain('engine_clients.name: SELECT');
    expect(grants).not.toContain('engine_clients: SELECT');
    expect(grants).not.toContain('credential_events: UPDATE');
    expect(grants).toEqual([...grants].sort());
  });

  it('names what is held beyond the manifest and what is lacking', () => {
    expect(compareGrants(['a: SELECT', 'b: SELECT'], ['b: SELECT', 'c: INSERT'])).toEqual({
      extra: ['a: SELECT'],
      missing: ['c: INSERT'],
    });
  });

  const facts = {
    role: 'app_user',
    login: 'postgres',
    role_bypasses: false,
    login_bypasses: true,
    memberships: [],
    grants: expectedGrants(),
    unforced: [],
    public_policies: [],
  };

  it('accepts the role as the migrations leave it, a superuser owner login included', () => {
    expect(roleProblems(facts, false)).toEqual([]);
  });

  it('refuses a separate request login that bypasses RLS, a bypassing role, memberships, drift, unforced RLS, PUBLIC policies', () => {
    expect(roleProblems(facts, true)).toEqual([expect.stringMatching(/^its login postgres is SUPERUSER or BYPASSRLS/)]);
    const problems = roleProblems(
      {
        ...facts,
        role_bypasses: true,
        memberships: ['credential_key_reader'],
        grants: [...expectedGrants().filter((g) => g !== 'user_accounts: DELETE'), 'auth_sessions: SELECT'],
        unforced: ['user_credentials'],
        public_policies: ['p on user_accounts'],
      },
      false,
    );
    expect(problems).toEqual([
      expect.stringMatching(/^requests run as app_user, which is SUPERUSER or BYPASSRLS/),
      expect.stringMatching(/is a member of credential_key_reader, .*REVOKE credential_key_reader FROM app_user$/),
      expect.stringMatching(/\(holds auth_sessions: SELECT beyond them; lacks user_accounts: DELETE\)/),
      expect.stringMatching(/^row-level security is not enabled and forced on user_credentials/),
      expect.stringMatching(/^the policies p on user_accounts apply to PUBLIC/),
    ]);
  });

  it('marks every table the role may write as a whole as user data under RLS', () => {
    for (const [table, g] of Object.entries(REQUEST_ROLE_GRANTS.tables)) {
      if (g.table?.some((p) => p !== 'SELECT')) expect(g.rls, table).toBe(true);
    }
  });
});

describe('listenRefusal', () => {
  const err = (code: string) => Object.assign(new Error(code), { code });

  it('names HOST or the port variable, and leaves other errors alone', () => {
    expect(listenRefusal(err('EADDRNOTAVAIL'), '192.0.2.1', 4000, 'PORT')?.message).toBe(
      'Invalid configuration: HOST: "192.0.2.1" is not an address of this machine: give one it has',
    );
    expect(listenRefusal(err('EADDRINUSE'), undefined, 9464, 'METRICS_PORT')?.message).toBe(
      'Invalid configuration: METRICS_PORT: port 9464 is in use: stop what listens there or pick another port',
    );
    expect(listenRefusal(err('EACCES'), '127.0.0.1', 80, 'PORT')?.message).toMatch(
      /^Invalid configuration: PORT: 127\.0\.0\.1 port 80 needs privileges/,
    );
    expect(listenRefusal(err('EMFILE'), undefined, 4000, 'PORT')).toBeUndefined();
  });
});

describe('listeningAt', () => {
  it('gives the bound address, or localhost marked "all interfaces" for the unspecified ones', () => {
    expect(listeningAt('127.0.0.1', 4000)).toEqual({ url: 'http://127.0.0.1:4000', where: 'http://127.0.0.1:4000' });
    expect(listeningAt('::1', 4000).where).toBe('http://[::1]:4000');
    expect(listeningAt('192.168.1.20', 9464, '/metrics').where).toBe('http://192.168.1.20:9464/metrics');
    for (const any of ['::', '0.0.0.0']) {
      expect(listeningAt(any, 4000)).toEqual({
        url: 'http://localhost:4000',
        where: 'http://localhost:4000 (all interfaces)',
      });
    }
  });
});

describe('failure lines', () => {
  it('is the configuration message with 78, else the error message on one line with 1', () => {
    const config = new ConfigError('Invalid configuration: PORT: must be a whole number');
    expect([failureLine('start', config), exitCodeFor(config)]).toEqual([config.message, 78]);
    const failed = new Error('\nInvalid `prisma.$queryRaw()` invocation:\n\n\nRaw query failed. Code: `42P01`.');
    expect([failureLine('migrate', failed), exitCodeFor(failed)]).toEqual([
      'migrate failed: Invalid `prisma.$queryRaw()` invocation: Raw query failed. Code: `42P01`.',
      1,
    ]);
  });

  it('is the unreachable database message with 69', () => {
    const unreachable = new DatabaseUnreachableError(
      'Database unreachable: DATABASE_URL (db:5432/app): connection refused',
    );
    expect([failureLine('start', unreachable), exitCodeFor(unreachable)]).toEqual([unreachable.message, 69]);
  });
});

describe('unreachable databases', () => {
  it('are described by user, host, port and database, never by password or parameters', () => {
    expect(describeTarget('postgresql://app:s3cr%40t@db.example:6432/prod?sslmode=verify-full&password=x')).toBe(
      'app@db.example:6432/prod',
    );
    expect(describeTarget('postgres://db.example/app')).toBe('db.example:5432/app');
    expect(describeTarget('postgresql:///app?host=/var/run/postgresql')).toBe('/var/run/postgresql:5432/app');
    expect(describeTarget('postgresql://%zz@h/d')).toBe('%zz@h:5432/d');
  });

  it('say why in a few words', () => {
    const err = (code: string, message = '') => Object.assign(new Error(message), { code });
    expect(unreachableReason(err('ENOTFOUND', 'getaddrinfo ENOTFOUND db'))).toBe(
      'its host name does not resolve (DNS, ENOTFOUND)',
    );
    expect(unreachableReason(err('ECONNREFUSED'))).toMatch(/^connection refused/);
    expect(unreachableReason(err('ETIMEDOUT'))).toBe('connection timed out');
    expect(unreachableReason(new Error('timeout expired'), 5000)).toBe('no answer within 5 s (connection timed out)');
    expect(unreachableReason(err('EHOSTUNREACH'))).toBe('no route to the host (EHOSTUNREACH)');
    expect(unreachableReason(err('28P01', 'password authentication failed for user "app"'))).toBe(
      'login refused: password authentication failed for user "app"',
    );
    expect(unreachableReason(err('28000', 'no pg_hba.conf entry for host "10.1.2.3"'))).toMatch(
      /^login refused: no pg_hba\.conf entry/,
    );
    expect(unreachableReason(err('3D000', 'database "app" does not exist'))).toBe('database "app" does not exist');
    expect(unreachableReason(new Error('Connection terminated unexpectedly'))).toMatch(/closed before the login/);
    expect(unreachableReason(new Error('The server does not support SSL connections'))).toBe(
      'The server does not support SSL connections',
    );
  });
});
