// The hand-written SQL migrations must build exactly the database that
// prisma/schema.prisma describes. Reads Prisma's DMMF (written at generate
// time by prisma/generators/dmmf-json.mjs) and compares it with what the
// migrated database reports in information_schema and pg_catalog.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum';
  type: string;
  isRequired: boolean;
  isList: boolean;
  isId: boolean;
  isUnique: boolean;
  hasDefaultValue: boolean;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
  primaryKey: { fields: string[] } | null;
  uniqueIndexes: { fields: string[] }[];
}
interface Dmmf {
  models: DmmfModel[];
  indexes: { model: string; type: 'id' | 'unique' | 'normal' | 'fulltext'; fields: { name: string }[] }[];
}

let tdb: TestDatabase;
let db: Database;
let dmmf: Dmmf;

const tableOf = (m: DmmfModel) => m.dbName ?? m.name;
const scalars = (m: DmmfModel) => m.fields.filter((f) => f.kind !== 'object');
const model = (name: string) => dmmf.models.find((m) => m.name === name) as DmmfModel;
const columnOf = (m: DmmfModel, fieldName: string) => {
  const f = m.fields.find((x) => x.name === fieldName) as DmmfField;
  return f.dbName ?? f.name;
};
const key = (cols: string[]) => cols.join(',');

/** What information_schema reports for a Prisma scalar type and native type. */
function expectedColumnType(f: DmmfField): {
  type: string;
  length?: number | null;
  precision?: number | null;
  numeric?: [number, number];
} {
  // information_schema reports every array column as ARRAY, whatever its element type.
  if (f.isList) return { type: 'ARRAY' };
  const [native, args] = f.nativeType ?? [null, []];
  switch (f.type) {
    case 'String':
      if (native === 'VarChar') return { type: 'character varying', length: Number(args[0]) };
      if (native === 'Uuid') return { type: 'uuid' };
      return { type: 'text' };
    case 'Boolean':
      return { type: 'boolean' };
    case 'Int':
      return { type: 'integer' };
    case 'BigInt':
      return { type: 'bigint' };
    case 'Bytes':
      return { type: 'bytea' };
    case 'Decimal':
      return { type: 'numeric', numeric: [Number(args[0] ?? 65), Number(args[1] ?? 30)] };
    case 'Json':
      return { type: 'jsonb' };
    case 'DateTime':
      if (native === 'Date') return { type: 'date', precision: 0 };
      return native === 'Timestamptz'
        ? { type: 'timestamp with time zone', precision: Number(args[0] ?? 6) }
        : { type: 'timestamp without time zone', precision: 3 };
    default:
      throw new Error(`the drift test does not know Prisma type ${f.type} yet`);
  }
}

async function q<T>(sql: string): Promise<T[]> {
  return (await db.unscopedClient.$queryRawUnsafe(sql)) as T[];
}

