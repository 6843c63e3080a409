// `node --import ./test/support/rls-check-register.ts src/main.ts`: the RLS
// check (rls-check.ts) in a server the tests spawn (server.ts). Imports of
// src/db/database.ts resolve to rls-check-database.ts, as vitest.config.ts
// does in the test process, and each violation is written to stderr, where
// server.ts picks it up for the test that is running.
import { register } from 'node:module';
import { reportViolationsOnStderr } from './rls-check.ts';

reportViolationsOnStderr();
register('./rls-check-hooks.ts', import.meta.url);
