// docs/configuration.md cannot drift from the configuration schema: its table
// of variables lists every variable src/config/load.ts reads, each once, and
// nothing else, and each row says its default and what it does.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config/load.ts';

const PAGE = path.resolve(import.meta.dirname, '../../docs/configuration.md');

/** The rows of the table whose header starts with "| Variable |": [variable, default, what it does, refused]. */
function variableRows(markdown: string): string[][] {
  const lines = markdown.split('\n');
  const header = lines.findIndex((line) => /^\|\s*Variable\s*\|/.test(line));
  if (header === -1) throw new Error('docs/configuration.md has no table headed "| Variable |"');
  const rows: string[][] = [];
  // The header, then the separator row, then the rows until the table ends.
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, line.endsWith('|') ? -1 : undefined)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

describe('docs/configuration.md', () => {
  it('lists every variable of the configuration schema once, and nothing else', async () => {
    const rows = variableRows(await readFile(PAGE, 'utf8'));
    const listed = rows.map(([name]) => /^`([A-Z][A-Z0-9_]*)`$/.exec(name ?? '')?.[1] ?? `not a variable: ${name}`);
    expect(CONFIG_VARIABLES.length).toBeGreaterThan(30);
    expect([...listed].sort()).toEqual([...CONFIG_VARIABLES].sort());
    expect(new Set(listed).size, 'a variable listed twice').toBe(listed.length);
  });

  it('gives each variable a default and a meaning', async () => {
    for (const [name, fallback, meaning] of variableRows(await readFile(PAGE, 'utf8'))) {
      expect(fallback, `${name}: default`).toBeTruthy();
      expect(meaning, `${name}: what it does`).toBeTruthy();
    }
  });
});
