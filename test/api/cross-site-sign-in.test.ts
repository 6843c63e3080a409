// A cross-site sign-in attempt is CSRF protection doing its job: refused with
// 403 and logged as a warning, never at error level (error is for faults of
// the server; an operator alerting on it must not be paged by any web page).
import { describe, expect, it } from 'vitest';
import { betterAuthLogLevel } from '../../src/auth/auth.ts';
import { signUp } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { useInProcessServer } from '../support/in-process.ts';

const levelOf = (line: string) => (JSON.parse(line) as { level: number | string }).level;

describe(`a cross-site sign-in attempt (${dbKind})`, () => {
  const server = useInProcessServer();

  it('is refused with 403 and logged as a warning, not an error', async () => {
    const user = await signUp(server.url, { name: 'Target' });
    const before = server.logs.length;
    const res = await fetch(`${server.url}/api/auth/sign-in/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example', cookie: user.cookie },
      body: JSON.stringify({ email: user.email, password: user.password }),
    });
    expect(res.status).toBe(403);
    const lines = server.logs.slice(before).filter((l) => l.includes('"better-auth"'));
    const refusal = lines.find((l) => l.includes('https://evil.example'));
    expect(refusal, lines.join('\n')).toBeDefined();
    expect([40, 'warn']).toContain(levelOf(refusal as string));
    expect(lines.filter((l) => [50, 'error'].includes(levelOf(l)))).toEqual([]);
  });
});

describe('betterAuthLogLevel', () => {
  it('lowers better-auth’s refusals of a client to warn and keeps every other level', () => {
    expect(betterAuthLogLevel('error', 'Invalid origin: https://evil.example')).toBe('warn');
    expect(betterAuthLogLevel('error', 'Invalid callbackURL: https://evil.example/x')).toBe('warn');
    expect(betterAuthLogLevel('error', 'Blocked cross-site navigation login attempt (CSRF protection)')).toBe('warn');
    expect(betterAuthLogLevel('error', 'Failed to create user')).toBe('error');
    expect(betterAuthLogLevel('info', 'Invalid origin: x')).toBe('info');
  });
});
