// `npm run build:sdk`: the SDK (src/sdk) as a package a front end can install,
// in dist/sdk: ESM JavaScript and declarations compiled by tsc
// (src/sdk/tsconfig.build.json), the trusted-documents manifest, and a
// package.json of its own whose only dependencies are graphql and
// @graphql-typed-document-node/core. Nothing of the server goes in.
// `npm pack dist/sdk` makes the tarball.
import { execFileSync } from 'node:child_process';
import { copyFile, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OUT = path.join(ROOT, 'dist/sdk');
const SDK_PACKAGE_NAME = '@brokerage-credentials/sdk';

/** The range the package accepts for a dependency: the server's own version and later minors. */
function range(version: string): string {
  return `^${version}`;
}

async function main(): Promise<void> {
  const server = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
    engines: Record<string, string>;
    dependencies: Record<string, string>;
  };
  await rm(OUT, { recursive: true, force: true });
  execFileSync(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(ROOT, 'src/sdk/tsconfig.build.json')], {
    stdio: 'inherit',
  });
  // tsc rewrites the JavaScript's relative imports from .ts to .js
  // (rewriteRelativeImportExtensions) but leaves the declarations' as written.
  const files = await readdir(OUT, { recursive: true });
  for (const file of files.filter((f) => f.endsWith('.d.ts')).map((f) => path.join(OUT, f))) {
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2'));
  }
  await copyFile(
    path.join(ROOT, 'src/sdk/generated/persisted-documents.json'),
    path.join(OUT, 'persisted-documents.json'),
  );
  const pkg = {
    name: SDK_PACKAGE_NAME,
    version: server.version,
    description:
      'Typed client for the brokerage credentials GraphQL API: TypedDocumentNode documents for Apollo Client ' +
      'and urql, a small fetch client, and the trusted-documents manifest.',
    type: 'module',
    sideEffects: false,
    exports: {
      '.': { types: './index.d.ts', default: './index.js' },
      './persisted-documents.json': './persisted-documents.json',
    },
    files: ['**/*.js', '**/*.d.ts', 'persisted-documents.json'],
    dependencies: {
      '@graphql-typed-document-node/core': range(server.dependencies['@graphql-typed-document-node/core'] as string),
      graphql: range(server.dependencies.graphql as string),
    },
  };
  await writeFile(path.join(OUT, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  process.stdout.write(`wrote ${path.relative(ROOT, OUT)} (${pkg.name}@${pkg.version})\n`);
}

await main();
