// Every document the code and the docs name exists: a comment or a doc that
// points to docs/<page>.md, a Markdown link to a relative .md file, or a
// top-level document (README.md, SECURITY.md...) fails this test once the
// file is not in the repository, so no reference leads nowhere.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCANNED = ['src', 'test', 'bench', 'prisma', 'scripts', 'docs', 'README.md', 'SECURITY.md'];
const SKIPPED = [`src${path.sep}generated`, `src${path.sep}sdk${path.sep}generated`];
/** This file: its examples name documents that do not exist, on purpose. */
const SELF = path.relative(ROOT, import.meta.filename);
const TEXT = /\.(ts|mjs|cjs|js|prisma|sql|md|sh|lua)$/;

/** The documents `text` (of `file`, relative to the root) names, each as the path it must exist at. */
function namedDocuments(file: string, text: string): { reference: string; target: string }[] {
  const found: { reference: string; target: string }[] = [];
  // docs/... anywhere, but not as the tail of a URL or of another path.
  for (const [reference] of text.matchAll(/(?<![\w./:-])docs\/[\w./-]*\.md\b/g)) {
    found.push({ reference, target: reference });
  }
  // A top-level document by its upper-case name (README.md, SECURITY.md).
  for (const [reference] of text.matchAll(/(?<![\w./:-])[A-Z][A-Z0-9_-]*\.md\b/g)) {
    found.push({ reference, target: reference });
  }
  // Markdown links to relative .md files, resolved from the linking file.
  if (file.endsWith('.md')) {
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+\.md)(#[^)]*)?\)/g)) {
      if (/^[a-z]+:/i.test(target as string)) continue;
      found.push({ reference: target as string, target: path.join(path.dirname(file), target as string) });
    }
  }
  return found;
}

async function files(entry: string): Promise<string[]> {
  const full = path.join(ROOT, entry);
  if (!existsSync(full)) return [];
  if (TEXT.test(entry)) return [entry];
  const entries = await readdir(full, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && TEXT.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)))
    .filter((f) => !SKIPPED.some((skipped) => f.startsWith(skipped)));
}

describe('document references', () => {
  it('name only documents that exist', async () => {
    const scanned = (await Promise.all(SCANNED.map(files))).flat().filter((f) => f !== SELF);
    expect(scanned.length).toBeGreaterThan(100);
    const missing: string[] = [];
    let references = 0;
    for (const file of scanned) {
      for (const { reference, target } of namedDocuments(file, await readFile(path.join(ROOT, file), 'utf8'))) {
        references += 1;
        if (!existsSync(path.join(ROOT, target))) missing.push(`${file}: ${reference}`);
      }
    }
    expect(references).toBeGreaterThan(30);
    expect(missing).toEqual([]);
  });

  it('finds docs paths, top-level documents and relative Markdown links, not URLs', () => {
    const absent = ['CON', 'TRACT.md'].join('');
    const named = (file: string, text: string) => namedDocuments(file, text).map((d) => d.target);
    expect(named('src/a.ts', `// see docs/engines.md and docs/architecture/x.md, or ${absent}`)).toEqual([
      'docs/engines.md',
      'docs/architecture/x.md',
      absent,
    ]);
    expect(named('src/a.ts', '// https://example.com/docs/x.md and github.com/o/r/blob/main/api.md')).toEqual([]);
    expect(named('docs/architecture/a.md', 'See [it](engine-proxy.md#top) and [that](../engines.md).')).toEqual([
      'docs/architecture/engine-proxy.md',
      'docs/engines.md',
    ]);
    expect(named('docs/a.md', 'See [the site](https://example.com/page.md).')).toEqual([]);
  });
});
