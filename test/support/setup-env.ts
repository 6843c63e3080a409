// Runs before every test file (vitest setupFiles).
import { afterAll, afterEach, beforeEach } from 'vitest';
import { failOnRlsViolations } from './rls-check.ts';

// The app under test in the test process must meet the environment a spawned
// server has: vitest sets NODE_ENV=test and TEST=true, and better-auth,
// reading them once when it loads (after this file), then skips its origin
// check. The app's configuration itself comes from loadConfig's explicit
// environment (see in-process.ts), not from here.
process.env.NODE_ENV = 'development';
delete process.env.TEST;

// The RLS check (rls-check.ts) records violations as they happen; each test
// fails for the ones it caused, and the file's hooks for theirs.
beforeEach(() => failOnRlsViolations('before this test (in a beforeAll hook)'));
afterEach(() => failOnRlsViolations('in this test'));
afterAll(() => failOnRlsViolations('in an afterAll hook'));
