// The role requests run as must be held to row-level security, with exactly
// the privileges the migrations give it (a request role that bypasses RLS,
// or holds more, lets one user read another's rows).
//
// What is checked, inside a transaction scoped as requests are (SET LOCAL
// ROLE app_user, no user):
// - the request role is neither SUPERUSER nor BYPASSRLS, and a member of no
//   role (it would take that role's privileges and policies: a member of
//   credential_key_reader could enter it);
// - with DATABASE_REQUEST_URL, that login is neither SUPERUSER nor BYPASSRLS
//   either (a statement that ran RESET ROLE would be it). Without it,
//   requests log in as the owner (DATABASE_URL), which runs the migrations
//   and may well be a superuser: what holds requests then is SET LOCAL ROLE,
//   and FORCE ROW LEVEL SECURITY below, which binds a non-superuser owner too;
// - its effective privileges (through PUBLIC and memberships too) on every
//   schema, table, column and sequence, and the SECURITY DEFINER functions it
//   may run, equal REQUEST_ROLE_GRANTS, no more and no fewer;
// - every user-data table has row-level security enabled and forced, and
//   no policy there applies to PUBLIC (which would include the owner).
import { invalid } from '../config/errors.ts';
import { REQUEST_ROLE } from '../config/load.ts';
import type { Database, DatabaseOptions } from '../db/database.ts';

type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

interface TableGrants {
  /** Privileges on the whole table. */
  table?: TablePrivilege[];
  /** Privileges on some columns only. */
  columns?: Partial<Record<'SELECT' | 'UPDATE', string[]>>;
  /** User data: row-level security enabled and forced, policies TO app_user. */
  rls: boolean;
}

/**
 * The request role's grants, as prisma/migrations give them. A migration
 * that changes them changes this too (test/startup/request-role.test.ts
 * fails on a freshly migrated database otherwise).
 */
export const REQUEST_ROLE_GRANTS: {
  schemas: Record<string, string[]>;
  tables: Record<string, TableGrants>;
  /**
   * SECURITY DEFINER functions it may run: each runs as the migration owner,
   * so each is a privilege (see prisma/migrations/20261207000100_engine_admission).
   */
  definerFunctions: string[];
} = {
  schemas: { public: ['USAGE'] },
  definerFunctions: ['engine_rate_wait', 'engine_take_rate_point', 'engine_token_client'],
  tables: {
    user_accounts: {
      table: ['SELECT', 'INSERT', 'DELETE'],
      columns: { UPDATE: ['account_name', 'is_active', 'updated_at'] },
      rls: true,
    },
    user_credentials: {
      table: ['SELECT', 'INSERT', 'DELETE'],
      columns: {
        UPDATE: [
          'nickname',
          'api_key_ciphertext',
          'secret_key_ciphertext',
          'key_id',
          'api_key_hint',
          'is_active',
          'updated_at',
          'secrets_version',
          'verification_status',
          'verification_checked_at',
          'verification_environment',
          'broker_account_number',
          'broker_account_status',
          'verification_message',
          'verified_environment',
        ],
      },
      rls: true,
    },
    credential_events: { table: ['SELECT', 'INSERT'], rls: true },
    engine_clients: { columns: { SELECT: ['id', 'name', 'created_at', 'revoked_at'] }, rls: false },
    engine_grants: {
      table: ['SELECT', 'INSERT'],
      columns: {
        UPDATE: [
          'revoked_at',
          'trading_state',
          'symbols',
          'asset_classes',
          'order_types',
          'allow_short_selling',
          'allow_extended_hours',
          'allow_account_wide_actions',
          'max_order_notional',
          'max_order_quantity',
          'max_daily_notional',
          'max_daily_orders',
          'price_collar_percent',
        ],
      },
      rls: true,
    },
    engine_grant_usage: { table: ['SELECT', 'INSERT'], columns: { UPDATE: ['orders', 'notional'] }, rls: true },
    engine_responses: { table: ['SELECT', 'INSERT'], rls: true },
  },
};

/** "schema public: USAGE", "user_accounts: SELECT", "user_accounts.is_active: UPDATE". */
export function expectedGrants(grants = REQUEST_ROLE_GRANTS): string[] {
  const out: string[] = [];
  for (const [schema, privileges] of Object.entries(grants.schemas)) {
    for (const p of privileges) out.push(`schema ${schema}: ${p}`);
  }
  for (const name of grants.definerFunctions) out.push(`function ${name}: EXECUTE as its owner`);
  for (const [table, g] of Object.entries(grants.tables)) {
    for (const p of g.table ?? []) out.push(`${table}: ${p}`);
    for (const [p, columns] of Object.entries(g.columns ?? {})) {
      for (const column of columns) out.push(`${table}.${column}: ${p}`);
    }
  }
  return out.sort();
}

