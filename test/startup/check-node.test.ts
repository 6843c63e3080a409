// The preinstall check (docs/development.md): `npm install` / `npm ci` on a
// Node.js older than 24 stops with a line naming both versions. Run here with
// the machine's system Node (Debian's, 20) and with the Node running the tests.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SYSTEM_NODE = '/usr/bin/node';
const run = (node: string) =>
  promisify(execFile)(node, ['scripts/check-node.cjs'], { cwd: ROOT }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );

describe('scripts/check-node.cjs', () => {
  it('is the preinstall script, and reads the version from engines', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.preinstall).toBe('node scripts/check-node.cjs');
    expect(pkg.engines.node).toBe('>=24');
  });

  it('passes on the Node running the tests (24)', async () => {
    expect(await run(process.execPath)).toEqual({ code: 0, stderr: '' });
  });

  it.runIf(existsSync(SYSTEM_NODE))('stops an older Node with one line naming both versions', async () => {
    const version = (await promisify(execFile)(SYSTEM_NODE, ['--version'])).stdout.trim().slice(1);
    expect(Number(version.split('.')[0])).toBeLessThan(24);
    const result = await run(SYSTEM_NODE);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `brokerage-credentials-api needs Node.js 24 or newer (package.json engines: ">=24"); this is Node.js ${version} ` +
        `(${SYSTEM_NODE}). Install Node.js 24 (see .nvmrc) and run the install again.\n`,
    );
  });
});
