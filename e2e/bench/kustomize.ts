// Benchmark of the Kustomization controller (make bench-kustomize), modelled on Flux's public
// benchmark: N Kustomizations (BENCH_SIZES, default 100,500,1000,2000), each applying a Namespace,
// a ServiceAccount, a Service, a ConfigMap and a Deployment with wait: true, all from one
// GitRepository, reconciled by tide-controller --controllers=source,kustomize --concurrent=10 with
// default flags. Phases, one controller process throughout:
//   1. all Ready: from the controller's start until every Kustomization is Ready; its peak RSS
//      (VmHWM, read after phase 2) and the API requests it took;
//   2. no-op resync: every Kustomization asked to reconcile again (reconcile.fluxcd.io/requestedAt),
//      nothing changed in git, until each answers in status.lastHandledReconcileAt;
//   3. one-app commit: a commit changing the ConfigMap of the LAST app (app-<N-1>: last in creation
//      and in name order, so first in no queue) lands in the git server, then a reconcile of the
//      GitRepository is requested (no wait for its interval). Times: push → the GitRepository's new
//      status.artifact.revision; artifact → that ConfigMap holds the new value in the cluster (the
//      issue 12 target: ≤ 2 s at N=1000); artifact → all N Kustomizations have the new revision in
//      status.lastAttemptedRevision and status.lastAppliedRevision, with the API requests from the
//      push until then (and per Kustomization: the target is ≤ 1 for each unchanged one);
//   4. leak check: BENCH_RESYNCS (default 10) no-op resyncs in a row, the controller's VmRSS after
//      each and its growth from the first to the last.
// Then a table of all sizes beside the reference rows of issue 12 (Flux 2.9, and Tide before it).
// Every wait is a watch (no polling): the time is when the status turned. API requests are the API
// server's own count (apiserver_request_total), without the control plane's background traffic
// (leases, nodes, pods, replicasets, endpoints) and without this benchmark's own requests.
// Baseline: the same objects applied once with `kubectl apply --server-side` of one file
// (BENCH_BASELINE=0 skips it: long at N=2000).
// BENCH_BREAKDOWN=1 prints the requests of phases 2 and 3 by verb and resource.
// BENCH_LOG=<file> BENCH_LOG_LEVEL=debug keeps the controller's log (reconcile durations) for a look.
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { startGitHttpServer } from '../support/git/http-server.ts';
import { commit, createRepo } from '../support/git/repos.ts';
import { freePort } from '../support/net.ts';

const exec = promisify(execFile);
const SIZES = (process.env.BENCH_SIZES ?? '100,500,1000,2000').split(',').map(Number);
const BASELINE = process.env.BENCH_BASELINE !== '0';
const BREAKDOWN = !!process.env.BENCH_BREAKDOWN;
const RESYNCS = Number(process.env.BENCH_RESYNCS ?? 10);
/** How long one wait may take before the run fails (BENCH_TIMEOUT, seconds). */
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 3600) * 1000;
const KS = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', namespace: 'default', plural: 'kustomizations' };
const KS_PATH = '/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations';
const GITREPO_PATH = '/apis/source.toolkit.fluxcd.io/v1/namespaces/default/gitrepositories';

function manifests(i: number, value = 'value'): string {
  const ns = `bench-${i}`;
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: ${ns}}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: ${ns}}
spec:
  selector: {app: app}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: ${ns}}