/** What `actual` holds beyond `expected`, and what it lacks. */
export function compareGrants(actual: string[], expected: string[]): { extra: string[]; missing: string[] } {
  const a = new Set(actual);
  const e = new Set(expected);
  return { extra: [...a].filter((g) => !e.has(g)).sort(), missing: [...e].filter((g) => !a.has(g)).sort() };
}

// Effective privileges of the current role (through PUBLIC and memberships),
// in the shape of expectedGrants. Column rows only where the column is
// granted without the whole table; a column privilege can only come from a
// column ACL, so columns without one are skipped (PGlite: 4x faster).
const EFFECTIVE_GRANTS = `
  WITH rels AS (
    SELECT c.oid, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  )
  SELECT 'schema ' || n.nspname || ': ' || p AS grant FROM pg_namespace n, unnest(ARRAY['USAGE', 'CREATE']) p
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    AND n.nspname NOT LIKE 'pg_temp%' AND has_schema_privilege(current_user, n.oid, p)
  UNION ALL
  SELECT r.relname || ': ' || p FROM rels r, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
  WHERE r.relkind <> 'S' AND has_table_privilege(current_user, r.oid, p)
  UNION ALL
  SELECT r.relname || '.' || a.attname || ': ' || p FROM rels r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL,
    unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
  WHERE r.relkind <> 'S' AND has_column_privilege(current_user, r.oid, a.attnum, p)
    AND NOT has_table_privilege(current_user, r.oid, p)
  UNION ALL
  SELECT r.relname || ': ' || p FROM rels r, unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p
  WHERE r.relkind = 'S' AND has_sequence_privilege(current_user, r.oid, p)
  UNION ALL
  SELECT DISTINCT 'function ' || f.proname || ': EXECUTE as its owner' FROM pg_proc f
    JOIN pg_namespace n ON n.oid = f.pronamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND f.prosecdef
    AND has_function_privilege(current_user, f.oid, 'EXECUTE')`;

interface RoleFacts {
  role: string;
  login: string;
  role_bypasses: boolean;
  login_bypasses: boolean;
  memberships: string[];
  grants: string[];
  unforced: string[];
  public_policies: string[];
}

/** Read as the request role, in a transaction scoped as requests are (to no one). */
async function readRoleFacts(db: Database, userDataTables: string[]): Promise<RoleFacts> {
  return db.withRequestRole(async (tx) => {
    const [facts] = await tx.$queryRaw<Omit<RoleFacts, 'grants' | 'unforced' | 'public_policies'>[]>`
      SELECT current_user::text AS role, session_user::text AS login,
             (r.rolsuper OR r.rolbypassrls) AS role_bypasses, (l.rolsuper OR l.rolbypassrls) AS login_bypasses,
             ARRAY(SELECT m.rolname::text FROM pg_roles m
                   WHERE m.rolname <> current_user AND pg_has_role(current_user, m.oid, 'MEMBER')
                   ORDER BY 1) AS memberships
      FROM pg_roles r, pg_roles l WHERE r.rolname = current_user AND l.rolname = session_user`;
    const grants = await tx.$queryRawUnsafe<{ grant: string }[]>(EFFECTIVE_GRANTS);
    const unforced = await tx.$queryRaw<{ relname: string }[]>`
      SELECT t AS relname FROM unnest(${userDataTables}::text[]) t
      WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = t AND c.relkind IN ('r', 'p')
                        AND c.relrowsecurity AND c.relforcerowsecurity)`;
    const publicPolicies = await tx.$queryRaw<{ policy: string }[]>`
      SELECT p.polname || ' on ' || c.relname AS policy FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
      WHERE c.relname = ANY(${userDataTables}::text[]) AND 0 = ANY(p.polroles)`;
    if (!facts) throw new Error('the request role is not in pg_roles');
    return {
      ...facts,
      grants: grants.map((g) => g.grant),
      unforced: unforced.map((u) => u.relname),
      public_policies: publicPolicies.map((p) => p.policy),
    };
  });
}

/** Which variable points at the database (and the login) the requests use. */
function databaseVariable(database: DatabaseOptions): string {
  if (database.kind === 'pglite') return 'DATA_DIR';
  return database.requestUrl ? 'DATABASE_REQUEST_URL' : 'DATABASE_URL';
}

