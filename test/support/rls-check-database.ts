// src/db/database.ts as every test file sees it (vitest.config.ts resolves
// imports of that module here): openDatabase with the RLS check of
// rls-check.ts added to the instrumentation the caller passes, and an
// unscopedClient whose use by test code goes to a fixture client the check
// does not watch. Everything else is the real module.
import type { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import {
  type Database,
  type DatabaseOptions,
  type Instrumentation,
  type OpenOptions,
  openDatabase as open,
} from '../../src/db/database.ts';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { fixturePglite, rlsCheck, routeFixtureAccess } from './rls-check.ts';

export * from '../../src/db/database.ts';

/** Both hooks run: the check first, so that it sees the statements as sent. */
function both(check: Instrumentation, other?: Instrumentation): Instrumentation {
  return {
    pgConnection: (client) => {
      check.pgConnection?.(client);
      other?.pgConnection?.(client);
    },
    pglite: (db) => {
      check.pglite?.(db);
      other?.pglite?.(db);
    },
  };
}

export async function openDatabase(config: DatabaseOptions, options: OpenOptions): Promise<Database> {
  let pglite: PGlite | undefined;
  const check = rlsCheck(config.requestRole, (db) => {
    pglite = db;
  });
  const db = await open(config, { ...options, instrument: both(check, options.instrument) });
  let fixture: PrismaClient | undefined;
  const fixtureClient = () => {
    if (fixture) return fixture;
    if (config.kind === 'postgres') {
      fixture = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.url, max: 2 }) });
    } else {
      if (!pglite) throw new Error('the RLS check did not see the PGlite instance');
      fixture = new PrismaClient({ adapter: new PrismaPGlite(fixturePglite(pglite)) });
    }
    return fixture;
  };
  return {
    ...db,
    unscopedClient: routeFixtureAccess(db.unscopedClient, fixtureClient),
    close: async () => {
      await fixture?.$disconnect();
      await db.close();
    },
  };
}
