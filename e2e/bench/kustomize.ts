// Benchmark of the Kustomization controller (make bench-kustomize), modelled on Flux's public
// benchmark: N Kustomizations (BENCH_SIZES, default 100,500,1000), each applying a ServiceAccount,
// a Service, a ConfigMap and a Deployment with wait: true, all from one GitRepository. Prints the
// time until all are Ready, the controller's peak RSS, the API requests it made (the API server's
// own count), and the same for a no-op resync (every Kustomization reconciled again, nothing changed).
// Baseline: the same objects applied once with `kubectl apply --server-side` of one file.
// BENCH_LOG=<file> BENCH_LOG_LEVEL=debug keeps the controller's log (reconcile durations) for a look.
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { startGitHttpServer } from '../support/git/http-server.ts';
import { createRepo } from '../support/git/repos.ts';
import { freePort } from '../support/net.ts';

const exec = promisify(execFile);
const SIZES = (process.env.BENCH_SIZES ?? '100,500,1000').split(',').map(Number);

function manifests(i: number): string {
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
data: {key: value}
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

/** The API server's request count, excluding what this benchmark's own polling asks for. */
/** The API server's request count, without the background traffic of the control plane itself. */
async function requests(cluster: LocalCluster): Promise<number> {
  let total = 0;
  for (const count of (await requestsBy(cluster)).values()) total += count;
  return total;
}

/** The same count, by "VERB resource[/subresource]". */
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

/** BENCH_BREAKDOWN=1: what a phase asked the API server, by verb and resource. */
function breakdown(before: Map<string, number>, after: Map<string, number>): string {
  const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, d]) => d > 0);
  return rows
    .sort((a, b) => b[1] - a[1])
    .map(([k, d]) => `    ${String(d).padStart(7)}  ${k}`)
    .join('\n');
}

async function allReady(api: CustomObjectsApi, n: number): Promise<boolean> {
  const list = (await api.listNamespacedCustomObject({
    group: 'kustomize.toolkit.fluxcd.io',
    version: 'v1',
    namespace: 'default',
    plural: 'kustomizations',
  })) as {
    items: {
      metadata: { generation: number };
      status?: {
        conditions?: { type: string; status: string; observedGeneration?: number }[];
        lastHandledReconcileAt?: string;
      };
    }[];
  };
  const ready = list.items.filter((k) =>
    k.status?.conditions?.some(
      (c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === k.metadata.generation,
    ),
  );
  return ready.length === n;
}

async function runSize(n: number): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-ks-'));
  const cluster = new LocalCluster({ stateDir });
  await cluster.start();
  const root = mkdtempSync(join(tmpdir(), 'tide-bench-repo-'));
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`apps/app-${i}/manifests.yaml`] = manifests(i);
  await createRepo(root, 'fleet', { branch: 'main', files });
  const git = await startGitHttpServer({ root });
  try {
    const kc = shareConnections(new KubeConfig());
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCRDs(kc);
    const api = kc.makeApiClient(CustomObjectsApi);

    // Baseline: one server-side apply of everything with kubectl, then wait for the Deployments.
    const all = join(root, 'all.yaml');
    writeFileSync(
      all,
      Array.from({ length: n }, (_, i) => manifests(i).replaceAll(`bench-${i}`, `base-${i}`)).join('---\n'),
    );
    let t = performance.now();
    await kubectl(cluster, ['apply', '--server-side', '--field-manager=bench', '-f', all]);
    await kubectl(cluster, [
      'wait',
      '--for=condition=Available',
      'deployment',
      '--all',
      '--all-namespaces',
      '--timeout=600s',
    ]);
    const baselineMs = performance.now() - t;

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
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) =>
          api.createNamespacedCustomObject({
            group: 'kustomize.toolkit.fluxcd.io',
            version: 'v1',
            plural: 'kustomizations',
            namespace: 'default',
            body: {
              apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
              kind: 'Kustomization',
              metadata: { name: `app-${i + j}` },
              spec: {
                interval: '1h',
                prune: true,
                wait: true,
                timeout: '10m',
                path: `./apps/app-${i + j}`,
                sourceRef: { kind: 'GitRepository', name: 'fleet' },
              },
            },
          }),
        ),
      );
    }

    const storage = await freePort();
    const before = await requests(cluster);
    t = performance.now();
    const controller = spawn(
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
    const exited = once(controller, 'exit');
    while (!(await allReady(api, n))) await new Promise((r) => setTimeout(r, 2000));
    const readyMs = performance.now() - t;
    const readyCalls = (await requests(cluster)) - before;

    // No-op resync: ask every Kustomization to reconcile again; nothing changed in git.
    const before2 = await requests(cluster);
    const detail = process.env.BENCH_BREAKDOWN ? await requestsBy(cluster) : undefined;
    const at = new Date().toISOString();
    t = performance.now();
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) =>
          api.patchNamespacedCustomObject(
            {
              group: 'kustomize.toolkit.fluxcd.io',
              version: 'v1',
              plural: 'kustomizations',
              namespace: 'default',
              name: `app-${i + j}`,
              body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': at } } },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          ),
        ),
      );
    }
    for (;;) {
      const list = (await api.listNamespacedCustomObject({
        group: 'kustomize.toolkit.fluxcd.io',
        version: 'v1',
        namespace: 'default',
        plural: 'kustomizations',
      })) as { items: { status?: { lastHandledReconcileAt?: string } }[] };
      if (list.items.every((k) => k.status?.lastHandledReconcileAt === at)) break;
      // Listing N objects is itself load on a 2-core API server; poll gently.
      await new Promise((r) => setTimeout(r, 2000));
    }
    const resyncMs = performance.now() - t;
    const resyncCalls = (await requests(cluster)) - before2 - n;
    if (detail)
      console.log(
        `N=${n} no-op resync requests by verb and resource:\n${breakdown(detail, await requestsBy(cluster))}`,
      );
    const rss = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${controller.pid}/status`, 'utf8'))![1]) / 1024;
    controller.kill('SIGTERM');
    await exited;
    console.log(
      `N=${String(n).padEnd(5)} all Ready ${(readyMs / 1000).toFixed(1)}s ` +
        `(baseline kubectl apply + wait ${(baselineMs / 1000).toFixed(1)}s)   ` +
        `controller peak RSS ${Math.round(rss)} MB   API requests ${readyCalls}   ` +
        `no-op resync ${(resyncMs / 1000).toFixed(1)}s, ${resyncCalls} API requests`,
    );
  } finally {
    await git.close();
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

console.log(
  `tide kustomize benchmark: kube-apiserver 1.36.3 + kwok on 127.0.0.1, Node ${process.version}, --concurrent=10`,
);
for (const n of SIZES) await runSize(n);
