// The load generator: a child process of bench/api.ts (forked with IPC) that
// runs autocannon against one server, so the load shares no event loop with
// the server under test or with the orchestrator. It receives one LoadJob,
// runs a warm-up (discarded), then the measured run, and sends a LoadResult.
//
// Every request is signed in as a random seeded user (their bearer token) and,
// for W2, carries freshly generated apiKey/secretKey values.
import { readFile } from 'node:fs/promises';
import autocannon from 'autocannon';
import { type WorkloadName, workloadBody } from '../test/support/workloads.ts';

export interface SeededBenchUser {
  token: string;
  userId: string;
  accountId: string;
}

export interface LoadJob {
  url: string;
  workload: WorkloadName;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** JSON file holding SeededBenchUser[]. */
  usersFile: string;
}

export interface LoadResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** non2xx + connection errors (timeouts included) + 2xx answers carrying GraphQL errors. */
  errors: number;
  requests: number;
  non2xx: number;
  connectionErrors: number;
  timeouts: number;
  graphqlErrors: number;
  /** Responses per HTTP status, to tell failures apart. */
  statusCodes: Record<string, number>;
}

async function fire(job: LoadJob, users: SeededBenchUser[], seconds: number): Promise<LoadResult> {
  let graphqlErrors = 0;
  const pick = () => users[Math.floor(Math.random() * users.length)] as SeededBenchUser;
  const result = await autocannon({
    url: job.url,
    connections: job.connections,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/graphql',
        setupRequest: (request) => {
          const user = pick();
          return {
            ...request,
            headers: {
              'content-type': 'application/json',
              accept: 'application/json',
              authorization: `Bearer ${user.token}`,
            },
            body: workloadBody(job.workload, user.accountId),
          };
        },
        // A 200 answer can still be a failed operation: GraphQL reports errors
        // in the body. A substring test is cheap enough not to slow the generator.
        onResponse: (status: number, body: string) => {
          if (status >= 200 && status < 300 && body.includes('"errors"')) graphqlErrors += 1;
        },
      },
    ],
  });
  const requests = result.requests.total;
  return {
    rps: requests / result.duration,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.non2xx + result.errors + graphqlErrors,
    requests,
    non2xx: result.non2xx,
    connectionErrors: result.errors,
    timeouts: result.timeouts,
    graphqlErrors,
    statusCodes: Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [
        code,
        Number((stats as { count: number }).count),
      ]),
    ),
  };
}

process.once('message', async (job: LoadJob) => {
  try {
    const users = JSON.parse(await readFile(job.usersFile, 'utf8')) as SeededBenchUser[];
    if (job.warmupSeconds > 0) await fire(job, users, job.warmupSeconds);
    const result = await fire(job, users, job.durationSeconds);
    process.send?.({ ok: true, result }, () => process.exit(0));
  } catch (error) {
    process.send?.({ ok: false, error: (error as Error).stack ?? String(error) }, () => process.exit(1));
  }
});
