// A production image installs with `npm ci --omit=dev` and starts with
// `npm start`: nothing the server runs may be a dev tool (vite, vitest,
// typescript, GraphQL Code Generator). This installs a copy of the project
// that way in a temporary folder and serves from it. It takes a minute or
// two (the install), so it runs in CI (CI=true, `bash .ci/run`) on the PGlite
// pass only, or wherever TEST_PRODUCTION_INSTALL=1 is set.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { gql, signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { startServer, type TestServer } from '../support/server.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const enabled = (!!process.env.CI && dbKind === 'pglite') || process.env.TEST_PRODUCTION_INSTALL === '1';

describe.runIf(enabled)('a production install (npm ci --omit=dev, npm start)', () => {
  let copy: string | undefined;
  let server: TestServer | undefined;
  afterAll(async () => {
    await server?.close();
    if (copy) await rm(copy, { recursive: true, force: true });
  });

  it('serves the API from a production install, without the dev tools', { timeout: 600_000 }, async () => {
    copy = await mkdtemp(path.join(os.tmpdir(), 'bca-production-'));
    for (const entry of [
      'package.json',
      'package-lock.json',
      '.npmrc',
      '.nvmrc',
      'prisma.config.ts',
      'prisma',
      'src',
    ]) {
      await cp(path.join(ROOT, entry), path.join(copy, entry), {
        recursive: true,
        filter: (source) => !source.startsWith(path.join(ROOT, 'src/generated')),
      });
    }
    // Install scripts off, then the project's own generate step (Prisma's client): what an image build runs.
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: copy,
      maxBuffer: 16 * 1024 * 1024,
    });
    await run('npm', ['run', 'generate', '--silent'], { cwd: copy, maxBuffer: 16 * 1024 * 1024 });
    const installed = await readdir(path.join(copy, 'node_modules'));
    for (const tool of ['@graphql-codegen', '@biomejs', '@apollo', 'postgraphile']) {
      expect(installed, tool).not.toContain(tool);
    }
    // npm still installs vite, vitest and typescript: better-auth and prisma
    // name them as optional peers, which makes them "devOptional" in the
    // lockfile, and --omit=dev leaves those. The server must not need them:
    // remove them before starting it.
    for (const tool of ['vite', 'vitest', 'typescript', 'rolldown']) {
      await rm(path.join(copy, 'node_modules', tool), { recursive: true, force: true });
    }

    server = await startServer({ cwd: copy, viaNpm: true, env: { NODE_ENV: 'production' } });
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    const session = await signUp(server.url);
    const res = await gql(server.url, 'mutation { getOrCreateAccount { created } }', undefined, session);
    expect(res.body).toEqual({ data: { getOrCreateAccount: { created: true } } });
  });
});
