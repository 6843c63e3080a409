// What the sign-in throttle costs a correct sign-in: the median of N
// sequential sign-ins (one user, one client) against this checkout and,
// with --compare, another one (e.g. `git worktree add --detach
// /tmp/throttle-before main`, its node_modules linked and `npm run
// generate` run). Each round starts each server as users do (node
// src/main.ts) on a fresh test database: PostgreSQL with TEST_DATABASE_URL,
// else embedded PGlite.
//
//   node bench/sign-in.ts --compare /tmp/throttle-before --n 200 --rounds 3
import { parseArgs } from 'node:util';
import { rawSignIn, type Session, signUp } from '../test/support/client.ts';
import { dbKind } from '../test/support/databases.ts';
import { startServer, type TestServer } from '../test/support/server.ts';

const { values } = parseArgs({
  options: {
    compare: { type: 'string' },
    n: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
  },
});
const n = Number(values.n);
const rounds = Number(values.rounds);
const checkouts = [{ name: 'this checkout', cwd: undefined as string | undefined }];
if (values.compare) checkouts.push({ name: values.compare, cwd: values.compare });

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

// Both servers run side by side and take turns request by request (the
// order flipping each time), so load from anything else on the machine falls
// on both alike; each pair's difference is kept as well as each side.
const times = new Map<string, number[]>(checkouts.map((c) => [c.name, []]));
const differences: number[] = [];
for (let round = 0; round < rounds; round += 1) {
  const servers: { name: string; server: TestServer }[] = [];
  for (const checkout of checkouts) servers.push({ ...checkout, server: await startServer({ cwd: checkout.cwd }) });
  try {
    const users: Session[] = [];
    for (const { server } of servers) users.push(await signUp(server.url));
    const signIn = async (k: number) => {
      const { server } = servers[k] as { name: string; server: TestServer };
      const user = users[k] as Session;
      const started = performance.now();
      const res = await rawSignIn(server.url, user.email, user.password);
      const ms = performance.now() - started;
      if (res.status !== 200) throw new Error(`${servers[k]?.name}: sign-in answered ${res.status}`);
      return ms;
    };
    for (let i = 0; i < 20; i += 1) for (let k = 0; k < servers.length; k += 1) await signIn(k);
    for (let i = 0; i < n; i += 1) {
      const order = servers.map((_, k) => k);
      if (i % 2 === 1) order.reverse();
      const sample = new Map<number, number>();
      for (const k of order) sample.set(k, await signIn(k));
      for (const [k, ms] of sample) times.get((servers[k] as { name: string; server: TestServer }).name)?.push(ms);
      if (servers.length === 2) differences.push((sample.get(0) as number) - (sample.get(1) as number));
    }
    console.info(`[${dbKind}] round ${round + 1} done`);
  } finally {
    for (const { server } of servers) await server.close();
  }
}
for (const [name, all] of times) {
  console.info(`[${dbKind}] ${name}: median of ${all.length} sequential sign-ins ${median(all).toFixed(2)} ms`);
}
if (differences.length > 0) {
  console.info(
    `[${dbKind}] median of the ${differences.length} paired differences (this checkout minus the other): ` +
      `${median(differences).toFixed(2)} ms`,
  );
}
