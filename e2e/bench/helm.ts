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
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster, resolveBinDir } from '../cluster/cluster.ts';
import { type ChartRepo, startChartRepo } from '../support/chartrepo.ts';
import { setTestCluster } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { freePort } from '../support/net.ts';
import {
  apiRequestsBy as requestsBy,
  batched,
  breakdown,
  childPids,
  type Proc,
  progress,
  readyNow,
  startProc,
  startTide,
  statusMiB,
  sum,
  type Watched,
  watchUntil,
} from './support.ts';
const SIZES = (process.env.BENCH_SIZES ?? '100,500')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const CONTROLLERS = (process.env.BENCH_CONTROLLERS ?? 'tide,flux').split(',').filter(Boolean);
const NS = 'bench';
const HELM = 'helm.toolkit.fluxcd.io';
const SOURCE = 'source.toolkit.fluxcd.io';

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

/**
 * Flux's helm-controller, watching every namespace, with the same concurrency. It reads its
 * kubeconfig from $KUBECONFIG: its flags (pflag) leave out controller-runtime's --kubeconfig.
 */
async function startFlux(cluster: LocalCluster, binary: string): Promise<Proc> {
  const [health, metrics] = [await freePort(), await freePort()];
  return startProc({
    name: 'helm-controller',
    command: binary,
    args: [
      '--watch-all-namespaces',
      `--metrics-addr=127.0.0.1:${metrics}`,
      `--health-addr=127.0.0.1:${health}`,
      '--concurrent=10',
      `--log-level=${process.env.BENCH_LOG_LEVEL ?? 'error'}`,
    ],
    health,
    env: { KUBECONFIG: cluster.kubeconfigPath },
  });
}

type HelmObject = Watched & { status?: { lastHandledReconcileAt?: string } };

/**
 * Watches `names` of `plural` of `group` in `bench` until each satisfies `done`; returns the
 * milliseconds since `t` and how many watch requests it made.
 */
async function waitAll(
  kc: KubeConfig,
  what: { group: string; version: string; plural: string },
  names: readonly string[],
  done: (o: HelmObject) => boolean,
  procs: Proc[],
  t: number,
): Promise<{ ms: number; watches: number }> {
  const wait = watchUntil<HelmObject>({
    kc,
    path: `/apis/${what.group}/${what.version}/namespaces/${NS}/${what.plural}`,
    names,
    done,
    procs: () => procs,
  });
  const reached = await wait.done;
  return { ms: Math.max(...[...reached.values()].map((r) => r.at)) - t, watches: wait.watches() };
}

const releases = (n: number) => Array.from({ length: n }, (_, i) => `app-${i}`);

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
    procs.push(which === 'tide' ? await startTide(cluster, { controllers: 'helm' }) : await startFlux(cluster, flux!));
    procs.push(await startTide(cluster, { controllers: 'source' }));
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
    await waitAll(kc, { group: SOURCE, version: 'v1', plural: 'helmrepositories' }, ['charts'], readyNow, procs, 0);
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
    const ready = await waitAll(kc, hr, releases(n), readyNow, procs, t);
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
    const resync = await waitAll(kc, hr, releases(n), (o) => o.status?.lastHandledReconcileAt === at, procs, t2);
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
