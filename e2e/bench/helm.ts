// Benchmark of the HelmRelease controller (make bench-helm), side by side with Flux's helm-controller.
// For N in BENCH_SIZES (default 100,500): N HelmReleases of one small chart (a ServiceAccount, a
// Service and a Deployment) from one HelmRepository served by a chart repository made with the Helm
// CLI (e2e/support/chartrepo.ts); every HelmRelease in the namespace `bench` installs into its own
// target namespace with the default wait (kwok makes the Deployments available). Each controller
// (BENCH_CONTROLLERS, default tide,flux) runs on a fresh local cluster:
//   - tide: `tide-controller --controllers=helm --concurrent=10` (Helm actions run in its child
//     tide-helm), next to `tide-controller --controllers=source` serving the HelmCharts;
//   - flux: Flux's helm-controller (built from its Go module by e2e/bench/flux/build.sh) with
//     `--concurrent=10`, next to `tide-controller --controllers=source` serving the HelmCharts.
// Printed per run: the time from creating the HelmReleases until all are Ready for their generation
// (one watch), the peak of the summed RSS of the HelmRelease controller and its children (VmRSS
// sampled every 200 ms), the API requests made meanwhile (the API server's own count, without the
// control plane's background traffic and this benchmark's requests), and a no-op resync: every
// HelmRelease asked to reconcile (reconcile.fluxcd.io/requestedAt) until all handled it.
// BENCH_LOG=<file> BENCH_LOG_LEVEL=debug keeps the controllers' logs for a look; BENCH_BREAKDOWN=1
// prints the requests of each phase by verb and resource.
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster, resolveBinDir } from '../cluster/cluster.ts';
import { type ChartRepo, startChartRepo } from '../support/chartrepo.ts';
import { setTestCluster } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/net.ts';

const exec = promisify(execFile);
const SIZES = (process.env.BENCH_SIZES ?? '100,500')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const CONTROLLERS = (process.env.BENCH_CONTROLLERS ?? 'tide,flux').split(',').filter(Boolean);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 900) * 1000;
const NS = 'bench';
const HELM = 'helm.toolkit.fluxcd.io';
const SOURCE = 'source.toolkit.fluxcd.io';
const root = join(import.meta.dirname, '..', '..');

