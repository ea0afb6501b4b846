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
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { startGitHttpServer } from '../support/git/http-server.ts';
import {
  commitApp,
  createFleet,
  createFleetRepo,
  GITREPO_PATH,
  KS,
  KS_PATH,
  ksNames,
  manifests,
  requestReconcile as patchRequestedAt,
} from './fleet.ts';
import {
  batched,
  breakdown,
  kubectl,
  type Proc,
  progress,
  readyNow,
  Requests,
  startTide,
  statusMiB,
  sum,
  type Waiting,
  type Watched,
  watchUntil as watch,
} from './support.ts';

const SIZES = (process.env.BENCH_SIZES ?? '100,500,1000,2000').split(',').map(Number);
const BASELINE = process.env.BENCH_BASELINE !== '0';
const BREAKDOWN = !!process.env.BENCH_BREAKDOWN;
const RESYNCS = Number(process.env.BENCH_RESYNCS ?? 10);
type Obj = Watched & {
  data?: Record<string, string>;
  status?: {
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
  controller?: Proc;
}

/** watchUntil of support.ts: the benchmark's watches noted as its own requests. */
function watchUntil(
  b: Bench,
  path: string,
  names: readonly string[],
  done: (o: Obj) => boolean,
  fieldSelector?: string,
): Waiting<Obj> {
  const resource = path.slice(path.lastIndexOf('/') + 1);
  return watch<Obj>({
    kc: b.kc,
    path,
    names,
    done,
    query: fieldSelector ? { fieldSelector } : {},
    procs: () => (b.controller ? [b.controller] : []),
    watchEnded: () => b.requests.mine(`WATCH ${resource}`),
  });
}

/** The time of the last of a wait's objects. */
const last = (reached: Map<string, { at: number }>) => Math.max(...[...reached.values()].map((r) => r.at));

/** requestReconcile of fleet.ts, noted as the benchmark's own request. */
function requestReconcile(b: Bench, at: string, name: string, plural = KS.plural, group = KS.group) {
  b.requests.mine(`PATCH ${plural}`);
  return patchRequestedAt(b.api, at, name, plural, group);
}

/**
 * The API requests of a phase: the count before it, and after, once the API server has counted this
 * benchmark's closed watches (it counts a WATCH when it ends, a moment after the client closed it):
 * until then a WATCH count without the benchmark's own is below its value before the phase.
 */
async function after(b: Bench, before: Map<string, number>): Promise<{ requests: number; detail: string }> {
  const counted = (now: Map<string, number>) =>
    [...now].every(([key, count]) => !key.startsWith('WATCH ') || count >= (before.get(key) ?? 0));
  let now = await b.requests.by();
  for (const deadline = Date.now() + 10_000; !counted(now) && Date.now() < deadline; ) {
    await sleep(50);
    now = await b.requests.by();
  }
  if (!counted(now)) throw new Error("the API server did not count the benchmark's closed watches within 10 s");
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
    const ms = last(await wait.done) - t;
    return { ms, ...(await after(b, before)) };
  } finally {
    wait.close();
  }
}

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
    sha = await commitApp(repoPath, app, 'value-2');
    const t = performance.now();
    await requestReconcile(b, new Date().toISOString(), 'fleet', 'gitrepositories', 'source.toolkit.fluxcd.io');
    const [published, applied, times] = await Promise.all([source.done, configMap.done, recorded.done]);
    const artifact = published.get('fleet')!.at;
    const all = [...times.values()].map((r) => r.at);
    return {
      app,
      artifactMs: artifact - t,
      appliedMs: applied.get('app')!.at - artifact,
      firstMs: Math.min(...all) - artifact,
      changedMs: times.get(`app-${app}`)!.at - artifact,
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
  const repoPath = await createFleetRepo(root, n);
  const git = await startGitHttpServer({ root });
  let controller: Proc | undefined;
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

    await createFleet(api, git.url('fleet'), n);

    // 1. All Ready, from the controller's start.
    progress(`N=${n} all Ready`);
    const ready = watchUntil(b, KS_PATH, ksNames(n), readyNow);
    await ready.synced;
    const before = await b.requests.by();
    const t = performance.now();
    controller = await startTide(cluster, { controllers: 'source,kustomize', waitReady: false });
    b.controller = controller;
    const pid = controller.pid!;
    const readyMs = last(await ready.done) - t;
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
    const one = await oneApp(b, repoPath);
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
    await controller?.stop();
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
