// Benchmark of the controller runtime on a real control plane (make bench-runtime).
// N GitRepository objects, a reconciler that does no work of its own, so the figures are the
// runtime's: informer sync, reconcile-to-Ready with status writes, and a no-op resync.
// Baselines on the same machine and cluster:
//   sync      vs `kubectl get gitrepositories -A -o json` (one LIST, decoded)
//   reconcile vs a bare loop of N status patches, 4 at a time, with client-node (no runtime)
// API requests are the API server's own count (apiserver_request_total) for the resources the
// runtime touches, so the benchmark's own objects creation is excluded.
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceTypeOf } from '../../controllers/api/kind.ts';
import { GitRepositoryKind } from '../../controllers/api/source/gitrepository.ts';
import { findCondition, type Condition } from '../../controllers/runtime/conditions.ts';
import type { ManagedObject } from '../../controllers/runtime/controller.ts';
import { Informer } from '../../controllers/runtime/informer.ts';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { Logger } from '../../controllers/runtime/logger.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { installCRDs } from '../support/crds.ts';

const N = Number(process.env.BENCH_N ?? 1000);
const rt = resourceTypeOf(GitRepositoryKind);
const silent = new Logger({ level: 'error', encoding: 'json', write: () => {} });
type Repo = ManagedObject<{ conditions?: Condition[] }>;

/** The API server's count of requests on the resources the runtime uses (not /metrics itself). */
function requestCount(cluster: LocalCluster): number {
  const metrics = execFileSync(
    join(cluster.binDir, 'kubectl'),
    ['--kubeconfig', cluster.kubeconfigPath, 'get', '--raw', '/metrics'],
    { maxBuffer: 64 << 20 },
  ).toString();
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const ours =
      (line.includes(`group="${rt.group}"`) && line.includes('resource="gitrepositories"')) ||
      line.includes('resource="events"');
    if (ours) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

function allReady(inf: Informer<Repo>, generation = 1): boolean {
  const items = inf.list();
  return (
    items.length === N &&
    items.every((o) => findCondition(o.status?.conditions, 'Ready')?.observedGeneration === generation)
  );
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

/** Runs runtime-controller.ts in its own process, so that its memory is measured alone. */
function startController(cluster: LocalCluster) {
  const child = spawn(
    process.execPath,
    [join(import.meta.dirname, 'runtime-controller.ts'), cluster.kubeconfigPath, String(N)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  let markAll!: () => void;
  const reconciledAll = new Promise<void>((r) => (markAll = r));
  let markLoaded!: () => void;
  const loaded = new Promise<void>((r) => (markLoaded = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('loaded\n')) markLoaded();
    if (out.includes('reconciled-all\n')) markAll();
  });
  const exited = once(child, 'exit');
  return {
    loaded,
    reconciledAll,
    async stop(): Promise<{ reconciles: number; maxRssMB: number }> {
      child.kill('SIGTERM');
      await exited;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) throw new Error('bench controller exited without a result');
      return JSON.parse(line) as { reconciles: number; maxRssMB: number };
    },
  };
}

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-'));
  const cluster = new LocalCluster({ stateDir });
  await cluster.start();
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    shareConnections(kc);
    await installCRDs(kc);
    const api = kc.makeApiClient(CustomObjectsApi);
    const ns = 'default';
    const names = Array.from({ length: N }, (_, i) => `repo-${String(i).padStart(5, '0')}`);
    for (let i = 0; i < N; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map((name) =>
          api.createNamespacedCustomObject({
            group: rt.group,
            version: rt.version,
            plural: rt.plural,
            namespace: ns,
            body: {
              apiVersion: `${rt.group}/${rt.version}`,
              kind: rt.kind,
              metadata: { name },
              spec: { url: `https://example.com/${name}.git`, interval: '1h' },
            },
          }),
        ),
      );
    }
    console.log(
      `tide runtime benchmark: ${N} GitRepositories, kube-apiserver 1.36.3 on 127.0.0.1, Node ${process.version}`,
    );

    // Baseline 1: one LIST with kubectl.
    let t = performance.now();
    execFileSync(
      join(cluster.binDir, 'kubectl'),
      ['--kubeconfig', cluster.kubeconfigPath, 'get', 'gitrepositories', '-A', '-o', 'json'],
      { maxBuffer: 256 << 20 },
    );
    const kubectlMs = performance.now() - t;
    t = performance.now();
    const probe = new Informer<Repo>(kc, rt, { logger: silent });
    await probe.start();
    await probe.synced;
    const syncMs = performance.now() - t;
    console.log(
      `informer sync        ${fmt(syncMs)}   baseline kubectl get -o json ${fmt(kubectlMs)}   ` +
        `ratio ${(syncMs / kubectlMs).toFixed(2)}`,
    );

    // Baseline 2: N status patches, 4 in flight, without the runtime.
    const patch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    t = performance.now();
    for (let i = 0; i < N; i += 4) {
      await Promise.all(
        names.slice(i, i + 4).map((name) =>
          api.patchNamespacedCustomObjectStatus(
            {
              group: rt.group,
              version: rt.version,
              plural: rt.plural,
              namespace: ns,
              name,
              body: { status: { observedGeneration: -1 } },
            },
            patch,
          ),
        ),
      );
    }
    const bareMs = performance.now() - t;

    const before = requestCount(cluster);
    let controller = startController(cluster);
    // Timing starts once the process has loaded its modules: what is measured is the runtime.
    await controller.loaded;
    t = performance.now();
    await until(() => allReady(probe));
    await controller.reconciledAll;
    const readyMs = performance.now() - t;
    const readyCalls = requestCount(cluster) - before;
    const first = await controller.stop();
    console.log(
      `reconcile to Ready   ${fmt(readyMs)}   baseline ${N} bare status patches ${fmt(bareMs)}   ` +
        `ratio ${(readyMs / bareMs).toFixed(2)}   ` +
        `API requests ${readyCalls} (${(readyCalls / N).toFixed(2)}/object)   ` +
        `controller peak RSS ${first.maxRssMB} MB`,
    );

    // No-op resync: a fresh controller reconciles every object again; nothing changed, so no writes.
    const before2 = requestCount(cluster);
    controller = startController(cluster);
    await controller.loaded;
    t = performance.now();
    await controller.reconciledAll;
    const resyncMs = performance.now() - t;
    const second = await controller.stop();
    const resyncCalls = requestCount(cluster) - before2;
    console.log(
      `no-op resync         ${fmt(resyncMs)}   ${second.reconciles} reconciles   ` +
        `API requests ${resyncCalls} (list + watch; status writes skipped)   ` +
        `controller peak RSS ${second.maxRssMB} MB`,
    );
    await probe.stop();
  } finally {
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
