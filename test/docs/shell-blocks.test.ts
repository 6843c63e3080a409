// The documents' commands work as written: every ```sh block of README.md,
// docs/getting-started.md and docs/engines.md (which continues the guide's
// walk-through) runs, in order, against a server started the way
// the document starts it (`npm start`, the embedded default, nothing
// configured but its port and DATA_DIR), and what a block shows after
// "# → " is what it printed.
//
// The blocks of a document (or of documents read in a row: docs/engines.md
// continues the guide) run in bash, one process per block, each with the
// shell variables the earlier blocks set (a reader's terminal). localhost:4000 in a
// block is the test server's port, and the stand-in's default URLs the ones
// it printed. A block may be preceded by one directive:
//
//   <!-- doc-test: skip: REASON -->        not run (REASON says why)
//   <!-- doc-test: server -->              starts the server: the block's command
//                                          runs in the background, once the one
//                                          before it is stopped (a reader's Ctrl-C)
//   <!-- doc-test: server: COMMAND -->     the same with COMMAND, which the block
//                                          holds (the rest of it, such as `npm
//                                          install` or `npm test`, is this suite)
//   <!-- doc-test: background -->          runs in the background until the end,
//                                          ready once its "# → " lines showed
//
// An expectation ("# → " then lines "#   " continuing it) matches the block's
// output with "…" standing for any text; a block that shows none must print
// no GraphQL or engine error. The documents' commands target the embedded
// database whatever TEST_DATABASE_URL says, so the file runs in the PGlite
// pass only.
import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dbKind, PGLITE_TEMPLATE_DIR } from '../support/databases.ts';
import { eventually } from '../support/poll.ts';
import { freePort } from '../support/ports.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The server's port and the stand-in's URLs as the documents write them (their defaults). */
const DOC_SERVER = 'localhost:4000';
const DOC_STAND_IN: Record<string, string> = {
  ALPACA_PAPER_URL: 'http://127.0.0.1:4100',
  ALPACA_LIVE_URL: 'http://127.0.0.1:4101',
  ALPACA_DATA_URL: 'http://127.0.0.1:4102',
};
const BLOCK_TIMEOUT_MS = 60_000;
const START_TIMEOUT_MS = 120_000;

type Directive =
  | { kind: 'skip'; reason: string }
  | { kind: 'server'; command: string | null }
  | { kind: 'background' }
  | { kind: 'run' };

interface ShellBlock {
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
  directive: Directive;
  /** The "# → " lines, continuations joined. */
  expectations: string[];
}

function parseDirective(line: string | undefined, at: number): Directive {
  const match = /^<!--\s*doc-test:\s*(.*?)\s*-->$/.exec(line?.trim() ?? '');
  if (!match) return { kind: 'run' };
  const body = match[1] as string;
  const skip = /^skip:\s*(\S.*)$/.exec(body);
  if (skip) return { kind: 'skip', reason: skip[1] as string };
  const server = /^server(?::\s*(\S.*))?$/.exec(body);
  if (server) return { kind: 'server', command: server[1] ?? null };
  if (body === 'background') return { kind: 'background' };
  throw new Error(`line ${at}: unknown doc-test directive "${body}"`);
}

/** The shell blocks of a Markdown document, with their directives and expectations. */
function shellBlocks(markdown: string): ShellBlock[] {
  const lines = markdown.split('\n');
  const blocks: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)```(\w*)\s*$/.exec(lines[i] as string);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && /^\s*```\s*$/.test(l));
    if (end === -1) throw new Error(`line ${i + 1}: a code block that is never closed`);
    if (['sh', 'bash', 'shell'].includes(fence[2] as string)) {
      const body = lines.slice(i + 1, end);
      const expectations: string[] = [];
      for (const l of body) {
        const start = /^\s*# → (.*)$/.exec(l);
        const more = /^\s*# {3,}(\S.*)$/.exec(l);
        if (start) expectations.push((start[1] as string).trim());
        else if (more && expectations.length > 0)
          expectations.push(`${expectations.pop()}${(more[1] as string).trim()}`);
      }
      blocks.push({
        line: i + 1,
        text: body.join('\n'),
        directive: parseDirective(lines[i - 1], i),
        expectations,
      });
    }
    i = end;
  }
  return blocks;
}

