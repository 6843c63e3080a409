// Node module resolution hook of rls-check-register.ts (it runs on the loader
// thread): src/db/database.ts resolves to the checked one, except for the
// checked one's own import of it.
import type { ResolveHook } from 'node:module';

const real = new URL('../../src/db/database.ts', import.meta.url).href;
const checked = new URL('./rls-check-database.ts', import.meta.url).href;

export const resolve: ResolveHook = async (specifier, context, next) => {
  const resolved = await next(specifier, context);
  return resolved.url === real && context.parentURL !== checked ? { ...resolved, url: checked } : resolved;
};
