#!/usr/bin/env node
// A Prisma generator that writes the full DMMF (the parsed schema, with
// database names and native types) as JSON. Prisma's `prisma-client`
// generator keeps only a trimmed runtime model, and the schema-drift test
// (test/db/schema-drift.test.ts) needs the whole thing to compare against the
// migrated database. Uses Prisma's own generator protocol helper.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import generatorHelper from '@prisma/generator-helper';

generatorHelper.generatorHandler({
  onManifest: () => ({ prettyName: 'DMMF as JSON', defaultOutput: '../src/generated/dmmf' }),
  onGenerate: async (options) => {
    const dir = options.generator.output?.value;
    if (!dir) throw new Error('dmmf-json generator: no output directory');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'dmmf.json'), `${JSON.stringify(options.dmmf.datamodel, null, 2)}\n`);
  },
});
