// The guardrails' model at the database, on the database the run selected:
// engine_trading_day (the day the daily caps count on) at fixed instants
// around New York midnight and both 2026 daylight-saving changes, run as the
// request role; and the app's lists of actions, changed fields and guardrail
// values kept in step with the migrations' CHECK constraints.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { CHANGEABLE_FIELDS, CREDENTIAL_ACTIONS } from '../../src/domain/credential-events.ts';
import {
  ASSET_CLASSES,
  GUARDRAIL_FIELDS,
  ORDER_TYPES,
  TRADING_STATES,
  tradingDay,
} from '../../src/domain/guardrails.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/databases.ts';

let tdb: TestDatabase;
let db: Database;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = await openDatabase(tdb.config, { migrate: true, logger: createLogger('silent') });
});

afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

/**
 * Instants and their calendar day in New York. EST is UTC-5, EDT UTC-4; in
 * 2026 clocks go forward at 07:00 UTC on 8 March (02:00 EST) and back at
 * 06:00 UTC on 1 November (02:00 EDT).
 */
const INSTANTS: [string, string][] = [
  // Winter: midnight is 05:00 UTC.
  ['2026-01-15T04:59:59.999Z', '2026-01-14'],
  ['2026-01-15T05:00:00.000Z', '2026-01-15'],
  // 8 March: the day begins in EST, the clocks jump at 02:00, it ends in EDT.
  ['2026-03-08T04:59:59.999Z', '2026-03-07'],
  ['2026-03-08T05:00:00.000Z', '2026-03-08'],
  ['2026-03-08T06:59:59.999Z', '2026-03-08'],
  ['2026-03-08T07:00:00.000Z', '2026-03-08'],
  ['2026-03-09T03:59:59.999Z', '2026-03-08'],
  ['2026-03-09T04:00:00.000Z', '2026-03-09'],
  // Summer: midnight is 04:00 UTC.
  ['2026-07-04T03:59:59.999Z', '2026-07-03'],
  ['2026-07-04T04:00:00.000Z', '2026-07-04'],
  // 1 November: the day begins in EDT, 01:00-02:00 happens twice, it ends in EST (25 hours).
  ['2026-11-01T03:59:59.999Z', '2026-10-31'],
  ['2026-11-01T04:00:00.000Z', '2026-11-01'],
  ['2026-11-01T05:30:00.000Z', '2026-11-01'],
  ['2026-11-01T06:30:00.000Z', '2026-11-01'],
  ['2026-11-02T04:59:59.999Z', '2026-11-01'],
  ['2026-11-02T05:00:00.000Z', '2026-11-02'],
  // New Year, in EST.
  ['2027-01-01T04:59:59.999Z', '2026-12-31'],
  ['2027-01-01T05:00:00.000Z', '2027-01-01'],
];

describe(`engine_trading_day (${dbKind})`, () => {
  it('is the calendar day in America/New_York around midnight and both 2026 DST changes, for the request role', async () => {
    const days = await db.withUser('trading-day-test', (tx) =>
      tx.$queryRawUnsafe<{ at: string; day: string; current: string }[]>(
        `SELECT at, engine_trading_day(at::timestamptz)::text AS day, current_user AS current
           FROM unnest($1::text[]) AS at`,
        INSTANTS.map(([at]) => at),
      ),
    );
    expect(days.map((d) => [d.at, d.day])).toEqual(INSTANTS);
    expect(new Set(days.map((d) => d.current))).toEqual(new Set(['app_user']));
    // The app's own reckoning (the proxy's dry runs and tests) agrees with the database's.
    for (const [at, day] of INSTANTS) expect(tradingDay(new Date(at)), at).toBe(day);
  });

  it('counts a DST-change day from its own midnight to the next: 23 hours in March, 25 in November', async () => {
    const [row] = await db.unscopedClient.$queryRawUnsafe<{ march: number; november: number }[]>(`
      SELECT (SELECT count(*)::int FROM generate_series('2026-03-08T00:00:00Z'::timestamptz, '2026-03-10T00:00:00Z', '1 hour') t
               WHERE engine_trading_day(t) = '2026-03-08') AS march,
             (SELECT count(*)::int FROM generate_series('2026-11-01T00:00:00Z'::timestamptz, '2026-11-03T00:00:00Z', '1 hour') t
               WHERE engine_trading_day(t) = '2026-11-01') AS november`);
    expect(row).toEqual({ march: 23, november: 25 });
  });
});

/** The quoted values of a CHECK constraint's definition (its IN list or ARRAY[...]). */
async function checkValues(table: string, constraint: string): Promise<string[]> {
  const [row] = await db.unscopedClient.$queryRawUnsafe<{ def: string }[]>(
    `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
      WHERE t.relname = $1 AND c.conname = $2`,
    table,
    constraint,
  );
  if (!row) throw new Error(`no constraint ${constraint} on ${table}`);
  return [...new Set([...row.def.matchAll(/'([A-Za-z_]+)'/g)].map((m) => m[1] as string))].sort();
}

describe(`lists in step with the database (${dbKind})`, () => {
  it('knows every action and changed field the audit trail accepts, no more and no fewer', async () => {
    expect(await checkValues('credential_events', 'credential_events_action_check')).toEqual(
      [...CREDENTIAL_ACTIONS].sort(),
    );
    expect(await checkValues('credential_events', 'credential_events_changed_fields_check')).toEqual(
      [...CHANGEABLE_FIELDS, ...GUARDRAIL_FIELDS].sort(),
    );
  });

  it('knows every trading state, asset class and order type a grant may hold', async () => {
    expect(await checkValues('engine_grants', 'engine_grants_trading_state_check')).toEqual([...TRADING_STATES].sort());
    expect(await checkValues('engine_grants', 'engine_grants_asset_classes_check')).toEqual([...ASSET_CLASSES].sort());
    expect(await checkValues('engine_grants', 'engine_grants_order_types_check')).toEqual([...ORDER_TYPES].sort());
  });
});
