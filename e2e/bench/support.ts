// What the benchmark scripts share: starting a controller process, counting the API server's
// requests, reading a process's memory, and watching objects until a condition holds (no polling:
// the time a wait reports is when the status turned).
import { type KubeConfig, Watch } from '@kubernetes/client-node';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LocalCluster } from '../cluster/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/net.ts';

const exec = promisify(execFile);

/** How long one wait may take before the run fails (BENCH_TIMEOUT, seconds). */
export const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 3600) * 1000;

/** A line on stderr with the time, to follow a long run (the figures go to stdout). */
export function progress(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

/** Runs `fn` over 0..n-1 in batches of `size` concurrent calls. */
export async function batched(n: number, fn: (i: number) => Promise<unknown>, size = 50): Promise<void> {
  for (let i = 0; i < n; i += size) {
    await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, j) => fn(i + j)));
  }
}

export async function kubectl(cluster: LocalCluster, args: string[]): Promise<string> {
  const { stdout } = await exec(join(cluster.binDir, 'kubectl'), ['--kubeconfig', cluster.kubeconfigPath, ...args], {
    maxBuffer: 1 << 28,
  });
  return stdout;
}

// ---- API requests ---------------------------------------------------------------------------

/**
 * The API server's own request count (apiserver_request_total) by "VERB resource[/subresource]",
 * without the control plane's background traffic (leases, nodes, pods, replicasets, endpoints).
 * GET /metrics itself is not counted; a WATCH is counted when it ends.
 */
export async function apiRequestsBy(cluster: LocalCluster): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  for (const line of (await kubectl(cluster, ['get', '--raw', '/metrics'])).split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    if (
      /resource="(leases|nodes|pods|replicasets|endpointslices|endpoints)"/.test(line) &&
      !line.includes('verb="APPLY"')
    )
      continue;
    const label = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(line)?.[1] ?? '';
    const key = `${label('verb')} ${label('resource')}${label('subresource') ? `/${label('subresource')}` : ''}`;
    by.set(key, (by.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return by;
}

export function sum(by: Map<string, number>): number {
  let total = 0;
  for (const count of by.values()) total += count;
  return total;
}

/** The total of apiRequestsBy. */
export async function apiRequests(cluster: LocalCluster): Promise<number> {
  return sum(await apiRequestsBy(cluster));
}

/** What a phase asked the API server, by verb and resource (for BENCH_BREAKDOWN=1). */
export function breakdown(before: Map<string, number>, after: Map<string, number>): string {
  const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, d]) => d !== 0);
  return rows
    .sort((a, b) => b[1] - a[1])
    .map(([k, d]) => `    ${String(d).padStart(7)}  ${k}`)
    .join('\n');
}

/** apiRequestsBy without the benchmark's own requests, which it notes with mine() as it makes them. */
export class Requests {
  private readonly own = new Map<string, number>();
  private readonly cluster: LocalCluster;
  constructor(cluster: LocalCluster) {
    this.cluster = cluster;
  }
  mine(key: string, count = 1): void {
    this.own.set(key, (this.own.get(key) ?? 0) + count);
  }
  async by(): Promise<Map<string, number>> {
    const by = await apiRequestsBy(this.cluster);
    for (const [key, count] of this.own) by.set(key, (by.get(key) ?? 0) - count);
    return by;
  }
}

// ---- memory ---------------------------------------------------------------------------------

/** A field of /proc/<pid>/status in MiB, 0 when the process is gone. */
export function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The children of a process (tide-helm for tide-controller), from /proc/<pid>/task/<tid>/children. */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(' ').map(Number));
    }
  } catch {
    // the process or one of its threads is gone
  }
  return pids;
}

// ---- processes ------------------------------------------------------------------------------

export interface Proc {
  name: string;
  pid: number;
  /** Its last log lines (the whole log goes to BENCH_LOG when set). */
  tail(): string;
  /** Calls `fn` with each line it logs from now on, until the function returned is called. */
  listen(fn: (line: string) => void): () => void;
  exited(): boolean;
  /** SIGTERM, SIGKILL after 10 s (helm-controller's graceful shutdown may wait minutes), then cleanup. */
  stop(): Promise<void>;
}

