// Structural rules that keep user data behind the RLS wrapper, where an
// import rule cannot say them: how the unscoped client and database clients
// are used. Which folder may import which is checked by Biome
// (noRestrictedImports in biome.jsonc, run by `npm run lint`): src/domain
// imports nothing with I/O, src/services, src/brokers and src/engine nothing
// of GraphQL, src/schema never the database, src/db nothing above it.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

async function sources(dir: string): Promise<{ file: string; text: string }[]> {
  const entries = await readdir(path.join(SRC, dir), { withFileTypes: true, recursive: true });
  const files = entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(
    files.map(async (file) => ({ file: path.relative(SRC, file), text: await readFile(file, 'utf8') })),
  );
}

/** The Prisma model delegates and tables of user data (test/support/rls-check.ts has the same list of tables). */
const USER_MODELS = [
  'credential',
  'userAccount',
  'credentialEvent',
  'engineGrant',
  'engineGrantUsage',
  'engineResponse',
];
const USER_TABLES =
  /\b(user_accounts|user_credentials|credential_events|engine_grants|engine_grant_usage|engine_responses)\b/;

/**
 * The names a file binds to the unscoped client: unscopedClient itself, a
 * variable or parameter it is assigned to or typed as (PrismaClient), and the
 * handle of a transaction opened on one of those.
 */
function unscopedClientNames(text: string): string[] {
  const names = new Set(['unscopedClient']);
  for (const [, name] of text.matchAll(/(\w+)\??\s*:\s*PrismaClient\b/g)) names.add(name as string);
  let grew = true;
  while (grew) {
    grew = false;
    const known = [...names].join('|');
    const bound = [
      ...text.matchAll(new RegExp(`(?:const|let)\\s+(\\w+)\\s*=\\s*(?:[\\w.]+\\.)?(?:${known})\\b(?!\\s*\\.)`, 'g')),
      ...text.matchAll(new RegExp(`\\b(?:${known})\\s*\\.\\s*\\$transaction\\(\\s*(?:async\\s*)?\\(?\\s*(\\w+)`, 'g')),
    ];
    for (const [, name] of bound) {
      if (name && !names.has(name)) {
        names.add(name);
        grew = true;
      }
    }
  }
  return [...names];
}

describe('request code', () => {
  it('never reaches the unscoped client: resolvers only get ctx.db from the RLS transaction', async () => {
    const requestCode = [...(await sources('schema')), ...(await sources('domain'))];
    expect(requestCode.length).toBeGreaterThan(3);
    for (const { file, text } of requestCode) {
      expect(text, file).not.toMatch(/unscopedClient|new PrismaClient/);
      expect(text, file).not.toMatch(/\$transaction|\$executeRawUnsafe|\$queryRawUnsafe/);
    }
  });

  it('verifies credentials without the unscoped client: broker code and the verification service get scoped steps only', async () => {
    const code = [
      ...(await sources('brokers')),
      ...(await sources('services')).filter((s) => /verification/.test(s.file)),
    ];
    expect(code.length).toBeGreaterThanOrEqual(3);
    for (const { file, text } of code) {
      expect(text, file).not.toMatch(/unscopedClient|db\/database\.ts|new PrismaClient|\.withUser\(/);
    }
  });

  it('never touches user data through the unscoped client, anywhere a request or a service runs', async () => {
    const code = [
      ...(await sources('schema')),
      ...(await sources('domain')),
      ...(await sources('services')),
      ...(await sources('graphql')),
      ...(await sources('http')),
      ...(await sources('engine')),
      ...(await sources('auth')),
      ...(await sources('admin')),
      ...(await sources('.')).filter((s) => s.file === 'server.ts'),
    ];
    expect(code.map((s) => s.file)).toEqual(
      expect.arrayContaining([
        'server.ts',
        'services/key-rotation.ts',
        'engine/api.ts',
        'http/request-log.ts',
        'admin/operations.ts',
      ]),
    );
    for (const { file, text } of code) {
      const unscoped = unscopedClientNames(text);
      for (const name of unscoped) {
        const reach = new RegExp(
          `\\b${name}\\s*\\.\\s*(${USER_MODELS.join('|')}|\\$queryRaw\\w*|\\$executeRaw\\w*)\\b`,
        );
        expect(text, `${file}: ${name} is the unscoped client`).not.toMatch(reach);
      }
      // Raw SQL naming a user table runs only on a scoped handle (ctx.db, a step's or withUser's tx).
      for (const [statement] of text.matchAll(/(\w+)\s*\.\s*\$(queryRaw|executeRaw)\w*[^`]*`[^`]*`/g)) {
        const handle = /^\w+/.exec(statement)?.[0] as string;
        if (USER_TABLES.test(statement)) expect(unscoped, `${file}: ${statement.slice(0, 80)}`).not.toContain(handle);
      }
    }
  });

  it('names the unscoped client only where it is listed', async () => {
    // Where it is built, composed, and used on the tables that hold no user data.
    const listed = [
      'db/database.ts',
      'db/postgres.ts',
      'db/pglite.ts',
      'server.ts',
      'engine/api.ts',
      'engine/clients.ts',
      'services/key-rotation.ts',
      'admin/operations.ts',
    ];
    const naming = (await sources('.')).filter((s) => /\bunscopedClient\b/.test(s.text)).map((s) => s.file);
    expect(naming.sort()).toEqual(listed.sort());
  });

  it('opens the embedded database in one place only, which takes DATA_DIR’s lock first', async () => {
    const opening = (await sources('.')).filter((s) => /new PGlite\(/.test(s.text));
    expect(opening.map((s) => s.file)).toEqual(['db/pglite.ts']);
    const text = opening[0]?.text ?? '';
    expect(text.match(/new PGlite\(/g)).toHaveLength(1);
    // The lease (DATA_DIR's lock) comes before the open, in the same function.
    expect(text.indexOf('leaseDataDir(')).toBeGreaterThan(-1);
    expect(text.indexOf('leaseDataDir(', text.indexOf('async function openLockedPglite'))).toBeLessThan(
      text.indexOf('new PGlite('),
    );
  });

  it('has no module besides src/db creating database clients', async () => {
    for (const { file, text } of await sources('.')) {
      if (file.startsWith('db/') || file.startsWith('generated/') || file.startsWith('cli/')) continue;
      expect(text, file).not.toMatch(/new PrismaClient|new PGlite|new pg\.(Pool|Client)/);
    }
  });
});
