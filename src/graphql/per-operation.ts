// Work that depends on the operation alone, done once per parsed document and
// operation name rather than per request. yoga hands the same DocumentNode for
// the same query text (its parse cache), so a hot document pays once; the
// entries are held weakly and go when yoga drops the document. The schema is
// one per handler, so it is not part of the key.
import type { DocumentNode } from 'graphql';

export interface OperationKey {
  document: DocumentNode;
  operationName?: string | null;
}

/** `compute` memoised per (document, operation name); what it returns for the first request is kept. */
export function perOperation<A extends OperationKey, T>(compute: (args: A) => T): (args: A) => T {
  const cache = new WeakMap<DocumentNode, Map<string, T>>();
  return (args) => {
    let byName = cache.get(args.document);
    if (!byName) {
      byName = new Map();
      cache.set(args.document, byName);
    }
    const name = args.operationName ?? '';
    if (byName.has(name)) return byName.get(name) as T;
    const value = compute(args);
    byName.set(name, value);
    return value;
  };
}
