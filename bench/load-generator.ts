// The load generator of `npm run bench`: wrk (C, one thread) with
// bench/load.lua, so that generating the load costs far less CPU than serving
// it (autocannon, in Node, cost about as much per request as the raw
// baseline server and compressed every ratio). Each run is a warm-up
// (discarded) and then the measured run, two separate wrk processes; the
// caller samples the servers' CPU around the measured one (onMeasuredStart).
import { execFileSync, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

export interface SeededBenchUser {
  token: string;
  userId: string;
  accountId: string;
}

/** One line of the requests file bench/load.lua reads: a user's auth header and body. */
export interface UserRequest {
  header: string;
  value: string;
  body: string;
}

export interface LoadJob {
  url: string;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Written by writeRequestsFile. */
  requestsFile: string;
}

export interface LoadResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Non-2xx answers, socket errors (timeouts included) and 2xx answers carrying GraphQL errors. */
  errors: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  timeouts: number;
  graphqlErrors: number;
  /** wrk's own CPU over the measured run, ms per request. */
  loadGeneratorCpuMsPerReq: number;
}

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** wrk from the distribution: installed with apt-get when missing (as root), else a clear error. */
export function ensureWrk(): string {
  const find = () => {
    try {
      return execFileSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  let wrk = find();
  if (wrk) return wrk;
  if (process.getuid?.() !== 0) {
    throw new Error('the bench needs wrk: install it (Debian/Ubuntu: sudo apt-get install -y wrk) and run it again');
  }
  console.log('wrk is missing: apt-get install -y wrk');
  execFileSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' });
  wrk = find();
  if (!wrk) throw new Error('apt-get did not install wrk');
  return wrk;
}

export async function writeRequestsFile(file: string, requests: UserRequest[]): Promise<void> {
  for (const r of requests) {
    if (/[\t\n]/.test(`${r.header}${r.value}${r.body}`)) throw new Error('a request line holds a tab or newline');
  }
  await writeFile(file, `${requests.map((r) => `${r.header}\t${r.value}\t${r.body}`).join('\n')}\n`);
}

interface WrkOutput {
  requests: number;
  duration_us: number;
  p50_us: number;
  p99_us: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  graphqlErrors: number;
  cpu_ticks: number;
}

async function wrk(binary: string, job: LoadJob, seconds: number, onStart?: () => Promise<void>): Promise<WrkOutput> {
  await onStart?.();
  return new Promise((resolve, reject) => {
    const args = [
      '-t1',
      `-c${job.connections}`,
      `-d${seconds}s`,
      '--timeout',
      '10s',
      '-s',
      new URL('load.lua', import.meta.url).pathname,
      job.url,
      '--',
      job.requestsFile,
      String(Math.floor(Math.random() * 2 ** 31)),
    ];
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = /BENCH_RESULT (\{.*\})/.exec(out)?.[1];
      if (code !== 0 || !line) return reject(new Error(`wrk exited with ${code}:\n${out}\n${err}`));
      resolve(JSON.parse(line) as WrkOutput);
    });
  });
}

/** Warm-up, then the measured run; `onMeasuredStart` runs just before the measured wrk starts. */
export async function runLoad(binary: string, job: LoadJob, onMeasuredStart: () => Promise<void>): Promise<LoadResult> {
  if (job.warmupSeconds > 0) await wrk(binary, job, job.warmupSeconds);
  const r = await wrk(binary, job, job.durationSeconds, onMeasuredStart);
  const socketErrors = r.connect + r.read + r.write + r.timeout;
  return {
    rps: r.requests / (r.duration_us / 1e6),
    p50_ms: Number((r.p50_us / 1000).toFixed(1)),
    p99_ms: Number((r.p99_us / 1000).toFixed(1)),
    errors: r.status + socketErrors + r.graphqlErrors,
    requests: r.requests,
    non2xx: r.status,
    socketErrors,
    timeouts: r.timeout,
    graphqlErrors: r.graphqlErrors,
    loadGeneratorCpuMsPerReq: r.requests ? (r.cpu_ticks * 1000) / CLOCK_TICKS_PER_SECOND / r.requests : 0,
  };
}
