// docs/errors.md cannot fall behind what clients receive: it names every
// extensions.code of the GraphQL error contract (the inline snapshots of
// test/api/error-contract.test.ts), and every code of the engine API
// (src/engine/errors.ts) in its table with the HTTP status the code answers.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_ERROR_STATUS } from '../../src/engine/errors.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFile(path.join(ROOT, file), 'utf8');

/** The rows of the table under `heading` (a "## " heading of the page), as cells. */
function tableUnder(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(heading);
  if (start === -1) throw new Error(`docs/errors.md has no heading "${heading}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2} /.test(line)) break;
    if (line.startsWith('|') && !/^\|\s*-/.test(line)) {
      rows.push(
        line
          .slice(1, -1)
          .split('|')
          .map((cell) => cell.trim()),
      );
    }
  }
  return rows;
}

describe('docs/errors.md', () => {
  it('names every code of the GraphQL error contract', async () => {
    const contract = await read('test/api/error-contract.test.ts');
    const codes = new Set([...contract.matchAll(/"code": "([A-Z_]+)"/g)].map((m) => m[1] as string));
    expect(codes.size).toBeGreaterThanOrEqual(5);
    const graphql = tableUnder(await read('docs/errors.md'), '## GraphQL')
      .map(([code]) => code)
      .join(' ');
    for (const code of codes) expect(graphql, code).toContain(`\`${code}\``);
  });

  it('lists every code of the engine API once, with the status it answers', async () => {
    const rows = tableUnder(await read('docs/errors.md'), '## The engine API').filter(([code]) =>
      /^`[A-Z_]+`$/.test(code ?? ''),
    );
    const documented = Object.fromEntries(rows.map(([code, status]) => [code?.slice(1, -1), Number(status)]));
    expect(rows.length, 'a code listed twice').toBe(Object.keys(documented).length);
    expect(documented).toEqual(ENGINE_ERROR_STATUS);
  });
});