const list = (items: string[], max = 5) =>
  items.length > max ? `${items.slice(0, max).join(', ')} and ${items.length - max} more` : items.join(', ');

/** The problems found, as refusal lines (empty when the role is as the migrations made it). */
export function roleProblems(
  facts: RoleFacts,
  separateLogin: boolean,
  expected: string[] = expectedGrants(),
): string[] {
  const problems: string[] = [];
  if (facts.role_bypasses) {
    problems.push(
      `requests run as ${facts.role}, which is SUPERUSER or BYPASSRLS: row-level security would not hold them; ` +
        `run ALTER ROLE ${facts.role} NOSUPERUSER NOBYPASSRLS`,
    );
  }
  if (separateLogin && facts.login_bypasses) {
    problems.push(
      `its login ${facts.login} is SUPERUSER or BYPASSRLS: a statement that ran RESET ROLE would see every row; ` +
        `log in as a role that is only a member of ${REQUEST_ROLE} (docs/operations.md, "Database roles")`,
    );
  }
  if (facts.memberships.length > 0) {
    problems.push(
      `the request role ${facts.role} is a member of ${list(facts.memberships)}, and so takes their privileges and ` +
        `policies: REVOKE ${facts.memberships.join(', ')} FROM ${facts.role}`,
    );
  }
  const { extra, missing } = compareGrants(facts.grants, expected);
  if (extra.length > 0 || missing.length > 0) {
    const parts = [
      ...(extra.length ? [`holds ${list(extra)} beyond them`] : []),
      ...(missing.length ? [`lacks ${list(missing)}`] : []),
    ];
    problems.push(
      `the request role ${facts.role} does not hold exactly the grants of prisma/migrations (${parts.join('; ')}): ` +
        'revoke or grant them back (or run `npm run migrate` if migrations are pending)',
    );
  }
  if (facts.unforced.length > 0) {
    problems.push(
      `row-level security is not enabled and forced on ${list(facts.unforced)}: ` +
        'ALTER TABLE … ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY, as the migrations left it',
    );
  }
  if (facts.public_policies.length > 0) {
    problems.push(
      `the policies ${list(facts.public_policies)} apply to PUBLIC, the owner included: write them TO ${REQUEST_ROLE}`,
    );
  }
  return problems;
}

/** A refusal for what PostgreSQL answers SET ROLE when the role is missing or the login may not take it. */
function roleEntryRefusal(error: unknown, variable: string): Error | undefined {
  const cause = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } }).meta
    ?.driverAdapterError?.cause;
  const code = cause?.originalCode ?? '';
  const message = (error as Error).message ?? '';
  if (code === '42P01') {
    return invalid([
      {
        variable,
        message:
          'its tables are missing (MIGRATE_ON_START=false on a database not migrated yet?): run `npm run migrate`, or start with MIGRATE_ON_START=true',
      },
    ]);
  }
  if (/role "[^"]+" does not exist/.test(message) || code === '42704') {
    return invalid([
      {
        variable,
        message: `the request role ${REQUEST_ROLE} does not exist there: run \`npm run migrate\` (or start with MIGRATE_ON_START=true)`,
      },
    ]);
  }
  if (/permission denied to set role/.test(message) || code === '42501') {
    return invalid([
      {
        variable,
        message: `its login is not a member of the request role ${REQUEST_ROLE}: GRANT ${REQUEST_ROLE} TO that login`,
      },
    ]);
  }
  return undefined;
}

/** A request transaction works at all (what /ready runs, Database.ping). */
export async function checkRequestTransaction(db: Database, database: DatabaseOptions): Promise<void> {
  await db.ping().catch((error: unknown) => {
    throw roleEntryRefusal(error, databaseVariable(database)) ?? error;
  });
}

export async function checkRequestRole(db: Database, database: DatabaseOptions): Promise<void> {
  const variable = databaseVariable(database);
  const userDataTables = Object.entries(REQUEST_ROLE_GRANTS.tables)
    .filter(([, g]) => g.rls)
    .map(([t]) => t);
  const facts = await readRoleFacts(db, userDataTables).catch((error: unknown) => {
    throw roleEntryRefusal(error, variable) ?? error;
  });
  const problems = roleProblems(facts, database.kind === 'postgres' && database.requestUrl !== undefined);
  if (problems.length > 0) throw invalid(problems.map((message) => ({ variable, message })));
}