beforeAll(async () => {
  dmmf = JSON.parse(
    await readFile(path.resolve(import.meta.dirname, '../../src/generated/dmmf/dmmf.json'), 'utf8'),
  ) as Dmmf;
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

describe(`migrated database matches prisma/schema.prisma (${dbKind})`, () => {
  it('has exactly the tables of the models (plus Prisma bookkeeping)', async () => {
    const tables = await q<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    expect(tables.map((t) => t.table_name).sort()).toEqual([...dmmf.models.map(tableOf), '_prisma_migrations'].sort());
  });

  it('has the columns, types, nullability and defaults of every field', async () => {
    const columns = await q<{
      table_name: string;
      column_name: string;
      data_type: string;
      is_nullable: 'YES' | 'NO';
      character_maximum_length: number | null;
      datetime_precision: number | null;
      numeric_precision: number | null;
      numeric_scale: number | null;
      has_default: boolean;
    }>(`SELECT table_name, column_name, data_type, is_nullable, character_maximum_length::int,
               datetime_precision::int, numeric_precision::int, numeric_scale::int,
               column_default IS NOT NULL AS has_default
        FROM information_schema.columns WHERE table_schema = 'public'`);
    for (const m of dmmf.models) {
      const actual = columns.filter((c) => c.table_name === tableOf(m));
      expect(actual.map((c) => c.column_name).sort(), `columns of ${tableOf(m)}`).toEqual(
        scalars(m)
          .map((f) => f.dbName ?? f.name)
          .sort(),
      );
      for (const f of scalars(m)) {
        const col = actual.find((c) => c.column_name === (f.dbName ?? f.name));
        const where = `${tableOf(m)}.${f.dbName ?? f.name}`;
        const want = expectedColumnType(f);
        expect(col?.data_type, `${where} type`).toBe(want.type);
        if ('length' in want) expect(col?.character_maximum_length, `${where} length`).toBe(want.length);
        if ('precision' in want) expect(col?.datetime_precision, `${where} precision`).toBe(want.precision);
        if (want.numeric) {
          expect([col?.numeric_precision, col?.numeric_scale], `${where} precision and scale`).toEqual(want.numeric);
        }
        expect(col?.is_nullable, `${where} nullability`).toBe(f.isRequired ? 'NO' : 'YES');
        expect(col?.has_default, `${where} default`).toBe(f.hasDefaultValue);
      }
    }
  });

  it('has the primary keys, unique constraints and indexes', async () => {
    const indexes = await q<{ table_name: string; columns: string[]; is_unique: boolean; is_primary: boolean }>(`
      SELECT t.relname AS table_name, i.indisunique AS is_unique, i.indisprimary AS is_primary,
             array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns
      FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace
      WHERE s.nspname = 'public' AND t.relname <> '_prisma_migrations'`);
    for (const m of dmmf.models) {
      const table = tableOf(m);
      const mine = indexes.filter((i) => i.table_name === table);
      const pk = m.primaryKey?.fields ?? m.fields.filter((f) => f.isId).map((f) => f.name);
      expect(
        mine.filter((i) => i.is_primary).map((i) => key(i.columns)),
        `${table} primary key`,
      ).toEqual([key(pk.map((f) => columnOf(m, f)))]);

      const uniques = [
        ...m.fields.filter((f) => f.isUnique).map((f) => [f.name]),
        ...m.uniqueIndexes.map((u) => u.fields),
      ].map((fields) => key(fields.map((f) => columnOf(m, f))));
      expect(
        mine
          .filter((i) => i.is_unique && !i.is_primary)
          .map((i) => key(i.columns))
          .sort(),
        `${table} unique constraints`,
      ).toEqual(uniques.sort());

      const normal = dmmf.indexes
        .filter((i) => i.model === m.name && i.type === 'normal')
        .map((i) => key(i.fields.map((f) => columnOf(m, f.name))));
      expect(
        mine
          .filter((i) => !i.is_unique)
          .map((i) => key(i.columns))
          .sort(),
        `${table} indexes`,
      ).toEqual(normal.sort());
    }
  });

  it('has the foreign keys of every relation, with their delete rules', async () => {
    const fks = await q<{
      table_name: string;
      columns: string[];
      ref_table: string;
      ref_columns: string[];
      on_delete: string;
    }>(`
      SELECT c.conrelid::regclass::text AS table_name, c.confrelid::regclass::text AS ref_table,
             array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns,
             array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n)
                   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS ref_columns,
             CASE c.confdeltype WHEN 'c' THEN 'Cascade' WHEN 'r' THEN 'Restrict' WHEN 'n' THEN 'SetNull'
                                WHEN 'd' THEN 'SetDefault' ELSE 'NoAction' END AS on_delete
      FROM pg_constraint c JOIN pg_namespace s ON s.oid = c.connamespace
      WHERE c.contype = 'f' AND s.nspname = 'public'`);
    const expected = dmmf.models.flatMap((m) =>
      m.fields
        .filter((f) => f.kind === 'object' && (f.relationFromFields?.length ?? 0) > 0)
        .map((f) => {
          const target = model(f.type);
          return {
            table_name: tableOf(m),
            columns: (f.relationFromFields ?? []).map((x) => columnOf(m, x)),
            ref_table: tableOf(target),
            ref_columns: (f.relationToFields ?? []).map((x) => columnOf(target, x)),
            on_delete: f.relationOnDelete ?? 'NoAction',
          };
        }),
    );
    const sort = (rows: { table_name: string; columns: string[] }[]) =>
      [...rows].sort((a, b) => `${a.table_name}${key(a.columns)}`.localeCompare(`${b.table_name}${key(b.columns)}`));
    expect(sort(fks)).toEqual(sort(expected));
  });

  it('has row-level security enabled and forced on every user-data table', async () => {
    const rls = await q<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
       WHERE relname IN ('credential_events', 'user_accounts', 'user_credentials') ORDER BY relname`,
    );
    expect(rls).toEqual([
      { relname: 'credential_events', relrowsecurity: true, relforcerowsecurity: true },
      { relname: 'user_accounts', relrowsecurity: true, relforcerowsecurity: true },
      { relname: 'user_credentials', relrowsecurity: true, relforcerowsecurity: true },
    ]);
    const policies = await q<{ tablename: string; cmd: string; roles: string[] }>(
      `SELECT tablename, cmd, roles::text[] FROM pg_policies WHERE schemaname = 'public' ORDER BY tablename, cmd`,
    );
    for (const table of ['user_accounts', 'user_credentials']) {
      expect(
        policies
          .filter((p) => p.tablename === table)
          .map((p) => [p.cmd, p.roles])
          .sort(),
        `${table} policies`,
      ).toEqual([
        ['DELETE', ['app_user']],
        ['INSERT', ['app_user']],
        ['SELECT', ['app_user']],
        // The start-up check's key ids (key_id only; migration startup_checks).
        ...(table === 'user_credentials' ? [['SELECT', ['credential_key_reader']]] : []),
        ['UPDATE', ['app_user']],
      ]);
    }
    // The audit trail is append-only: no UPDATE or DELETE policy (nor grant).
    expect(
      policies.filter((p) => p.tablename === 'credential_events').map((p) => [p.cmd, p.roles]),
      'credential_events policies',
    ).toEqual([
      ['INSERT', ['app_user']],
      ['SELECT', ['app_user']],
    ]);
  });
});
