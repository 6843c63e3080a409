// The "other users keep being answered" load of the isolation tests (a broker
// hanging must not take the pool from anyone else) and of bench/engine-proxy.ts:
// rounds of reads and writes by other signed-in users, all at once.
import { gql, type Session } from './client.ts';

/**
 * `rounds` rounds in which each of `others` sends one request (even ones read
 * their accounts, odd ones getOrCreateAccount), all at once; the latencies
 * in ms, sorted. A GraphQL error stops it with the errors.
 */
export async function otherUsersLoad(url: string, others: { session: Session }[], rounds = 6): Promise<number[]> {
  const latencies: number[] = [];
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      others.map(async (who, i) => {
        const started = performance.now();
        const res =
          i % 2 === 0
            ? await gql(url, '{ accounts { id credentials { id } } }', undefined, who.session)
            : await gql(url, 'mutation { getOrCreateAccount { created } }', undefined, who.session);
        if (res.body.errors) throw new Error(`another user's request failed: ${JSON.stringify(res.body.errors)}`);
        latencies.push(performance.now() - started);
      }),
    );
  }
  return latencies.sort((a, b) => a - b);
}

/** The median of sorted latencies. */
export const median = (sorted: number[]) => sorted[Math.floor(sorted.length / 2)] as number;
