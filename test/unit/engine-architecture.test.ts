// Structural rules of the engine API (docs/architecture/engine-proxy.md): user
// data is reached only through the two RLS scopes; the unscoped client touches
// engine clients and tokens only. That it depends on nothing of GraphQL is an
// import rule, checked by Biome (biome.jsonc, `npm run lint`).
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

describe('the engine API', () => {
  it('reads user data only through withUser and withEngineClient; the unscoped client only for tokens and clients', async () => {
    for (const { file, text } of await sources('engine')) {
      expect(text, file).not.toMatch(/new PrismaClient|\$executeRawUnsafe|\$queryRawUnsafe/);
      // Only the store of clients and tokens opens transactions of its own (on those tables).
      if (/\$transaction/.test(text)) expect(file).toBe('engine/clients.ts');
      const unscoped = /unscopedClient/.test(text);
      // api.ts hands the unscoped client to the store of clients and tokens (clients.ts), nothing else.
      if (unscoped) expect(['engine/api.ts', 'engine/clients.ts'], file).toContain(file);
      if (
        /user_credentials|credential_events|engine_grants|engine_grant_usage|engine_responses|\.credential\.|\.credentialEvent\.|\.engineGrant(Usage)?\.|\.engineResponse\./.test(
          text,
        )
      ) {
        // Through the two scopes (admission, the grant list), or in the caller's scoped transaction (grant changes).
        expect(['engine/admission.ts', 'engine/grant-list.ts', 'engine/grant-changes.ts']).toContain(file);
        expect(text).not.toMatch(/unscopedClient|prisma\./);
      }
    }
  });

  it('is mounted in the route table of src/server.ts, by path only', async () => {
    const server = await readFile(path.join(SRC, 'server.ts'), 'utf8');
    expect(server).toMatch(/createEngineApi\(/);
    expect(server).toMatch(/\{ path: ENGINE_PATH_PREFIX, prefix: true, asSent: true, handler: engine\.api \}/);
    expect(server).toMatch(/\{ path: METADATA_PATH, handler: engine\.metadata \}/);
  });
});
