// `npm run schema`: writes the printed GraphQL schema to schema.graphql.
// test/unit/schema-file.test.ts fails when the file is out of date.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { printSchema } from 'graphql';
import { schema } from '../schema/index.ts';

export const SCHEMA_FILE = path.resolve(import.meta.dirname, '../../schema.graphql');

await writeFile(SCHEMA_FILE, `${printSchema(schema)}\n`);
process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