/** An expectation as a pattern: literal text, "…" standing for any run of characters. */
function expectationPattern(expectation: string): RegExp {
  const parts = expectation.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(parts.join('[\\s\\S]*?'));
}

/** Whether every expectation matches `output`, each after the one before it; the first that does not, else null. */
function unmatched(expectations: string[], output: string): string | null {
  let from = 0;
  for (const expectation of expectations) {
    const match = expectationPattern(expectation).exec(output.slice(from));
    if (!match) return expectation;
    from += match.index + match[0].length;
  }
  return null;
}

/** Shell variables a block assigns (`NAME=...` at the start of a line), to carry into the next blocks. */
function assignedNames(text: string): string[] {
  return [...text.matchAll(/^\s*(?:export\s+)?([A-Za-z_]\w*)=/gm)].map((m) => m[1] as string);
}

interface Process {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

/** A command in the background, in its own process group (so that npm's children stop with it). */
function background(command: string, env: NodeJS.ProcessEnv): Process {
  const child = spawn('bash', ['-c', command], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output, exited };
}

async function stop(running: Process | undefined): Promise<void> {
  if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return;
  try {
    process.kill(-(running.child.pid as number), 'SIGTERM');
  } catch {
    // already gone
  }
  await running.exited;
}

/** Runs one block in bash with the session so far; resolves with its output and the session after it. */
function runBlock(
  text: string,
  session: { script: string; names: Set<string> },
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string; session: string }> {
  const names = new Set([...session.names, ...assignedNames(text)]);
  const marker = '\n__doc_test_session__\n';
  const script = [
    'set -euo pipefail',
    session.script,
    text,
    `printf '${marker.replaceAll('\n', '\\n')}'`,
    names.size ? `declare -p ${[...names].join(' ')} 2>/dev/null || true` : ':',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), BLOCK_TIMEOUT_MS);
    child.once('error', reject);
    // 'close': the process ended and its output was read to the end.
    child.once('close', (code) => {
      clearTimeout(timer);
      const at = stdout.lastIndexOf(marker);
      resolve({
        code,
        stdout: at === -1 ? stdout : stdout.slice(0, at),
        stderr,
        session: at === -1 ? session.script : stdout.slice(at + marker.length),
      });
    });
  });
}

/**
 * Runs the documents' blocks in order, as one reader in one terminal (a later
 * document continues the session of the one before); throws at the first
 * block that fails, naming it.
 */
