// The bench's report: medians of the rounds per workload × connections ×
// server, the ratios (to the baseline, to PostGraphile, and for a product
// variant to its checkout's plain product: `vs off`), a table on stdout and
// everything in bench/results/latest.json.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatSummary } from '../profile.ts';
import type { ProfileRecord, Sample, Samples } from './runner.ts';
import type { BenchServer } from './servers.ts';
import { DESCRIPTIONS, WORKLOAD_ORDER, type WorkloadName } from './workloads.ts';

export interface Summary {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Summed over all rounds (any error matters), unlike the medians. */
  errors: number;
  /** The server process's CPU (utime + stime) per request, median of the rounds. */
  cpu_ms_per_req: number;
  /** The same for each process taking part; postgres: the bench database's backends. */
  cpu_ms_per_req_by_process: { server: number; postgres: number | null; load_generator: number };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

function summarise(results: Sample[]): Summary {
  const m = (f: (s: Sample) => number) => Number(median(results.map(f)).toFixed(3));
  const pgKnown = results.every((r) => r.cpu.postgres !== null);
  return {
    rps: Math.round(median(results.map((r) => r.rps))),
    p50_ms: Number(median(results.map((r) => r.p50_ms)).toFixed(1)),
    p99_ms: Number(median(results.map((r) => r.p99_ms)).toFixed(1)),
    errors: results.reduce((n, r) => n + r.errors, 0),
    cpu_ms_per_req: m((r) => r.cpu.server),
    cpu_ms_per_req_by_process: {
      server: m((r) => r.cpu.server),
      postgres: pgKnown ? m((r) => r.cpu.postgres ?? 0) : null,
      load_generator: m((r) => r.cpu.load_generator),
    },
  };
}

const ratio = (a: number, b: number | undefined) => (b ? Number((a / b).toFixed(2)) : undefined);

/**
 * The median of the rounds' own ratios: round i of a variant over round i of
 * its `off`, measured seconds apart. On a machine whose load moves from one
 * minute to the next, this pairs each sample with its nearest neighbour
 * instead of dividing medians taken over the whole run.
 */
function pairedRatio(a: Sample[], b: Sample[], value: (s: Sample) => number): number | undefined {
  const ratios = a.flatMap((s, i) => {
    const other = b[i];
    return other && value(other) ? [value(s) / value(other)] : [];
  });
  return ratios.length ? Number(median(ratios).toFixed(2)) : undefined;
}

export interface Row extends Summary {
  server: string;
  vs_baseline?: number;
  vs_postgraphile?: number;
  /** A product variant's req/s over its checkout's plain product's: the median of the rounds' ratios (pairedRatio). */
  vs_off?: number;
  /** The same for Node CPU per request (above 1: costs more). */
  cpu_vs_off?: number;
  /** p99 over the baseline's. */
  p99_vs_baseline?: number;
}

export interface Cell {
  workload: WorkloadName;
  conns: number;
  rows: Row[];
  rounds: Record<string, Sample[]>;
}

export function cells(samples: Samples, servers: BenchServer[]): Cell[] {
  return [...samples.entries()]
    .map(([key, byServer]) => {
      const [workload, conns] = key.split('/') as [WorkloadName, string];
      const summaries = new Map([...byServer].map(([name, s]) => [name, summarise(s)]));
      const baseline = summaries.get('baseline');
      const postgraphile = summaries.get('postgraphile');
      const rows = servers
        .filter((s) => summaries.has(s.name))
        .map((server): Row => {
          const s = summaries.get(server.name) as Summary;
          const off = server.off && server.off !== server.name ? byServer.get(server.off) : undefined;
          const own = byServer.get(server.name) as Sample[];
          const product = server.kind === 'product';
          return {
            server: server.name,
            ...s,
            ...(product
              ? { vs_baseline: ratio(s.rps, baseline?.rps), p99_vs_baseline: ratio(s.p99_ms, baseline?.p99_ms) }
              : {}),
            ...(product && postgraphile ? { vs_postgraphile: ratio(s.rps, postgraphile.rps) } : {}),
            ...(off
              ? {
                  vs_off: pairedRatio(own, off, (r) => r.rps),
                  cpu_vs_off: pairedRatio(own, off, (r) => r.cpu.server),
                }
              : {}),
          };
        });
      return { workload, conns: Number(conns), rows, rounds: Object.fromEntries(byServer) };
    })
    .sort((a, b) => WORKLOAD_ORDER.indexOf(a.workload) - WORKLOAD_ORDER.indexOf(b.workload) || a.conns - b.conns);
}

export function printTable(all: Cell[]): void {
  const headers = [
    'workload',
    'conns',
    'server',
    'req/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'node cpu',
    'pg cpu',
    'wrk cpu',
    'vs base',
    'vs pgraph',
    'vs off',
    'cpu vs off',
  ];
  const widths = [31, 5, 20, 7, 7, 7, 7, 9, 8, 8, 8, 9, 7, 10];
  const line = (cellsOfRow: string[]) =>
    cellsOfRow.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' ');
  const fixed = (x: number | undefined) => (x === undefined ? '' : x.toFixed(2));
  console.log(line(headers));
  for (const cell of all) {
    for (const [i, r] of cell.rows.entries()) {
      console.log(
        line([
          i ? '' : `${cell.workload} ${DESCRIPTIONS[cell.workload]}`,
          i ? '' : String(cell.conns),
          r.server,
          String(r.rps),
          r.p50_ms.toFixed(1),
          r.p99_ms.toFixed(1),
          String(r.errors),
          r.cpu_ms_per_req.toFixed(2),
          r.cpu_ms_per_req_by_process.postgres?.toFixed(2) ?? '?',
          r.cpu_ms_per_req_by_process.load_generator.toFixed(2),
          fixed(r.vs_baseline),
          fixed(r.vs_postgraphile),
          fixed(r.vs_off),
          fixed(r.cpu_vs_off),
        ]),
      );
    }
  }
}

export function printProfiles(profiles: ProfileRecord[]): void {
  for (const p of profiles) {
    console.log(
      `\n${formatSummary(`profile of ${p.server}, ${p.workload} ${p.conns} conns round ${p.round} (${p.file})`, p.summary)}`,
    );
  }
}

export async function writeResults(output: Record<string, unknown>): Promise<string> {
  const dir = path.join(import.meta.dirname, '..', 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'latest.json');
  await writeFile(file, `${JSON.stringify(output, null, 2)}\n`);
  return file;
}
