// `npm run bench -- --profile`: a V8 CPU profile of the product over each
// measured window only (not start-up, seeding or warm-up). The product runs
// with --inspect on a loopback port; the bench connects to that inspector over
// its WebSocket (Chrome DevTools Protocol, Profiler domain) and starts and
// stops the profiler around the measured run. Summaries give self time as a
// share of busy (non-idle) samples, grouped by package.
import { writeFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Inspector {
  start(): Promise<void>;
  stop(): Promise<CpuProfile>;
  close(): void;
}

export async function connectInspector(port: number): Promise<Inspector> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error('the product has no inspector target');
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot reach the inspector at ${url}`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  ws.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter || message.id === undefined) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  const call = <T>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call('Profiler.enable');
  // V8's default interval, as --cpu-prof uses.
  await call('Profiler.setSamplingInterval', { interval: 1000 });
  return {
    start: () => call('Profiler.start'),
    stop: async () => (await call<{ profile: CpuProfile }>('Profiler.stop')).profile,
    close: () => ws.close(),
  };
}

/** Where a frame's code lives: a package, a node: builtin, the product's folder, or V8's own entries. */
function groupOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : `native ${functionName}`;
  const pkg = /.*node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return 'node: builtins';
  const own = /\/(src|bench)\/(?:([^/]+)\/)?/.exec(url);
  if (own) return own[2] && !own[2].includes('.') ? `${own[1]}/${own[2]}` : (own[1] as string);
  return url;
}

export interface ProfileSummary {
  busyMs: number;
  idleShare: number;
  groups: { name: string; share: number }[];
  functions: { name: string; share: number }[];
}

export function summarise(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  let idle = 0;
  let total = 0;
  const groups = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    total += us;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const group = groupOf(frame);
    groups.set(group, (groups.get(group) ?? 0) + us);
    const where = frame.url
      ? ` ${frame.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${frame.lineNumber + 1}`
      : '';
    const fn = `${frame.functionName || '(anonymous)'}${where}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const busy = total - idle;
  const ranked = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, share: Number((us / busy).toFixed(4)) }));
  return {
    busyMs: Math.round(busy / 1000),
    idleShare: total ? Number((idle / total).toFixed(3)) : 0,
    groups: ranked(groups),
    functions: ranked(functions),
  };
}

export function formatSummary(title: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)} %`;
  return [
    `${title}: ${s.busyMs} ms busy, ${(s.idleShare * 100).toFixed(0)} % idle; self time as a share of busy`,
    '  by package:',
    ...s.groups.map((g) => `    ${pct(g.share)}  ${g.name}`),
    '  by function:',
    ...s.functions.map((f) => `    ${pct(f.share)}  ${f.name}`),
  ].join('\n');
}

export async function writeProfile(file: string, profile: CpuProfile): Promise<void> {
  await writeFile(file, JSON.stringify(profile));
}