const CHART = {
  name: 'app',
  version: '1.0.0',
  values: { image: 'registry.example/app:1.0.0', replicas: 1 },
  templates: {
    'serviceaccount.yaml': `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
`,
    'service.yaml': `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
    - port: 80
`,
    'deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
        - name: app
          image: {{ .Values.image }}
`,
  },
};

/** The total of a count by verb and resource. */
function sum(by: Map<string, number>): number {
  let total = 0;
  for (const count of by.values()) total += count;
  return total;
}

/** The same count, by "VERB resource[/subresource]". */
async function requestsBy(cluster: LocalCluster): Promise<Map<string, number>> {
  const { stdout } = await exec(
    join(cluster.binDir, 'kubectl'),
    ['--kubeconfig', cluster.kubeconfigPath, 'get', '--raw', '/metrics'],
    { maxBuffer: 1 << 28 },
  );
  const by = new Map<string, number>();
  for (const line of stdout.split('\n')) {
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

/** BENCH_BREAKDOWN=1: what a phase asked the API server, by verb and resource. */
function breakdown(before: Map<string, number>, after: Map<string, number>): string {
  const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, d]) => d > 0);
  return rows
    .sort((a, b) => b[1] - a[1])
    .map(([k, d]) => `    ${String(d).padStart(7)}  ${k}`)
    .join('\n');
}

/** A field of /proc/<pid>/status in MiB, 0 when the process is gone. */
function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The children of a process (tide-helm for tide-controller), from /proc/<pid>/task/<tid>/children. */
function childPids(pid: number): number[] {
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

/**
 * Samples VmRSS of a process and its children every 200 ms; keeps the peak of the sum, and the
 * peaks of each part.
 */
class RssSampler {
  peakSum = 0;
  peakMain = 0;
  peakChildren = 0;
  readonly pid: number;
  readonly #timer: NodeJS.Timeout;
  constructor(pid: number) {
    this.pid = pid;
    this.sample();
    this.#timer = setInterval(() => this.sample(), 200);
  }
  sample(): void {
    const main = statusMiB(this.pid, 'VmRSS');
    const children = childPids(this.pid).reduce((sum, p) => sum + statusMiB(p, 'VmRSS'), 0);
    this.peakMain = Math.max(this.peakMain, main);
    this.peakChildren = Math.max(this.peakChildren, children);
    this.peakSum = Math.max(this.peakSum, main + children);
  }
  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}

interface Proc {
  name: string;
  pid: number;
  /** The last lines it logged (the log goes to BENCH_LOG when set, else only here). */
  tail(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/** Spawns a controller and waits until its /readyz on 127.0.0.1:`health` answers 200. */
async function startProc(
  name: string,
  command: string,
  args: string[],
  health: number,
  env: Record<string, string> = {},
): Promise<Proc> {
  const child: ChildProcess = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const log = process.env.BENCH_LOG ? createWriteStream(process.env.BENCH_LOG, { flags: 'a' }) : undefined;
  let lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    if (log) stream.pipe(log, { end: false });
    stream.on('data', (d: Buffer) => {
      lines = [...lines, ...d.toString().split('\n').filter(Boolean)].slice(-20);
    });
  }
  const tail = () => lines.join('\n');
  const exitedP = once(child, 'exit');
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  // SIGTERM, then SIGKILL after 10 s: helm-controller's graceful shutdown may wait up to 10 minutes.
  const stop = async () => {
    if (exited()) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exitedP;
    clearTimeout(killer);
  };
  await eventually(
    async () => {
      if (exited()) throw new Error(`${name} exited with ${child.exitCode}`);
      const res = await fetch(`http://127.0.0.1:${health}/readyz`);
      if (res.status !== 200) throw new Error(`readyz ${res.status}`);
    },
    { timeoutMs: 60_000, intervalMs: 100, message: `${name} did not become ready` },
  ).catch(async (err: unknown) => {
    await stop();
    throw new Error(`${(err as Error).message}:\n${tail()}`);
  });
  return { name, pid: child.pid!, tail, exited, stop };
}

/** tide-controller with the flags of e2e/support/controller.ts. */
async function startTide(cluster: LocalCluster, controllers: string, storagePath: string): Promise<Proc> {
  const [health, storage] = [await freePort(), await freePort()];
  return startProc(
    'tide-controller',
    process.execPath,
    [
      join(root, 'controllers', 'main.ts'),
      `--kubeconfig=${cluster.kubeconfigPath}`,
      `--controllers=${controllers}`,
      '--metrics-addr=0',
      `--health-addr=127.0.0.1:${health}`,
      `--storage-addr=127.0.0.1:${storage}`,
      `--storage-adv-addr=127.0.0.1:${storage}`,
      `--storage-path=${storagePath}`,
      `--helm-helper-path=${join(cluster.binDir, 'tide-helm')}`,
      '--concurrent=10',
      `--log-level=${process.env.BENCH_LOG_LEVEL ?? 'error'}`,
    ],
    health,
  );
}

/**
 * Flux's helm-controller, watching every namespace, with the same concurrency. It reads its
 * kubeconfig from $KUBECONFIG: its flags (pflag) leave out controller-runtime's --kubeconfig.
 */
async function startFlux(cluster: LocalCluster, binary: string): Promise<Proc> {
  const [health, metrics] = [await freePort(), await freePort()];
  return startProc(
    'helm-controller',
    binary,
    [
      '--watch-all-namespaces',
      `--metrics-addr=127.0.0.1:${metrics}`,
      `--health-addr=127.0.0.1:${health}`,
      '--concurrent=10',
      `--log-level=${process.env.BENCH_LOG_LEVEL ?? 'error'}`,
    ],
    health,
    { KUBECONFIG: cluster.kubeconfigPath },
  );
}

