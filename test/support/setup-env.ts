// Runs before every test file (vitest setupFiles). The app under test in the
// test process must meet the environment a spawned server has: vitest sets
// NODE_ENV=test and TEST=true, and better-auth, reading them once when it
// loads, then skips its origin check. The app's configuration itself comes
// from loadConfig's explicit environment (see in-process.ts), not from here.
process.env.NODE_ENV = 'development';
delete process.env.TEST;
