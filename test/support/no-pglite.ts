// `node --import ./test/support/no-pglite.ts …`: the process fails the moment
// anything resolves a module of @electric-sql/pglite (directly, or through
// pglite-prisma-adapter). A command-line task run with it and exiting 0 never
// loaded PGlite, so it cannot have opened the embedded database's files.
import { registerHooks } from 'node:module';

// Only for --import: importing it anywhere else installs the hook there too.
const PGLITE_LOADED = 'PGlite was loaded in a process that must not open the database files';

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (resolved.url.includes('/node_modules/@electric-sql/pglite/')) {
      throw new Error(`${PGLITE_LOADED}: ${specifier} from ${context.parentURL ?? '?'}`);
    }
    return resolved;
  },
});