type Watched = {
  metadata: { name: string; generation: number };
  status?: {
    conditions?: { type: string; status: string; observedGeneration?: number }[];
    lastHandledReconcileAt?: string;
  };
};

/**
 * Watches the HelmReleases (or `plural` of `group`) in `bench` until `want` of them satisfy `done`;
 * returns the milliseconds since `t` and how many watch requests it made. No polling: the time is
 * when the last one turned. A watch the server closes, or that client-node drops after 30 s without
 * an event, is opened again (it starts with every object as ADDED).
 */
function waitAll(
  cluster: LocalCluster,
  what: { group: string; version: string; plural: string },
  want: number,
  done: (o: Watched) => boolean,
  procs: Proc[],
  t: number,
): Promise<{ ms: number; watches: number }> {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  let watches = 0;
  return new Promise((resolve, reject) => {
    let request: { abort(): void } | undefined;
    let finished = false;
    const finish = (err?: Error, ms?: number) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearInterval(exitCheck);
      request?.abort();
      if (err) reject(err);
      else resolve({ ms: ms!, watches });
    };
    let ok = new Set<string>();
    const timer = setTimeout(
      () => finish(new Error(`${ok.size} of ${want} ${what.plural} done after ${TIMEOUT_MS / 1000}s`)),
      TIMEOUT_MS,
    );
    const exitCheck = setInterval(() => {
      const gone = procs.find((p) => p.exited());
      if (gone) finish(new Error(`${gone.name} exited:\n${gone.tail()}`));
    }, 1000);
    const open = () => {
      if (finished) return;
      watches++;
      ok = new Set<string>();
      new Watch(kc)
        .watch(
          `/apis/${what.group}/${what.version}/namespaces/${NS}/${what.plural}`,
          {},
          (type: string, o: Watched) => {
            if (type === 'ERROR') return;
            if (type !== 'DELETED' && done(o)) ok.add(o.metadata.name);
            else ok.delete(o.metadata.name);
            if (ok.size === want) finish(undefined, performance.now() - t);
          },
          () => setTimeout(open, 100),
        )
        .then(
          (r) => {
            request = r;
            if (finished) r.abort();
          },
          () => setTimeout(open, 1000),
        );
    };
    open();
  });
}

const readyNow = (o: Watched) =>
  !!o.status?.conditions?.some(
    (c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === o.metadata.generation,
  );

/** A line on stderr with the time, to follow a long run (the table goes to stdout). */
function progress(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

/** Runs `fn` over 0..n-1 in batches of 50 concurrent calls. */
async function batched(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => fn(i + j)));
}

interface Result {
  n: number;
  controller: string;
  readyMs: number;
  readyRequests: number;
  resyncMs: number;
  resyncRequests: number;
  /** Peak of the summed VmRSS of the HelmRelease controller and its children. */
  peakMiB: number;
  mainMiB: number;
  childrenMiB: number;
  /** flux: the peak RSS of the tide-controller serving the HelmCharts (not in peakMiB). */
  sourceMiB?: number;
}

