// schema.graphql must be the printed schema of the code. Regenerate with `npm run schema`.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { printSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../../src/schema/index.ts';

describe('schema.graphql', () => {
  it('is in sync with the code (run `npm run schema` after changing src/schema)', async () => {
    const committed = await readFile(path.resolve(import.meta.dirname, '../../schema.graphql'), 'utf8');
    expect(committed).toBe(`${printSchema(schema)}\n`);
  });
});
