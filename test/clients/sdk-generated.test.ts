// The committed SDK must be what codegen.ts produces now, and its operations
// must cover every root field of the schema. Regenerate with `npm run codegen`.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from '@graphql-codegen/cli';
import { buildSchema, type GraphQLObjectType, parse, visit } from 'graphql';
import { describe, expect, it } from 'vitest';
import config from '../../codegen.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OPERATIONS = path.join(ROOT, 'src/sdk/operations');
const GENERATED = path.join(ROOT, 'src/sdk/generated');

describe('generated SDK', () => {
  it('is up to date with schema.graphql and src/sdk/operations (run `npm run codegen`)', async () => {
    const outputs: { filename: string; content: string }[] = await generate(
      { ...config, cwd: ROOT, silent: true },
      false,
    );
    expect(outputs.map((o) => path.resolve(ROOT, o.filename)).sort()).toEqual(
      (await readdir(GENERATED)).map((name) => path.join(GENERATED, name)).sort(),
    );
    for (const output of outputs) {
      const committed = await readFile(path.resolve(ROOT, output.filename), 'utf8');
      expect(committed, output.filename).toBe(output.content);
    }
  });

  it('has an operation for every query and mutation, and passes both arguments of Account.credentials', async () => {
    const schema = buildSchema(await readFile(path.join(ROOT, 'schema.graphql'), 'utf8'));
    const files = (await readdir(OPERATIONS)).filter((name) => name.endsWith('.graphql'));
    const documents = await Promise.all(
      files.map(async (name) => parse(await readFile(path.join(OPERATIONS, name), 'utf8'))),
    );

    const rootFieldsUsed = new Set<string>();
    const credentialsArgs = new Set<string>();
    for (const document of documents) {
      for (const definition of document.definitions) {
        if (definition.kind !== 'OperationDefinition') continue;
        for (const selection of definition.selectionSet.selections) {
          if (selection.kind === 'Field') rootFieldsUsed.add(`${definition.operation}.${selection.name.value}`);
        }
      }
      visit(document, {
        Field(node) {
          if (node.name.value === 'credentials') {
            for (const arg of node.arguments ?? []) credentialsArgs.add(arg.name.value);
          }
        },
      });
    }
    const roots = { query: schema.getQueryType(), mutation: schema.getMutationType() };
    const expected = Object.entries(roots).flatMap(([operation, type]) =>
      Object.keys((type as GraphQLObjectType).getFields()).map((field) => `${operation}.${field}`),
    );
    expect([...rootFieldsUsed].sort()).toEqual(expected.sort());
    expect([...credentialsArgs].sort()).toEqual(['credentialType', 'includeInactive']);
  });
});
