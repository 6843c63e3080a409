// Prisma's CLI configuration (Prisma 7 reads it for every command): the
// schema, the migrations folder, and the database for the commands that talk
// to one (`prisma migrate status`, `prisma migrate deploy`). The server never
// reads this file: it applies migrations itself (src/db/migrations.ts).
//
// The schema engine, and the commands that need it: the CLI first makes sure
// Prisma's native schema engine is on disk and downloads it when it is not,
// whatever the command. Its download is an install script (never run here:
// `npm ci --ignore-scripts`), and binaries.prisma.sh is not reachable from a
// machine without internet, so even `prisma generate`, which only needs the
// query compiler that ships inside the prisma package, would fail. Naming any
// existing file in PRISMA_SCHEMA_ENGINE_BINARY makes the CLI take that file
// as the engine and skip the download; commands that never start the engine
// work as usual. So for every command but `migrate` and `db`, the variable
// points at the schema file unless it is already set; those two keep the
// ordinary behaviour (they need the real engine, downloaded or given).
import path from 'node:path';
import { defineConfig } from 'prisma/config';

const usesSchemaEngine = process.argv.slice(2).some((arg) => arg === 'migrate' || arg === 'db');
if (!usesSchemaEngine) {
  process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= path.join(import.meta.dirname, 'prisma/schema.prisma');
}

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // Optional: only the commands that connect need it (generate does not).
  datasource: { url: process.env.DATABASE_URL },
});
