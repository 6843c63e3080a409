import { access, rm, writeFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { adminQuery, PGLITE_TEMPLATE_DIR, testDatabaseUrl } from './databases.ts';

const MARKER = `${PGLITE_TEMPLATE_DIR}.complete`;

/** Initialises the PGlite template once per machine (reused while intact). */
async function ensurePgliteTemplate(): Promise<void> {
  try {
    await access(MARKER);
    return;
  } catch {
    // not there yet
  }
  await rm(PGLITE_TEMPLATE_DIR, { recursive: true, force: true });
  const db = new PGlite(PGLITE_TEMPLATE_DIR);
  await db.waitReady;
  await db.close();
  await writeFile(MARKER, new Date().toISOString());
}

export default async function setup(): Promise<void> {
  if (testDatabaseUrl) {
    await adminQuery('SELECT 1').catch((error: Error) => {
      throw new Error(`TEST_DATABASE_URL (${testDatabaseUrl}) does not answer: ${error.message}`);
    });
    process.stdout.write(`tests run on PostgreSQL (${testDatabaseUrl})\n`);
  } else {
    await ensurePgliteTemplate();
    process.stdout.write('tests run on embedded PGlite (set TEST_DATABASE_URL for PostgreSQL)\n');
  }
}
