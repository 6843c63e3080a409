// What the sign-in throttle costs a correct sign-in: the median of N
// sequential sign-ins (one user, one client) against this checkout and,
// with --compare, another one (e.g. `git worktree add --detach
// /tmp/throttle-before main`, its node_modules linked and `npm run
// generate` run), rounds interleaved so both see the same machine load.
// Each round starts each server as users do (node src/main.ts) on a fresh
// test database: PostgreSQL with TEST_DATABASE_URL, else embedded PGlite.
//
//   node bench/sign-in.ts --compare /tmp/throttle-before --n 200 --rounds 3
import { parseArgs } from 'node:util';
import { rawSignIn, signUp } from '../test/support/client.ts';
import { dbKind } from '../test/support/databases.ts';
import { startServer } from '../test/support/server.ts';

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

const times = new Map<string, number[]>(checkouts.map((c) => [c.name, []]));
for (let round = 0; round < rounds; round += 1) {
  for (const checkout of round % 2 === 0 ? checkouts : [...checkouts].reverse()) {
    const server = await startServer({ cwd: checkout.cwd });
    try {
      const user = await signUp(server.url);
      for (let i = 0; i < 20; i += 1) await rawSignIn(server.url, user.email, user.password);
      const sample: number[] = [];
      for (let i = 0; i < n; i += 1) {
        const started = performance.now();
        const res = await rawSignIn(server.url, user.email, user.password);
        sample.push(performance.now() - started);
        if (res.status !== 200) throw new Error(`sign-in ${i} answered ${res.status}`);
      }
      times.get(checkout.name)?.push(...sample);
      console.info(`[${dbKind}] round ${round + 1}, ${checkout.name}: median ${median(sample).toFixed(2)} ms`);
    } finally {
      await server.close();
    }
  }
}
for (const [name, all] of times) {
  console.info(`[${dbKind}] ${name}: median of ${all.length} sequential sign-ins ${median(all).toFixed(2)} ms`);
}