export interface ProcOptions {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** The health port whose /readyz must answer 200 before it counts as started; none: no wait. */
  health?: number;
  /** Runs after it stopped (temporary directories). */
  cleanup?: () => void;
}

export async function startProc(o: ProcOptions): Promise<Proc> {
  const child: ChildProcess = spawn(o.command, o.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...o.env },
  });
  const log = process.env.BENCH_LOG ? createWriteStream(process.env.BENCH_LOG, { flags: 'a' }) : undefined;
  let lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    if (log) stream.pipe(log, { end: false });
    let partial = '';
    stream.on('data', (d: Buffer) => {
      const complete = (partial + d.toString()).split('\n');
      partial = complete.pop()!;
      lines = [...lines, ...complete.filter(Boolean)].slice(-20);
      for (const line of complete) for (const fn of listeners) fn(line);
    });
  }
  const exitedP = once(child, 'exit');
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const proc: Proc = {
    name: o.name,
    pid: child.pid!,
    tail: () => lines.join('\n'),
    listen: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    exited,
    stop: async () => {
      if (!exited()) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exitedP;
        clearTimeout(killer);
      }
      o.cleanup?.();
    },
  };
  if (o.health === undefined) return proc;
  await eventually(
    async () => {
      if (exited()) throw new Error(`${o.name} exited with ${child.exitCode}`);
      const res = await fetch(`http://127.0.0.1:${o.health}/readyz`);
      if (res.status !== 200) throw new Error(`readyz ${res.status}`);
    },
    { timeoutMs: 60_000, intervalMs: 100, message: `${o.name} did not become ready` },
  ).catch(async (err: unknown) => {
    await proc.stop();
    throw new Error(`${(err as Error).message}:\n${proc.tail()}`);
  });
  return proc;
}

export interface Tide extends Proc {
  /** Its Prometheus endpoint, when started with metrics. */
  metricsUrl?: string;
}

/**
 * tide-controller with default flags but --concurrent=10, the tools of the local control plane and
 * its storage in fresh directories; BENCH_LOG_LEVEL sets its log level (default error).
 */
export async function startTide(
  cluster: LocalCluster,
  o: { controllers: string; flags?: string[]; metrics?: boolean; waitReady?: boolean },
): Promise<Tide> {
  const [health, storage, metrics] = [await freePort(), await freePort(), await freePort()];
  const storagePath = mkdtempSync(join(tmpdir(), 'tide-bench-storage-'));
  const imagePath = mkdtempSync(join(tmpdir(), 'tide-bench-tags-'));
  const proc = await startProc({
    name: 'tide-controller',
    command: process.execPath,
    args: [
      join(import.meta.dirname, '..', '..', 'controllers', 'main.ts'),
      `--kubeconfig=${cluster.kubeconfigPath}`,
      `--controllers=${o.controllers}`,
      o.metrics ? `--metrics-addr=127.0.0.1:${metrics}` : '--metrics-addr=0',
      `--health-addr=127.0.0.1:${health}`,
      `--storage-addr=127.0.0.1:${storage}`,
      `--storage-adv-addr=127.0.0.1:${storage}`,
      `--storage-path=${storagePath}`,
      `--image-storage-path=${imagePath}`,
      `--kustomize-path=${join(cluster.binDir, 'kustomize')}`,
      `--sops-path=${join(cluster.binDir, 'sops')}`,
      `--helm-helper-path=${join(cluster.binDir, 'tide-helm')}`,
      '--concurrent=10',
      `--log-level=${process.env.BENCH_LOG_LEVEL ?? 'error'}`,
      ...(o.flags ?? []),
    ],
    health: o.waitReady === false ? undefined : health,
    cleanup: () => {
      rmSync(storagePath, { recursive: true, force: true });
      rmSync(imagePath, { recursive: true, force: true });
    },
  });
  return o.metrics ? { ...proc, metricsUrl: `http://127.0.0.1:${metrics}/metrics` } : proc;
}

