// The measured runs: for each workload × connection count × round, every
// server that runs the workload in turn (interleaved, so a change in the
// machine's load hits them alike), each a warm-up plus a measured wrk run,
// with each process's CPU over the measured run (utime + stime from /proc)
// and, with --profile, a V8 CPU profile of each product over it.
import path from 'node:path';
import type pg from 'pg';
import { type LoadResult, runLoad, type SeededBenchUser, writeRequestsFile } from '../load-generator.ts';
import { backendPids, type CpuSnapshot, snapshot, used } from '../process-cpu.ts';
import { type ProfileSummary, summarise as summariseProfile, writeProfile } from '../profile.ts';
import { type BenchServer, ROOT } from './servers.ts';
import { checkEquivalent, userRequest, type WorkloadName } from './workloads.ts';

/** A measured run: wrk's figures and each process's CPU over it, ms per request. */
export interface Sample extends LoadResult {
  cpu: { server: number; postgres: number | null; load_generator: number };
}

export interface ProfileRecord {
  server: string;
  workload: WorkloadName;
  conns: number;
  round: number;
  file: string;
  summary: ProfileSummary;
}

export interface RunSettings {
  rounds: number;
  connections: number[];
  warmupSeconds: number;
  durationSeconds: number;
  workloads: WorkloadName[];
}

/** Samples by `${workload}/${conns}`, then by server name. */
export type Samples = Map<string, Map<string, Sample[]>>;

export async function measure(options: {
  wrk: string;
  settings: RunSettings;
  servers: BenchServer[];
  users: SeededBenchUser[];
  admin: pg.Client;
  dbName: string;
  workDir: string;
  profileDir?: string;
}): Promise<{ samples: Samples; profiles: ProfileRecord[] }> {
  const { settings, servers, users, admin, dbName } = options;
  const serversFor = (w: WorkloadName) => servers.filter((s) => s.workloads.includes(w));
  const requestsFiles = new Map<string, string>();
  const written = new Set<string>();
  for (const workload of settings.workloads) {
    for (const server of serversFor(workload)) {
      const file = path.join(options.workDir, `${workload}-${server.kind}.tsv`);
      if (!written.has(file)) {
        written.add(file);
        await writeRequestsFile(
          file,
          users.map((u) => userRequest(server.kind, workload, u, true)),
        );
      }
      requestsFiles.set(`${workload}/${server.name}`, file);
    }
  }

  const samples: Samples = new Map();
  const profiles: ProfileRecord[] = [];
  const total =
    settings.connections.length * settings.rounds * settings.workloads.reduce((n, w) => n + serversFor(w).length, 0);
  let done = 0;
  for (const workload of settings.workloads) {
    const targets = serversFor(workload);
    await checkEquivalent(workload, targets, users);
    for (const connections of settings.connections) {
      const byServer = new Map<string, Sample[]>();
      samples.set(`${workload}/${connections}`, byServer);
      for (let round = 1; round <= settings.rounds; round += 1) {
        for (const server of targets) {
          const proc = server.process;
          const serverPid = proc.child.pid as number;
          const logLines = proc.logs.length;
          let before: { server: CpuSnapshot; postgres: CpuSnapshot } | undefined;
          const result = await runLoad(
            options.wrk,
            {
              url: server.url,
              connections,
              warmupSeconds: settings.warmupSeconds,
              durationSeconds: settings.durationSeconds,
              requestsFile: requestsFiles.get(`${workload}/${server.name}`) as string,
            },
            async () => {
              before = { server: snapshot([serverPid]), postgres: snapshot(await backendPids(admin, dbName)) };
              await server.inspector?.start();
            },
          );
          const after = { server: snapshot([serverPid]), postgres: snapshot(await backendPids(admin, dbName)) };
          if (server.inspector && options.profileDir) {
            const profile = await server.inspector.stop();
            const file = path.join(
              options.profileDir,
              `${server.name}-${workload}-${connections}-round${round}.cpuprofile`,
            );
            await writeProfile(file, profile);
            profiles.push({
              server: server.name,
              workload,
              conns: connections,
              round,
              file: path.relative(ROOT, file),
              summary: summariseProfile(profile),
            });
          }
          const perReq = (ms: number) => (result.requests ? ms / result.requests : 0);
          const sample: Sample = {
            ...result,
            cpu: {
              server: Number(perReq(used(before?.server ?? new Map(), after.server)).toFixed(3)),
              postgres: after.postgres.size
                ? Number(perReq(used(before?.postgres ?? new Map(), after.postgres)).toFixed(3))
                : null,
              load_generator: Number(result.loadGeneratorCpuMsPerReq.toFixed(3)),
            },
          };
          byServer.set(server.name, [...(byServer.get(server.name) ?? []), sample]);
          if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
            throw new Error(`${server.name} died during ${workload}:\n${proc.logs.slice(-30).join('\n')}`);
          }
          done += 1;
          const logged = proc.logs.length - logLines;
          console.log(
            `  [${done}/${total}] ${workload} ${String(connections).padStart(3)} conns round ${round} ${server.name.padEnd(20)} ` +
              `${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50_ms} ms  p99 ${result.p99_ms} ms  ` +
              `cpu/req ${sample.cpu.server} ms (pg ${sample.cpu.postgres ?? '?'}, wrk ${sample.cpu.load_generator})  errors ${result.errors}` +
              (result.errors
                ? `  ${JSON.stringify({ non2xx: result.non2xx, socketErrors: result.socketErrors, timeouts: result.timeouts, graphqlErrors: result.graphqlErrors })}`
                : '') +
              (logged ? `  (${logged} log lines)` : ''),
          );
        }
      }
    }
  }
  return { samples, profiles };
}
