// The SDK as a front end installs it: `npm run build:sdk`, `npm pack`, then
// plain `npm install` of the tarball into an empty project, which imports it
// with plain node (no type stripping), calls the running server, and
// type-checks a consumer with tsc (a wrong field name fails).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentHashes } from '../../src/sdk/generated/trusted-documents.ts';
import { signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const server = useInProcessServer();
let project: string;

const CONSUMER = `import { createClient, ViewerDocument, documentHashes } from '@brokerage-credentials/sdk';
const client = createClient({ url: process.env.API_URL, token: process.env.API_TOKEN, trustedDocuments: true });
const { viewer } = await client.Viewer();
const { getOrCreateAccount } = await client.GetOrCreateAccount();
console.log(JSON.stringify({
  email: viewer?.email,
  created: getOrCreateAccount.created,
  document: ViewerDocument.kind,
  hashes: Object.keys(documentHashes).length,
}));
`;

const typed = (field: string) => `import { createClient, type AccountsQuery } from '@brokerage-credentials/sdk';
const client = createClient({ url: 'http://localhost:4000/graphql' });
export async function names(): Promise<string[]> {
  const data: AccountsQuery = await client.Accounts({ includeInactive: true });
  return data.accounts.flatMap((a) => a.credentials.map((c) => c.${field}));
}
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022', 'DOM'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    types: [],
    strict: true,
    noEmit: true,
  },
  files: ['consumer.ts'],
};

beforeAll(async () => {
  await run(process.execPath, ['src/cli/build-sdk.ts'], { cwd: ROOT });
  project = await mkdtemp(path.join(os.tmpdir(), 'bca-sdk-consumer-'));
  const { stdout } = await run(
    'npm',
    ['pack', path.join(ROOT, 'dist/sdk'), '--pack-destination', project, '--silent'],
    {
      cwd: project,
    },
  );
  const tarball = stdout.trim().split('\n').pop() as string;
  await writeFile(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await run('npm', ['install', `./${tarball}`, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project });
}, 240_000);
afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

describe(`the SDK package (${dbKind})`, () => {
  it('installs with graphql and @graphql-typed-document-node/core as its only dependencies', async () => {
    const installed = JSON.parse(
      await readFile(path.join(project, 'node_modules/@brokerage-credentials/sdk/package.json'), 'utf8'),
    ) as { dependencies: Record<string, string> };
    expect(Object.keys(installed.dependencies).sort()).toEqual(['@graphql-typed-document-node/core', 'graphql']);
    const top = await readdir(path.join(project, 'node_modules'));
    expect(top.filter((name) => !name.startsWith('.')).sort()).toEqual([
      '@brokerage-credentials',
      '@graphql-typed-document-node',
      'graphql',
    ]);
    const files = await readdir(path.join(project, 'node_modules/@brokerage-credentials/sdk'), { recursive: true });
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.join(' ')).not.toMatch(/prisma|schema\/|db\/|codegen/);
  });

  it('runs under plain node (no type stripping) against the server, by trusted-document hash', async () => {
    const session = await signUp(server.url);
    await writeFile(path.join(project, 'consumer.mjs'), CONSUMER);
    const { stdout } = await run(process.execPath, ['--no-experimental-strip-types', 'consumer.mjs'], {
      cwd: project,
      env: { PATH: process.env.PATH ?? '', API_URL: `${server.url}/graphql`, API_TOKEN: session.token },
    });
    const hashes = Object.keys(documentHashes).length;
    expect(JSON.parse(stdout)).toEqual({ email: session.email, created: true, document: 'Document', hashes });
  });

  it('type-checks a consumer with tsc, and a wrong field name fails', async () => {
    const tsc = path.join(ROOT, 'node_modules/.bin/tsc');
    await writeFile(path.join(project, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    await writeFile(path.join(project, 'consumer.ts'), typed('nickname'));
    await run(tsc, ['-p', project], { cwd: project });
    await writeFile(path.join(project, 'consumer.ts'), typed('nickName'));
    const failed = await run(tsc, ['-p', project], { cwd: project }).then(
      () => '',
      (error: { stdout: string }) => error.stdout,
    );
    expect(failed).toMatch(/consumer\.ts\(\d+,\d+\): error TS\d+: Property 'nickName' does not exist/);
  });
});
