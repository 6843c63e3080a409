// GraphQL Code Generator plugin: the trusted-documents manifest of the SDK's
// operations (codegen.ts runs it). Each operation, with the fragments it
// uses, printed as one document and keyed by the SHA-256 of that text, as
// `extensions.persistedQuery.sha256Hash` names it:
//   output 'manifest': persisted-documents.json, { "<sha256>": "<document>" },
//                      which the server loads (src/graphql/trusted-documents.ts);
//   output 'hashes':   trusted-documents.ts, operation name → hash, which the
//                      SDK's client sends instead of the text when asked to.
// Written here rather than taken from @graphql-codegen/client-preset, whose
// persistedDocuments option writes the same kind of manifest: that preset
// would also replace the SDK's generated files with its own (a `graphql()`
// tag, fragment masking), and the SDK's API with them.
import { createHash } from 'node:crypto';
import type { PluginFunction } from '@graphql-codegen/plugin-helpers';
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  print,
  visit,
} from 'graphql';

export interface TrustedDocument {
  name: string;
  hash: string;
  document: string;
}

/** SHA-256 of the document text, in hex: the id clients send. */
export const documentHash = (document: string): string => createHash('sha256').update(document).digest('hex');

/** Every named operation of `documents`, as the text of a standalone document with the fragments it needs. */
export function trustedDocuments(documents: readonly DocumentNode[]): TrustedDocument[] {
  const definitions = documents.flatMap((d) => d.definitions);
  const fragments = new Map(
    definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const used = (node: OperationDefinitionNode | FragmentDefinitionNode, found: Map<string, FragmentDefinitionNode>) => {
    visit(node, {
      FragmentSpread({ name }) {
        const fragment = fragments.get(name.value);
        if (!fragment) throw new Error(`unknown fragment ${name.value}`);
        if (!found.has(name.value)) used(fragment, found.set(name.value, fragment));
      },
    });
    return found;
  };
  return definitions
    .filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)
    .map((operation) => {
      const name = operation.name?.value;
      if (!name) throw new Error('every SDK operation needs a name (trusted documents are listed by it)');
      const spread = [...used(operation, new Map()).values()].sort((a, b) => a.name.value.localeCompare(b.name.value));
      const document = print({ kind: Kind.DOCUMENT, definitions: [operation, ...spread] });
      return { name, hash: documentHash(document), document };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export const plugin: PluginFunction<{ output: 'manifest' | 'hashes' }> = (_schema, files, config) => {
  const documents = trustedDocuments(files.flatMap((f) => (f.document ? [f.document] : [])));
  if (config.output === 'manifest') {
    return `${JSON.stringify(Object.fromEntries(documents.map((d) => [d.hash, d.document])), null, 2)}\n`;
  }
  const entries = documents.map((d) => `  ${d.name}: '${d.hash}',`).join('\n');
  return `/** SHA-256 of each operation's trusted document (persisted-documents.json), by operation name. */\nexport const documentHashes: Readonly<Record<string, string>> = {\n${entries}\n};\n`;
};
