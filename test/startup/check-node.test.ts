// On a Node.js older than 24 the README's commands stop at once, before
// anything is downloaded, saying that Node 24 is needed (docs/development.md):
// - `npm install` / `npm ci`: .npmrc's engine-strict with package.json's
//   engines (npm 10.8 and later), or devEngines.runtime (npm 10.9 and later),
//   whichever npm checks first;
// - `npm start` / `npm test`: devEngines.runtime (npm 10.9 and later);
// - the preinstall check (scripts/check-node.cjs) is the fallback when both
//   are overridden (--force, --engine-strict=false).
// Run with the machine's system Node (Debian's, 20) where it is older, and
// with the Node running the tests.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SYSTEM_NODE = '/usr/bin/node';
const SYSTEM_NPM = '/usr/bin/npm';
const run = (node: string) =>
  promisify(execFile)(node, ['scripts/check-node.cjs'], { cwd: ROOT }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );

/** The system Node's version, or why the Node 20 tests cannot run here. */
function systemNode(): { version: string } | { skip: string } {
  if (!existsSync(SYSTEM_NODE) || !existsSync(SYSTEM_NPM)) return { skip: `no ${SYSTEM_NODE} and ${SYSTEM_NPM}` };
  const version = execFileSync(SYSTEM_NODE, ['--version'], { encoding: 'utf8' }).trim().slice(1);
  if (Number(version.split('.')[0]) >= 24) {
    return { skip: `${SYSTEM_NODE} is Node.js ${version}, not older than 24: nothing to refuse` };
  }
  return { version };
}
const system = systemNode();

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

describe('the version requirement, where npm reads it', () => {
  it('engines, engine-strict and devEngines.runtime all say Node 24 or newer', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.engines.node).toBe('>=24');
    expect(pkg.engines['//']).toMatch(/Node\.js 24 or newer/);
    expect(pkg.devEngines).toEqual({ runtime: { name: 'node', version: '>=24', onFail: 'error' } });
    expect(readFileSync(path.join(ROOT, '.npmrc'), 'utf8')).toMatch(/^engine-strict=true$/m);
    expect(readFileSync(path.join(ROOT, '.nvmrc'), 'utf8').trim()).toBe('24');
  });
});

/** Total size of the files under `dir`, in bytes. */
async function sizeOf(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const sizes = await Promise.all(
    entries.filter((e) => e.isFile()).map(async (e) => (await stat(path.join(e.parentPath, e.name))).size),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

interface NpmRun {
  code: number | null;
  ms: number;
  lines: string[];
  cacheBytes: number;
}

describe(`the README's commands on the system Node (${'version' in system ? system.version : 'skipped'})`, () => {
  let project: string;
  let npmVersion: number[] = [];

  beforeAll(async () => {
    if (!('version' in system)) return;
    // What a clone holds that npm reads before installing: the manifest, the lockfile, .npmrc, .nvmrc and scripts/.
    project = await mkdtemp(path.join(os.tmpdir(), 'bca-old-node-'));
    for (const file of ['package.json', 'package-lock.json', '.npmrc', '.nvmrc', 'scripts']) {
      await cp(path.join(ROOT, file), path.join(project, file), { recursive: true });
    }
    npmVersion = execFileSync(SYSTEM_NPM, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin' } })
      .trim()
      .split('.')
      .map(Number);
  });
  afterAll(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  /** `npm ARGS` as a person with Debian's Node types it: PATH=/usr/bin, no user config, an empty cache. */
  async function npm(args: string[]): Promise<NpmRun> {
    const cache = await mkdtemp(path.join(os.tmpdir(), 'bca-npm-cache-'));
    const started = Date.now();
    try {
      const { code, stderr } = await promisify(execFile)(SYSTEM_NPM, [...args, '--cache', cache], {
        cwd: project,
        // No npm_config_* of the npm that runs the tests, no ~/.npmrc.
        env: { PATH: '/usr/bin', HOME: project },
        // A run that downloads the dependencies takes minutes: cut it, it has failed anyway
        // (npm finishes its downloads after a SIGTERM).
        timeout: 30_000,
        killSignal: 'SIGKILL',
      }).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number | null; stderr: string }) => ({
          code: typeof e.code === 'number' ? e.code : null,
          stderr: e.stderr,
        }),
      );
      const ms = Date.now() - started;
      const lines = stderr.split('\n').filter((l) => l.startsWith('npm error'));
      return { code, ms, lines, cacheBytes: await sizeOf(cache) };
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  }

  for (const command of ['install', 'ci']) {
    it(`npm ${command} stops within 10 s, first saying >=24, having downloaded no package`, async (ctx) => {
      if ('skip' in system) return ctx.skip(system.skip);
      const result = await npm([command]);
      console.info(
        `npm ${command} on Node ${system.version} (npm ${npmVersion.join('.')}): exit ${result.code} after ` +
          `${result.ms} ms, cache ${Math.round(result.cacheBytes / 1024)} KB; ${result.lines.slice(0, 6).join(' | ')}`,
      );
      expect(result.code, result.lines.join('\n')).not.toBe(0);
      expect(result.code, 'cut at 30 s: npm went on installing').not.toBeNull();
      expect(result.ms).toBeLessThan(10_000);
      // npm 10.9+: EBADDEVENGINES (devEngines); npm 10.8: EBADENGINE (engine-strict), with engines' hint.
      expect(result.lines[0]).toMatch(/^npm error code EBAD(DEV)?ENGINES?$/);
      expect(result.lines.slice(0, 6).join('\n')).toContain('>=24');
      // Package tarballs would be megabytes; metadata and logs are a few KB.
      expect(result.cacheBytes).toBeLessThan(1024 * 1024);
    });
  }

  for (const command of [['start'], ['test'], ['run', 'lint']]) {
    it(`npm ${command.join(' ')} stops at once too (npm 10.9 and later read devEngines)`, async (ctx) => {
      if ('skip' in system) return ctx.skip(system.skip);
      const [major = 0, minor = 0] = npmVersion;
      if (major < 10 || (major === 10 && minor < 9)) {
        return ctx.skip(`npm ${npmVersion.join('.')} does not read devEngines (10.9 and later do)`);
      }
      const result = await npm(command);
      expect(result.code).not.toBe(0);
      expect(result.ms).toBeLessThan(10_000);
      expect(result.lines[0]).toBe('npm error code EBADDEVENGINES');
      expect(result.lines.slice(0, 6).join('\n')).toContain('">=24" does not match');
    });
  }
});