async function run(n: number, which: 'tide' | 'flux', repo: () => Promise<ChartRepo>, flux?: string): Promise<Result> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-hr-'));
  const storagePath = join(stateDir, 'storage');
  const cluster = new LocalCluster({ stateDir: join(stateDir, 'cluster'), binDir });
  const procs: Proc[] = [];
  const samplers: RssSampler[] = [];
  try {
    await cluster.start();
    setTestCluster(cluster);
    const charts = await repo();
    const kc = shareConnections(new KubeConfig());
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCRDs(kc);
    const api = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await batched(n, (i) => core.createNamespace({ body: { metadata: { name: `app-${i}` } } }));

    // The HelmRelease controller first (its RSS is the figure), then the source controller serving
    // the HelmCharts, the same for both.
    procs.push(which === 'tide' ? await startTide(cluster, 'helm', storagePath) : await startFlux(cluster, flux!));
    procs.push(await startTide(cluster, 'source', storagePath));
    for (const p of procs) samplers.push(new RssSampler(p.pid));

    // The repository first, so that the timed phase is the HelmReleases (and their HelmCharts).
    await api.createNamespacedCustomObject({
      group: SOURCE,
      version: 'v1',
      plural: 'helmrepositories',
      namespace: NS,
      body: {
        apiVersion: `${SOURCE}/v1`,
        kind: 'HelmRepository',
        metadata: { name: 'charts' },
        spec: { url: charts.url, interval: '1h' },
      },
    });
    await waitAll(cluster, { group: SOURCE, version: 'v1', plural: 'helmrepositories' }, 1, readyNow, procs, 0);
    progress(`N=${n} ${which}: HelmRepository Ready, creating the HelmReleases`);

    const hr = { group: HELM, version: 'v2', plural: 'helmreleases' };
    const beforeBy = await requestsBy(cluster);
    const before = sum(beforeBy);
    const t = performance.now();
    await batched(n, (i) =>
      api.createNamespacedCustomObject({
        ...hr,
        namespace: NS,
        body: {
          apiVersion: `${HELM}/v2`,
          kind: 'HelmRelease',
          metadata: { name: `app-${i}` },
          spec: {
            interval: '1h',
            targetNamespace: `app-${i}`,
            chart: {
              spec: {
                chart: CHART.name,
                version: CHART.version,
                interval: '1h',
                sourceRef: { kind: 'HelmRepository', name: 'charts' },
              },
            },
          },
        },
      }),
    );
    const ready = await waitAll(cluster, hr, n, readyNow, procs, t);
    progress(`N=${n} ${which}: all Ready after ${secs(ready.ms)}, asking for a no-op resync`);
    // Own requests: the first scrape (counted in the next one), the creations and the watches.
    const afterBy = await requestsBy(cluster);
    const readyRequests = sum(afterBy) - before - 1 - n - ready.watches;
    if (process.env.BENCH_BREAKDOWN) details.push(`N=${n} ${which} install:\n${breakdown(beforeBy, afterBy)}`);

    // No-op resync: every HelmRelease asked to reconcile again; nothing changed.
    const before2By = await requestsBy(cluster);
    const before2 = sum(before2By);
    const at = new Date().toISOString();
    const t2 = performance.now();
    await batched(n, (i) =>
      api.patchNamespacedCustomObject(
        {
          ...hr,
          namespace: NS,
          name: `app-${i}`,
          body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': at } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    const resync = await waitAll(cluster, hr, n, (o) => o.status?.lastHandledReconcileAt === at, procs, t2);
    progress(`N=${n} ${which}: resync handled after ${secs(resync.ms)}, stopping`);
    const after2By = await requestsBy(cluster);
    const resyncRequests = sum(after2By) - before2 - 1 - n - resync.watches;
    if (process.env.BENCH_BREAKDOWN) details.push(`N=${n} ${which} no-op resync:\n${breakdown(before2By, after2By)}`);

    for (const s of samplers) s.stop();
    const [main, source] = samplers;
    return {
      n,
      controller: which,
      readyMs: ready.ms,
      readyRequests,
      resyncMs: resync.ms,
      resyncRequests,
      peakMiB: main!.peakSum,
      mainMiB: main!.peakMain,
      childrenMiB: main!.peakChildren,
      ...(source ? { sourceMiB: source.peakSum } : {}),
    };
  } finally {
    for (const s of samplers) s.stop();
    for (const p of procs) await p.stop();
    setTestCluster(undefined);
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Builds (or finds in its cache) Flux's helm-controller; undefined with the reason when it fails. */
function buildFlux(): { binary?: string; error?: string } {
  try {
    const out = execFileSync(join(import.meta.dirname, 'flux', 'build.sh'), {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return { binary: out.trim().split('\n').at(-1)! };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const HEADER =
  `${'N'.padStart(4)} | ${'controller'.padEnd(27)} | ${'all Ready'.padStart(9)} | ` +
  `${'peak RSS (MiB)'.padStart(14)} | ${'API requests'.padStart(12)} | no-op resync (s, requests)`;

function row(r: Result, label: string): string {
  return (
    `${String(r.n).padStart(4)} | ${label.padEnd(27)} | ${secs(r.readyMs).padStart(9)} | ` +
    `${String(Math.round(r.peakMiB)).padStart(14)} | ${String(r.readyRequests).padStart(12)} | ` +
    `${secs(r.resyncMs)}, ${r.resyncRequests}`
  );
}

const fluxBuild = CONTROLLERS.includes('flux') ? buildFlux() : {};
const fluxVersion = /^\s*require github.com\/fluxcd\/helm-controller (\S+)/m.exec(
  readFileSync(join(import.meta.dirname, 'flux', 'go.mod'), 'utf8'),
)?.[1];
let charts: ChartRepo | undefined;
const repo = async (): Promise<ChartRepo> => {
  if (!charts) {
    charts = await startChartRepo();
    await charts.publish(CHART);
  }
  return charts;
};
// One bin dir for every run: tide-helm is rebuilt when its sources change, not between two runs.
const binDir = resolveBinDir();
const results: Result[] = [];
/** BENCH_BREAKDOWN=1: the requests of each phase, printed after the table. */
const details: string[] = [];
const labels = { tide: 'tide', flux: `flux helm-controller ${fluxVersion}` };
try {
  console.log(
    `tide helm benchmark: kube-apiserver 1.36.3 + kwok on 127.0.0.1, Node ${process.version}, ` +
      `${availableParallelism()} cores, --concurrent=10, a fresh cluster per run`,
  );
  console.log(HEADER);
  for (const n of SIZES) {
    for (const which of CONTROLLERS) {
      if (which !== 'tide' && which !== 'flux') throw new Error(`BENCH_CONTROLLERS: unknown controller ${which}`);
      if (which === 'flux' && !fluxBuild.binary) continue;
      const r = await run(n, which, repo, fluxBuild.binary);
      results.push(r);
      console.log(row(r, labels[which]));
    }
  }
  console.log('peak RSS: the summed VmRSS (sampled every 200 ms) of the HelmRelease controller and its children:');
  for (const r of results) {
    console.log(
      r.controller === 'tide'
        ? `  N=${r.n} tide: tide-controller --controllers=helm ${Math.round(r.mainMiB)} MiB + ` +
            `its tide-helm ${Math.round(r.childrenMiB)} MiB (peaks apart); the tide-controller serving the ` +
            `HelmCharts (--controllers=source) peaked at ${Math.round(r.sourceMiB ?? 0)} MiB, not counted`
        : `  N=${r.n} flux: helm-controller alone; the tide-controller serving its HelmCharts ` +
            `(--controllers=source) peaked at ${Math.round(r.sourceMiB ?? 0)} MiB, not counted`,
    );
  }
  console.log(
    'API requests: everything the API server answered during the phase (HelmRelease and source controllers, ' +
      'kube-controller-manager for the Deployments), without leases, nodes, pods, replicasets and endpoints.',
  );
  for (const d of details) console.log(d);
  if (fluxBuild.error)
    console.log(
      `Flux's helm-controller could not be built (${fluxBuild.error}); Flux reference ` +
        '(Flux 2.9 helm-controller, 16 cores): 100 HelmReleases 26s / 286 MiB; 500 HelmReleases 2m14s / 306 MiB',
    );
} finally {
  await charts?.close();
  if (charts) rmSync(charts.dir, { recursive: true, force: true });
}