data: {key: ${value}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      serviceAccountName: app
      containers: [{name: app, image: registry.example/app:1.0.0}]
`;
}

async function kubectl(cluster: LocalCluster, args: string[]): Promise<string> {
  const { stdout } = await exec(join(cluster.binDir, 'kubectl'), ['--kubeconfig', cluster.kubeconfigPath, ...args], {
    maxBuffer: 1 << 28,
  });
  return stdout;
}

/** The API server's request count by "VERB resource[/subresource]", without the control plane's background. */
async function requestsBy(cluster: LocalCluster): Promise<Map<string, number>> {
  const metrics = await kubectl(cluster, ['get', '--raw', '/metrics']);
  const by = new Map<string, number>();
  for (const line of metrics.split('\n')) {
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

/**
 * The count of requestsBy without this benchmark's own requests, which it notes as it makes them.
 * (GET /metrics itself is not counted by the API server; a WATCH is counted when it ends.)
 */
class Requests {
  private readonly own = new Map<string, number>();
  private readonly cluster: LocalCluster;
  constructor(cluster: LocalCluster) {
    this.cluster = cluster;
  }
  mine(key: string, count = 1): void {
    this.own.set(key, (this.own.get(key) ?? 0) + count);
  }
  async by(): Promise<Map<string, number>> {
    const by = await requestsBy(this.cluster);
    for (const [key, count] of this.own) by.set(key, (by.get(key) ?? 0) - count);
    return by;
  }
}

function sum(by: Map<string, number>): number {
  let total = 0;
  for (const count of by.values()) total += count;
  return total;
}

/** BENCH_BREAKDOWN=1: what a phase asked the API server, by verb and resource. */
function breakdown(before: Map<string, number>, after: Map<string, number>): string {
  const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, d]) => d !== 0);
  return rows
    .sort((a, b) => b[1] - a[1])
    .map(([k, d]) => `    ${String(d).padStart(7)}  ${k}`)
    .join('\n');
}

/** A field of /proc/<pid>/status in MiB. */
function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/** A line on stderr with the time, to follow a long run (the figures go to stdout). */
function progress(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

type Condition = { type: string; status: string; reason?: string; message?: string; observedGeneration?: number };
type Obj = {
  metadata: { name: string; generation?: number };
  data?: Record<string, string>;
  status?: {
    conditions?: Condition[];
    lastHandledReconcileAt?: string;
    lastAttemptedRevision?: string;
    lastAppliedRevision?: string;
    artifact?: { revision?: string };
  };
};

interface Bench {
  n: number;
  cluster: LocalCluster;
  kc: KubeConfig;
  api: CustomObjectsApi;
  requests: Requests;
  controller?: ChildProcess;
}

interface Waiting {
  /** Resolves once every name has been seen: the watch's first events, the objects as they are. */
  synced: Promise<void>;
  /** performance.now() at which each name turned done; resolves when all have. */
  done: Promise<Map<string, number>>;
  /** Ends the watch (done does too). */
  close(): void;
}

/**
 * One watch of the collection at `path` (narrowed by `fieldSelector`) until `done` holds for each of
 * `names`; `done` throws for a failure to report. A watch ends after 30 s without an event (the
 * client's inactivity timeout) or when the API server ends it: it is opened again, and starts again
 * with the objects as they are.
 */
function watchUntil(
  b: Bench,
  path: string,
  names: readonly string[],
  done: (o: Obj) => boolean,
  fieldSelector?: string,
): Waiting {
  const resource = path.slice(path.lastIndexOf('/') + 1);
  const pending = new Set(names);
  const unseen = new Set(names);
  const times = new Map<string, number>();
  const synced = Promise.withResolvers<void>();
  const all = Promise.withResolvers<Map<string, number>>();
  // Either may fail before it is awaited.
  synced.promise.catch(() => {});
  all.promise.catch(() => {});
  let request: AbortController | undefined;
  let closed = false;
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
  const timer = setTimeout(
    () => fail(new Error(`${pending.size}/${names.length} ${resource} not done after ${TIMEOUT_MS / 1000}s`)),
    TIMEOUT_MS,
  );
  const exitCheck = setInterval(() => {
    if (b.controller && b.controller.exitCode !== null) fail(new Error('tide-controller exited'));
  }, 1000);
  const open = () => {
    new Watch(b.kc)
      .watch(
        path,
        fieldSelector ? { fieldSelector } : {},
        (_type: string, o: Obj) => {
          const name = o.metadata?.name;
          if (unseen.delete(name) && unseen.size === 0) synced.resolve();
          if (closed || !pending.has(name)) return;
          try {
            if (!done(o)) return;
          } catch (err) {
            fail(err as Error);
            return;
          }
          pending.delete(name);
          times.set(name, performance.now());
          if (pending.size > 0) return;
          close();
          all.resolve(times);
        },
        (err: unknown) => {
          // The API server counts a watch when it ends.
          b.requests.mine(`WATCH ${resource}`);
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
  return { synced: synced.promise, done: all.promise, close };
}

const ksNames = (n: number) => Array.from({ length: n }, (_, i) => `app-${i}`);

/** Runs `fn` over 0..n-1 in batches of 50 concurrent calls. */
async function batched(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => fn(i + j)));
}

/** Asks for a reconcile of one object, as `flux reconcile` does. */
function requestReconcile(b: Bench, at: string, name: string, plural = KS.plural, group = KS.group) {
  b.requests.mine(`PATCH ${plural}`);
  return b.api.patchNamespacedCustomObject(
    {
      group,
      version: 'v1',
      plural,
      namespace: 'default',
      name,
      body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': at } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/**
 * The API requests of a phase: the count before it, and after (once this benchmark's watches are
 * closed and counted: the API server counts a WATCH when it ends).
 */
async function after(b: Bench, before: Map<string, number>): Promise<{ requests: number; detail: string }> {
  await sleep(500);
  const now = await b.requests.by();
  return { requests: sum(now) - sum(before), detail: breakdown(before, now) };
}

interface Phase {
  ms: number;
  requests: number;
  detail: string;
}

/** A no-op resync: every Kustomization asked to reconcile again, until each has answered. */
async function resync(b: Bench): Promise<Phase> {
  const at = new Date().toISOString();
  const wait = watchUntil(b, KS_PATH, ksNames(b.n), (k) => k.status?.lastHandledReconcileAt === at);
  try {
    await wait.synced;
    const before = await b.requests.by();
    const t = performance.now();
    await batched(b.n, (i) => requestReconcile(b, at, `app-${i}`));
    const times = await wait.done;
    const ms = Math.max(...times.values()) - t;
    return { ms, ...(await after(b, before)) };
  } finally {
    wait.close();
  }
}

const readyNow = (k: Obj) =>
  !!k.status?.conditions?.some(
    (c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === k.metadata.generation,
  );

interface OneApp {
  /** The app changed. */
  app: number;
  /** Push → the GitRepository's new artifact. */
  artifactMs: number;
  /** Artifact → the app's ConfigMap holds the new value. */
  appliedMs: number;
  /** Artifact → the first Kustomization, the changed one's, and the last to record the new revision. */
  firstMs: number;
  changedMs: number;
  allMs: number;
  requests: number;
  detail: string;
}

/** Ready=False reasons of a Kustomization that will not pass by themselves. */
const FAILED = ['BuildFailed', 'ReconciliationFailed', 'HealthCheckFailed', 'PruneFailed', 'InvalidSpec'];

/** Phase 3: a commit that changes the last app's ConfigMap, until every Kustomization records it. */
async function oneApp(b: Bench, repoPath: string): Promise<OneApp> {
  const app = b.n - 1;
  let sha = '';
  const at = (rev: string | undefined) => !!sha && !!rev?.endsWith(sha);
  const source = watchUntil(b, GITREPO_PATH, ['fleet'], (g) => at(g.status?.artifact?.revision), 'metadata.name=fleet');
  const configMap = watchUntil(
    b,
    `/api/v1/namespaces/bench-${app}/configmaps`,
    ['app'],
    (c) => c.data?.key === 'value-2',
    'metadata.name=app',
  );
  const recorded = watchUntil(b, KS_PATH, ksNames(b.n), (k) => {
    const attempted = at(k.status?.lastAttemptedRevision);
    const ready = k.status?.conditions?.find((c) => c.type === 'Ready');
    if (attempted && ready?.status === 'False' && FAILED.includes(ready.reason ?? ''))
      throw new Error(`${k.metadata.name}: ${ready.reason}: ${ready.message}`);
    return attempted && at(k.status?.lastAppliedRevision);
  });
  try {
    await Promise.all([source.synced, configMap.synced, recorded.synced]);
    const before = await b.requests.by();
    sha = await commit(repoPath, {
      branch: 'main',
      files: { [`apps/app-${app}/manifests.yaml`]: manifests(app, 'value-2') },
      message: `app-${app}: value-2`,
    });
    const t = performance.now();
    await requestReconcile(b, new Date().toISOString(), 'fleet', 'gitrepositories', 'source.toolkit.fluxcd.io');
    const [published, applied, times] = await Promise.all([source.done, configMap.done, recorded.done]);
    const artifact = published.get('fleet')!;
    const all = [...times.values()];
    return {
      app,
      artifactMs: artifact - t,
      appliedMs: applied.get('app')! - artifact,
      firstMs: Math.min(...all) - artifact,
      changedMs: times.get(`app-${app}`)! - artifact,
      allMs: Math.max(...all) - artifact,
      ...(await after(b, before)),
    };
  } finally {
    source.close();
    configMap.close();
    recorded.close();
  }
}

interface Result {
  n: number;
  baselineMs?: number;
  readyMs: number;
  readyRequests: number;
  /** VmHWM after phases 1 and 2, as before issue 12; and at the end of the run. */
  peakMiB: number;
  endPeakMiB: number;
  resync: Phase;
  oneApp: OneApp;
  /** Phase 4: each resync and the VmRSS after it. */
  resyncs: Phase[];
  rssMiB: number[];
}

async function runSize(n: number): Promise<Result> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-ks-'));
  const cluster = new LocalCluster({ stateDir });
  await cluster.start();
  const root = mkdtempSync(join(tmpdir(), 'tide-bench-repo-'));
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`apps/app-${i}/manifests.yaml`] = manifests(i);
  const repo = await createRepo(root, 'fleet', { branch: 'main', files });
  const git = await startGitHttpServer({ root });
  let controller: ChildProcess | undefined;
  try {
    const kc = shareConnections(new KubeConfig());
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCRDs(kc);
    const api = kc.makeApiClient(CustomObjectsApi);
    const b: Bench = { n, cluster, kc, api, requests: new Requests(cluster) };

    // Baseline: one server-side apply of everything with kubectl, then wait for the Deployments.
    let baselineMs: number | undefined;
    if (BASELINE) {
      progress(`N=${n} baseline: kubectl apply --server-side`);
      const all = join(root, 'all.yaml');
      writeFileSync(
        all,
        Array.from({ length: n }, (_, i) => manifests(i).replaceAll(`bench-${i}`, `base-${i}`)).join('---\n'),
      );
      const t = performance.now();
      await kubectl(cluster, ['apply', '--server-side', '--field-manager=bench', '-f', all]);
      await kubectl(cluster, [
        'wait',
        '--for=condition=Available',
        'deployment',
        '--all',
        '--all-namespaces',
        '--timeout=600s',
      ]);
      baselineMs = performance.now() - t;
    }

    await api.createNamespacedCustomObject({
      group: 'source.toolkit.fluxcd.io',
      version: 'v1',
      plural: 'gitrepositories',
      namespace: 'default',
      body: {
        apiVersion: 'source.toolkit.fluxcd.io/v1',
        kind: 'GitRepository',
        metadata: { name: 'fleet' },
        spec: { url: git.url('fleet'), interval: '1h', ref: { branch: 'main' } },
      },
    });
    await batched(n, (i) =>
      api.createNamespacedCustomObject({
        ...KS,
        body: {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: `app-${i}` },
          spec: {
            interval: '1h',
            prune: true,
            wait: true,
            timeout: '10m',
            path: `./apps/app-${i}`,
            sourceRef: { kind: 'GitRepository', name: 'fleet' },
          },
        },
      }),
    );

    // 1. All Ready, from the controller's start.
    progress(`N=${n} all Ready`);
    const ready = watchUntil(b, KS_PATH, ksNames(n), readyNow);
    await ready.synced;
    const storage = await freePort();
    const before = await b.requests.by();
    const t = performance.now();
    controller = spawn(
      process.execPath,
      [
        join(import.meta.dirname, '..', '..', 'controllers', 'main.ts'),
        `--kubeconfig=${cluster.kubeconfigPath}`,
        '--controllers=source,kustomize',
        '--metrics-addr=0',
        '--health-addr=0',
        `--storage-addr=127.0.0.1:${storage}`,
        `--storage-adv-addr=127.0.0.1:${storage}`,
        `--storage-path=${join(stateDir, 'storage')}`,
        `--kustomize-path=${join(cluster.binDir, 'kustomize')}`,
        '--concurrent=10',
        `--log-level=${process.env.BENCH_LOG_LEVEL ?? 'error'}`,
      ],
      { stdio: ['ignore', 'ignore', process.env.BENCH_LOG ? 'pipe' : 'inherit'] },
    );
    if (process.env.BENCH_LOG) controller.stderr!.pipe(createWriteStream(process.env.BENCH_LOG));
    b.controller = controller;
    const pid = controller.pid!;
    const readyMs = Math.max(...(await ready.done).values()) - t;
    const readyRequests = (await after(b, before)).requests;
    console.log(
      `N=${n} all Ready ${secs(readyMs)}` +
        (baselineMs === undefined ? '' : ` (baseline kubectl apply --server-side + wait ${secs(baselineMs)})`) +
        `, ${fmt(readyRequests)} API requests`,
    );

    // 2. No-op resync.
    progress(`N=${n} no-op resync`);
    const noop = await resync(b);
    const peakMiB = statusMiB(pid, 'VmHWM');
    console.log(
      `N=${n} no-op resync ${secs(noop.ms)}, ${fmt(noop.requests)} API requests ` +
        `(${(noop.requests / n).toFixed(2)} per Kustomization); controller peak RSS so far ${Math.round(peakMiB)} MB`,
    );
    if (BREAKDOWN) console.log(`N=${n} no-op resync requests by verb and resource:\n${noop.detail}`);

    // 3. One-app commit → applied.
    progress(`N=${n} one-app commit`);
    const one = await oneApp(b, repo.path);
    console.log(
      `N=${n} one-app commit (app-${one.app}'s ConfigMap): push → artifact ${secs(one.artifactMs)}, ` +
        `artifact → ConfigMap applied ${secs(one.appliedMs)};\n` +
        `       artifact → all ${n} recorded ${secs(one.allMs)} ` +
        `(first ${secs(one.firstMs)}, app-${one.app} ${secs(one.changedMs)}), ${fmt(one.requests)} API requests ` +
        `from the push (${(one.requests / n).toFixed(2)} per Kustomization)`,
    );
    if (BREAKDOWN) console.log(`N=${n} one-app commit requests by verb and resource:\n${one.detail}`);

    // 4. Leak check.
    const resyncs: Phase[] = [];
    const rssMiB: number[] = [];
    for (let r = 1; r <= RESYNCS; r++) {
      progress(`N=${n} leak check: no-op resync ${r}/${RESYNCS}`);
      resyncs.push(await resync(b));
      rssMiB.push(statusMiB(pid, 'VmRSS'));
    }
    const endPeakMiB = statusMiB(pid, 'VmHWM');
    if (RESYNCS > 0)
      console.log(
        `N=${n} leak check, VmRSS after each of ${RESYNCS} no-op resyncs: ` +
          `${rssMiB.map((m) => Math.round(m)).join(', ')} MB; first → last ${growth(rssMiB)} MB;\n       ` +
          `resyncs ${secs(Math.min(...resyncs.map((p) => p.ms)))}–${secs(Math.max(...resyncs.map((p) => p.ms)))}, ` +
          `${fmt(Math.min(...resyncs.map((p) => p.requests)))}–${fmt(Math.max(...resyncs.map((p) => p.requests)))} ` +
          `requests; peak RSS over the whole run ${Math.round(endPeakMiB)} MB`,
      );
    return {
      n,
      baselineMs,
      readyMs,
      readyRequests,
      peakMiB,
      endPeakMiB,
      resync: noop,
      oneApp: one,
      resyncs,
      rssMiB,
    };
  } finally {
    if (controller && controller.exitCode === null) {
      const exited = once(controller, 'exit');
      controller.kill('SIGTERM');
      await exited;
    }
    await git.close();
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const fmt = (n: number) => n.toLocaleString('en-US');
const growth = (mib: number[]) => {
  const d = Math.round(mib.at(-1)! - mib[0]!);
  return d >= 0 ? `+${d}` : String(d);
};

// ---- the table ------------------------------------------------------------------------------

const COLUMNS = [
  ['N', 5],
  ['all Ready', 9],
  ['peak RSS', 8],
  ['API req', 7],
  ['no-op resync', 17],
  ['one-app → applied', 17],
  ['all recorded, req/Ks', 20],
  [`RSS ${RESYNCS} resyncs`, 14],
] as const;

function line(cells: readonly string[]): string {
  return cells.map((c, i) => (i === 0 ? c.padStart(COLUMNS[i]![1]) : c.padEnd(COLUMNS[i]![1]))).join(' | ');
}

function row(r: Result): string {
  const one = r.oneApp;
  return line([
    String(r.n),
    secs(r.readyMs),
    `${Math.round(r.peakMiB)} MB`,
    fmt(r.readyRequests),
    `${secs(r.resync.ms)} ${fmt(r.resync.requests)} req`,
    `${secs(one.artifactMs)} + ${secs(one.appliedMs)}`,
    `${secs(one.allMs)} ${fmt(one.requests)} (${(one.requests / r.n).toFixed(1)})`,
    r.rssMiB.length ? `${Math.round(r.rssMiB.at(-1)!)} MB (${growth(r.rssMiB)})` : '',
  ]);
}

/** Issue 12's reference rows: N, all Ready, peak RSS, API requests, no-op resync, one-app, all recorded. */
const FLUX = [
  [100, '41.5s', '285 MB', '5,248', '30.4s 2,928 req', '20.9s*', ''],
  [500, '453.4s', '300 MB', '25,406', '436.0s 14,950 req', '17.1s*', ''],
] as const;
const TIDE_BEFORE = [
  [100, '30.5s', '341 MB', '3,079', '6.8s 1,450 req', '12.9s*', ''],
  [500, '132.5s', '525 MB', '15,733', '32.7s 5,799 req', '12.4s*', ''],
  [1000, '255.2s', '555 MB', '30,496', '67.7s 11,899 req', '21.0s*', '? 11,117 (11.1)'],
] as const;

function table(results: Result[]): void {
  console.log(
    `\ntide-controller --controllers=source,kustomize --concurrent=10, default flags, this run ` +
      `(${availableParallelism()} cores; one app changed: the last):`,
  );
  console.log(line(COLUMNS.map(([name]) => name)));
  for (const r of results) console.log(row(r));
  console.log('Flux 2.9 (source + kustomize controllers), measured on this machine kind, from issue 12:');
  for (const [n, ...cells] of FLUX) console.log(line([String(n), ...cells, '']));
  console.log('Tide before issue 12:');
  for (const [n, ...cells] of TIDE_BEFORE) console.log(line([String(n), ...cells, '']));
  for (const text of [
    'peak RSS: VmHWM after all Ready and the no-op resync. API req: from the start until all Ready.',
    "one-app → applied: push → the GitRepository's new artifact (a reconcile requested right after the push)",
    "  + artifact → the app's ConfigMap holds the new value in the cluster;",
    "  * from the push, with the GitRepository's 10 s interval and nothing requested.",
    'all recorded: artifact → all N Kustomizations have the new revision as lastAttemptedRevision and',
    '  lastAppliedRevision; the API requests from the push until then (and per Kustomization).',
    `RSS ${RESYNCS} resyncs: VmRSS after ${RESYNCS} no-op resyncs in a row (its growth from the first).`,
    "API requests: without the control plane's background (leases, nodes, pods, replicasets, endpoints) and",
    "  this benchmark's own; before issue 12 the latter were counted (the LISTs of its polls).",
  ])
    console.log(text);
}

console.log(
  `tide kustomize benchmark: kube-apiserver 1.36.3 + kwok on 127.0.0.1, Node ${process.version}, ` +
    `${availableParallelism()} cores, --concurrent=10, a fresh cluster per N`,
);
const results: Result[] = [];
try {
  for (const n of SIZES) results.push(await runSize(n));
} finally {
  if (results.length) table(results);
}