async function runDocuments(files: string[]): Promise<{ ran: number; skipped: string[] }> {
  const blocks: (ShellBlock & { file: string })[] = [];
  for (const file of files) {
    const markdown = await readFile(path.join(ROOT, file), 'utf8');
    blocks.push(...shellBlocks(markdown).map((block) => ({ ...block, file })));
  }
  const dataRoot = await mkdtemp(path.join(os.tmpdir(), 'bca-doc-test-'));
  // The embedded database as a first start makes it (initdb once per machine, copied: the server migrates it).
  await cp(PGLITE_TEMPLATE_DIR, path.join(dataRoot, '.data', 'pgdata'), { recursive: true });
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? os.tmpdir(),
    LANG: 'C.UTF-8',
    PORT: String(port),
    DATA_DIR: path.join(dataRoot, '.data'),
    ALPACA_STAND_IN_PORT: '0',
  };
  const substitutions = new Map<string, string>([[DOC_SERVER, `localhost:${port}`]]);
  const substitute = (text: string) => {
    let result = text;
    for (const [from, to] of substitutions) result = result.replaceAll(from, to);
    return result;
  };
  let server: Process | undefined;
  const others: Process[] = [];
  const session = { script: '', names: new Set<string>() };
  let ran = 0;
  const skipped: string[] = [];
  try {
    for (const block of blocks) {
      const where = `${block.file}:${block.line}`;
      const { directive } = block;
      if (directive.kind === 'skip') {
        skipped.push(`${where}: ${directive.reason}`);
        continue;
      }
      ran += 1;
      if (directive.kind === 'server') {
        if (directive.command !== null) expect(block.text, where).toContain(directive.command);
        await stop(server);
        server = background(substitute(directive.command ?? block.text), env);
        const started = server;
        await eventually(
          `${where}: the server to listen`,
          async () => {
            if (started.child.exitCode !== null) {
              throw new Error(`${where}: the server exited (${started.child.exitCode}):\n${started.output.join('')}`);
            }
            return started.output.join('').includes('listening on http://');
          },
          { timeoutMs: START_TIMEOUT_MS, intervalMs: 100 },
        );
        continue;
      }
      if (directive.kind === 'background') {
        const started = background(substitute(block.text), env);
        others.push(started);
        await eventually(
          `${where}: its output to show ${JSON.stringify(block.expectations)}`,
          () => {
            if (started.child.exitCode !== null) {
              throw new Error(`${where}: exited (${started.child.exitCode}):\n${started.output.join('')}`);
            }
            return unmatched(block.expectations, started.output.join('')) === null;
          },
          { timeoutMs: START_TIMEOUT_MS, intervalMs: 100 },
        );
        // The stand-in's URLs as it printed them stand for the documents' defaults.
        for (const [, name, url] of started.output.join('').matchAll(/(ALPACA_\w+_URL)=(http:\/\/\S+)/g)) {
          const documented = DOC_STAND_IN[name as string];
          if (documented) substitutions.set(documented, url as string);
        }
        continue;
      }
      const result = await runBlock(substitute(block.text), session, env);
      for (const name of assignedNames(block.text)) session.names.add(name);
      const shown = `${where}\n--- block\n${block.text}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      expect(result.code, `the block failed: ${shown}`).toBe(0);
      const missing = unmatched(block.expectations.map(substitute), result.stdout);
      expect(missing, `the block printed something else than it shows: ${shown}`).toBeNull();
      if (block.expectations.length === 0) {
        expect(result.stdout, `the block printed an error it does not show: ${shown}`).not.toMatch(
          /"errors":\[|\{"error":\{/,
        );
      }
      session.script = result.session;
    }
  } finally {
    await stop(server);
    for (const other of others) await stop(other);
    await rm(dataRoot, { recursive: true, force: true });
  }
  return { ran, skipped };
}

describe('reading shell blocks', () => {
  it('reads blocks, directives and expectations, and matches "…" as any text', () => {
    const blocks = shellBlocks(
      [
        '<!-- doc-test: skip: needs a browser -->',
        '```sh',
        'open http://localhost:4000',
        '```',
        '```sh',
        'curl -s x',
        '# → {"data":{"id":"…",',
        '#     "name":"a"}}',
        '```',
        '```ts',
        'const notShell = 1;',
        '```',
      ].join('\n'),
    );
    expect(blocks.map((b) => b.directive.kind)).toEqual(['skip', 'run']);
    expect(blocks[1]?.expectations).toEqual(['{"data":{"id":"…","name":"a"}}']);
    expect(expectationPattern('{"id":"…","name":"a"}').test('{"id":"e2f1","name":"a"}')).toBe(true);
    expect(expectationPattern('{"id":"…","name":"a"}').test('{"id":"e2f1","name":"b"}')).toBe(false);
  });
});

describe.skipIf(dbKind !== 'pglite')("the documents' shell blocks, on the embedded default", () => {
  it('README.md', async () => {
    const { ran } = await runDocuments(['README.md']);
    expect(ran).toBeGreaterThanOrEqual(4);
  }, 300_000);

  // docs/engines.md's examples continue the guide's engine walk-through (its shell variables).
  it('docs/getting-started.md, then docs/engines.md', async () => {
    const { ran } = await runDocuments(['docs/getting-started.md', 'docs/engines.md']);
    expect(ran).toBeGreaterThanOrEqual(20);
  }, 600_000);
});
