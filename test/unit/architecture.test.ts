// Structural rules that keep user data behind the RLS wrapper.
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

describe('request code', () => {
  it('never reaches the unscoped client: resolvers only get ctx.db from the RLS transaction', async () => {
    const requestCode = [...(await sources('schema')), ...(await sources('domain'))];
    expect(requestCode.length).toBeGreaterThan(3);
    for (const { file, text } of requestCode) {
      expect(text, file).not.toMatch(/authTablesClient|db\/database\.ts|new PrismaClient/);
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
      expect(text, file).not.toMatch(/authTablesClient|db\/database\.ts|new PrismaClient|\.withUser\(/);
    }
  });

  it('has no module besides src/db creating database clients', async () => {
    for (const { file, text } of await sources('.')) {
      if (file.startsWith('db/') || file.startsWith('generated/') || file.startsWith('cli/')) continue;
      expect(text, file).not.toMatch(/new PrismaClient|new PGlite|new pg\.(Pool|Client)/);
    }
  });
});