// ---- waiting on objects ---------------------------------------------------------------------

export type Condition = {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
};
export type Watched = { metadata: { name: string; generation?: number }; status?: { conditions?: Condition[] } };

/** Ready=True for the object's current generation. */
export function readyNow(o: Watched): boolean {
  return !!o.status?.conditions?.some(
    (c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === o.metadata.generation,
  );
}

export interface Waiting<T> {
  /** Resolves once every name has been seen: the watch's first events, the objects as they are. */
  synced: Promise<void>;
  /** Resolves when `done` held for every name: for each, the object then and performance.now(). */
  done: Promise<Map<string, { obj: T; at: number }>>;
  /** Ends the watch (done does too). */
  close(): void;
  /** How many watch requests it opened so far (it opens another when one ends early). */
  watches(): number;
}

export interface WatchOptions<T> {
  kc: KubeConfig;
  /** A collection, e.g. /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations. */
  path: string;
  names: readonly string[];
  /** True when the object is where it should be; throws for a failure to report. */
  done: (o: T) => boolean;
  query?: { fieldSelector?: string; labelSelector?: string };
  /** The processes under test (read each second: they may start after the wait): it fails when one exits. */
  procs?: () => readonly Proc[];
  /** Called as each watch request ends (the API server counts it then). */
  watchEnded?: () => void;
}

/**
 * One watch of a collection until `done` holds for each of `names`. A watch ends after 30 s without
 * an event (the client's inactivity timeout) or when the API server ends it: it is opened again, and
 * starts again with the objects as they are. Fails after TIMEOUT_MS, or when a process exits.
 */
export function watchUntil<T extends Watched>(o: WatchOptions<T>): Waiting<T> {
  const pending = new Set(o.names);
  const unseen = new Set(o.names);
  const reached = new Map<string, { obj: T; at: number }>();
  const synced = Promise.withResolvers<void>();
  const all = Promise.withResolvers<Map<string, { obj: T; at: number }>>();
  // Either may fail before it is awaited.
  synced.promise.catch(() => {});
  all.promise.catch(() => {});
  let request: AbortController | undefined;
  let closed = false;
  let watches = 0;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    clearInterval(exitCheck);
    request?.abort();
  };
  const fail = (err: Error) => {
    close();
    synced.reject(err);
    all.reject(err);
  };
  const what = () => {
    const resource = o.path.slice(o.path.lastIndexOf('/') + 1);
    return o.names.length === 1 ? `${resource}/${o.names[0]}` : `${pending.size}/${o.names.length} ${resource}`;
  };
  const timer = setTimeout(() => fail(new Error(`${what()} not done after ${TIMEOUT_MS / 1000}s`)), TIMEOUT_MS);
  const exitCheck = setInterval(() => {
    const gone = o.procs?.().find((p) => p.exited());
    if (gone) fail(new Error(`${gone.name} exited:\n${gone.tail()}`));
  }, 1000);
  const open = () => {
    watches++;
    new Watch(o.kc)
      .watch(
        o.path,
        o.query ?? {},
        (type: string, obj: T) => {
          const name = obj.metadata?.name;
          if (unseen.delete(name) && unseen.size === 0) synced.resolve();
          if (closed || type === 'DELETED' || !pending.has(name)) return;
          try {
            if (!o.done(obj)) return;
          } catch (err) {
            fail(err as Error);
            return;
          }
          pending.delete(name);
          reached.set(name, { obj, at: performance.now() });
          if (pending.size > 0) return;
          close();
          all.resolve(reached);
        },
        (err: unknown) => {
          o.watchEnded?.();
          if (closed) return;
          if (!err || (err as Error).name === 'TimeoutError') open();
          else fail(err as Error);
        },
      )
      .then((r) => {
        request = r;
        if (closed) r.abort();
      }, fail);
  };
  open();
  return { synced: synced.promise, done: all.promise, close, watches: () => watches };
}
