// Benchmark of the Helm and OCI sources (make bench-helm-sources), modelled on Flux's public
// source-controller benchmark. On one local cluster, each measurement with a fresh tide-controller
// (--controllers=source --concurrent=10) that sees only that measurement's objects
// (--watch-label-selector), for N in BENCH_SIZES (default 100,500):
//   - N HelmCharts (podinfo, version 6.x) from one HelmRepository served by a chart repository
//     made with the Helm CLI (e2e/support/chartrepo.ts);
//   - N OCIRepositories of one artifact in the CNCF distribution registry (e2e/support/registry.ts);
// and once: one HelmRepository whose index.yaml is generated to ~BENCH_INDEX_MB (default 50) MB.
// Each prints the time from creating the objects until all are Ready, the peak RSS (VmHWM) of the
// controller and of its Helm helper child (tide-helm), and the API requests the phase made (the API
// server's own count, without the control plane's background traffic and this benchmark's requests).
// BENCH_LOG=<file> BENCH_LOG_LEVEL=debug keeps the controllers' logs for a look.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { type ChartRepo, startChartRepo } from '../support/chartrepo.ts';
import { setTestCluster } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { pushArtifact, startRegistry, type TestRegistry } from '../support/registry.ts';
import {
  apiRequests as requests,
  childPids,
  type Proc,
  readyNow,
  startTide,
  statusMiB,
  watchUntil,
} from './support.ts';
const SIZES = (process.env.BENCH_SIZES ?? '100,500')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const INDEX_BYTES = Number(process.env.BENCH_INDEX_MB ?? 50) * 1e6;
const DEFAULT_INDEX_MAX = 50 * 1024 ** 2;
const PHASE_LABEL = 'bench.tide.dev/phase';
const SOURCE = 'source.toolkit.fluxcd.io';

interface Result {
  phase: string;
  ms: number;
  controllerMiB: number;
  helperMiB: number | undefined;
  requests: number;
}

/** The controller's tide-helm child, if it started one. */
function helperPid(parent: number): number | undefined {
  return childPids(parent).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'tide-helm';
    } catch {
      return false; // gone
    }
  });
}

/** tide-controller --controllers=source, watching only `phase`'s objects. */
function startController(cluster: LocalCluster, phase: string, extra: string[] = []): Promise<Proc> {
  return startTide(cluster, {
    controllers: 'source',
    flags: [`--watch-label-selector=${PHASE_LABEL}=${phase}`, ...extra],
  });
}

interface Phase {
  cluster: LocalCluster;
  kc: KubeConfig;
  api: CustomObjectsApi;
  core: CoreV1Api;
  name: string;
  plural: string;
  /** The objects, created in this order (batches of 50). */
  objects: { kind: string; plural: string; name: string; spec: Record<string, unknown> }[];
  extraFlags?: string[];
}

/**
 * Starts a controller for the phase, creates its objects in a namespace of their own and waits
 * until every object of `plural` is Ready for its generation.
 */
async function measure(p: Phase): Promise<Result> {
  const ns = `bench-${p.name}`;
  await p.core.createNamespace({ body: { metadata: { name: ns } } });
  const controller = await startController(p.cluster, p.name, p.extraFlags);
  try {
    const before = await requests(p.cluster);
    let own = 1; // the scrape just made counts in the next one
    const t = performance.now();
    for (let i = 0; i < p.objects.length; i += 50) {
      const batch = p.objects.slice(i, i + 50);
      await Promise.all(
        batch.map((o) =>
          p.api.createNamespacedCustomObject({
            group: SOURCE,
            version: 'v1',
            plural: o.plural,
            namespace: ns,
            body: {
              apiVersion: `${SOURCE}/v1`,
              kind: o.kind,
              metadata: { name: o.name, labels: { [PHASE_LABEL]: p.name } },
              spec: o.spec,
            },
          }),
        ),
      );
      own += batch.length;
    }
    // Every object of `plural` Ready for its generation: one watch, no polling.
    const ready = watchUntil({
      kc: p.kc,
      path: `/apis/${SOURCE}/v1/namespaces/${ns}/${p.plural}`,
      names: p.objects.filter((o) => o.plural === p.plural).map((o) => o.name),
      done: readyNow,
      procs: () => [controller],
    });
    const ms = Math.max(...[...(await ready.done).values()].map((r) => r.at)) - t;
    const calls = (await requests(p.cluster)) - before - own - ready.watches();
    const helper = helperPid(controller.pid);
    return {
      phase: p.name,
      ms,
      controllerMiB: statusMiB(controller.pid, 'VmHWM'),
      helperMiB: helper === undefined ? undefined : statusMiB(helper, 'VmHWM'),
      requests: calls,
    };
  } finally {
    await controller.stop();
  }
}

/** A .tar.gz of the entries. */
async function tgz(entries: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(entries)) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

const WORDS = ['web', 'database', 'cache', 'queue', 'monitoring', 'ingress', 'storage', 'security', 'logging', 'api'];

/**
 * A Helm repository index.yaml as Helm writes one (entries sorted by name, versions newest first),
 * of charts × versions with the fields public repositories carry, until it has `bytes` bytes.
 */
function generateIndex(bytes: number, repoUrl: string): { text: string; charts: number; versions: number } {
  const parts = ['apiVersion: v1\nentries:\n'];
  let size = parts[0]!.length;
  const perChart = 100;
  let charts = 0;
  const start = Date.UTC(2020, 0, 1);
  while (size < bytes) {
    const name = `chart-${String(charts).padStart(4, '0')}`;
    const words = [WORDS[charts % 10]!, WORDS[(charts * 7 + 3) % 10]!];
    let text = `  ${name}:\n`;
    for (let v = perChart - 1; v >= 0; v--) {
      const version = `${1 + Math.floor(v / 25)}.${Math.floor(v / 5) % 5}.${v % 5}`;
      const created = new Date(start + (charts * perChart + v) * 3_600_000 + 123).toISOString().replace('Z', '456Z');
      const digest = createHash('sha256').update(`${name}-${version}`).digest('hex');
      text += `  - annotations:
      artifacthub.io/category: ${words[0]}
      artifacthub.io/license: Apache-2.0
      artifacthub.io/images: |
        - name: ${name}
          image: registry.example.com/${name}:${version}
    apiVersion: v2
    appVersion: ${version}
    created: "${created}"
    dependencies:
    - name: common
      repository: oci://registry.example.com/charts
      tags:
      - common
      version: 2.x.x
    description: ${name} packages a ${words[0]} service with its ${words[1]} for Kubernetes, with
      sensible defaults, optional autoscaling, metrics and network policies.
    digest: ${digest}
    home: https://example.com/charts/${name}
    icon: https://example.com/icons/${name}.svg
    keywords:
    - ${name}
    - ${words[0]}
    - ${words[1]}
    kubeVersion: '>=1.23.0-0'
    maintainers:
    - email: maintainers@example.com
      name: Example Maintainers
      url: https://github.com/example
    name: ${name}
    sources:
    - https://github.com/example/charts/tree/main/charts/${name}
    type: application
    urls:
    - ${repoUrl}/${name}-${version}.tgz
    version: ${version}
`;
    }
    parts.push(text);
    size += text.length;
    charts++;
  }
  parts.push(`generated: "${new Date(start).toISOString()}"\n`);
  return { text: parts.join(''), charts, versions: charts * perChart };
}

const mib = (n: number) => `${Math.round(n)} MiB`;

function row(r: Result): string {
  const helper = r.helperMiB;
  return (
    `${r.phase.padEnd(47)} ${`${(r.ms / 1000).toFixed(1)}s`.padStart(8)}  ${mib(r.controllerMiB).padStart(9)}  ` +
    `${(helper === undefined ? '-' : mib(helper)).padStart(9)}  ` +
    `${mib(r.controllerMiB + (helper ?? 0)).padStart(9)}  ${String(r.requests).padStart(8)}`
  );
}

const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-helm-'));
const cluster = new LocalCluster({ stateDir });
let charts: ChartRepo | undefined;
let bigRepo: ChartRepo | undefined;
let registry: TestRegistry | undefined;
try {
  await cluster.start();
  // chartrepo.ts and registry.ts find the helm and registry binaries in the test cluster's bin dir.
  setTestCluster(cluster);
  const kc = shareConnections(new KubeConfig());
  kc.loadFromFile(cluster.kubeconfigPath);
  await installCRDs(kc);
  const api = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);

  charts = await startChartRepo();
  await charts.publish({ name: 'podinfo', version: '6.5.0' });
  registry = await startRegistry();
  await pushArtifact(registry, 'app', 'v1.0.0', {
    config: { mediaType: 'application/vnd.cncf.flux.config.v1+json', bytes: '{}' },
    layers: [
      {
        mediaType: 'application/vnd.cncf.flux.content.v1.tar+gzip',
        bytes: await tgz({ 'deploy/configmap.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n' }),
      },
    ],
  });

  console.log(
    `tide helm sources benchmark: kube-apiserver 1.36.3 + kwok on 127.0.0.1, Node ${process.version}, ` +
      `${availableParallelism()} cores, --controllers=source --concurrent=10`,
  );
  console.log(
    `${'phase'.padEnd(47)} ${'all Ready'.padStart(8)}  ${'controller'.padStart(9)}  ${'tide-helm'.padStart(9)}  ` +
      `${'sum RSS'.padStart(9)}  ${'API reqs'.padStart(8)}`,
  );
  for (const n of SIZES) {
    const chartResult = await measure({
      cluster,
      kc,
      api,
      core,
      name: `charts-${n}`,
      plural: 'helmcharts',
      objects: [
        {
          kind: 'HelmRepository',
          plural: 'helmrepositories',
          name: 'podinfo',
          spec: { type: 'default', url: charts.url, interval: '1h' },
        },
        ...Array.from({ length: n }, (_, i) => ({
          kind: 'HelmChart',
          plural: 'helmcharts',
          name: `podinfo-${i}`,
          spec: {
            chart: 'podinfo',
            version: '6.x',
            interval: '1h',
            sourceRef: { kind: 'HelmRepository', name: 'podinfo' },
          },
        })),
      ],
    });
    console.log(row({ ...chartResult, phase: `${n} HelmCharts, 1 HelmRepository` }));

    // OCIRepository is reconciled by builds that have its controller.
    if (!existsSync(join(import.meta.dirname, '..', '..', 'controllers', 'source', 'ocirepository'))) continue;
    const ociResult = await measure({
      cluster,
      kc,
      api,
      core,
      name: `oci-${n}`,
      plural: 'ocirepositories',
      objects: Array.from({ length: n }, (_, i) => ({
        kind: 'OCIRepository',
        plural: 'ocirepositories',
        name: `app-${i}`,
        spec: { url: `${registry!.url}/app`, ref: { tag: 'v1.0.0' }, insecure: true, interval: '1h' },
      })),
    });
    console.log(row({ ...ociResult, phase: `${n} OCIRepositories` }));
  }

  bigRepo = await startChartRepo();
  const index = generateIndex(INDEX_BYTES, bigRepo.url);
  bigRepo.writeIndex(index.text);
  const indexSize = statSync(join(bigRepo.dir, 'index.yaml')).size;
  const indexResult = await measure({
    cluster,
    kc,
    api,
    core,
    name: 'index',
    plural: 'helmrepositories',
    objects: [
      {
        kind: 'HelmRepository',
        plural: 'helmrepositories',
        name: 'big',
        spec: { type: 'default', url: bigRepo.url, interval: '1h', timeout: '5m' },
      },
    ],
    extraFlags:
      indexSize > DEFAULT_INDEX_MAX ? [`--helm-index-max-size=${Math.ceil(indexSize / 1024 ** 2) + 1}Mi`] : [],
  });
  const label = `index.yaml ${(indexSize / 1e6).toFixed(1)} MB (${(indexSize / 1024 ** 2).toFixed(1)} MiB)`;
  console.log(row({ ...indexResult, phase: `1 HelmRepository, ${label}` }));
  console.log(
    `  (the index: ${index.charts} charts × ${index.versions / index.charts} versions = ${index.versions} entries` +
      `${indexSize > DEFAULT_INDEX_MAX ? `, with --helm-index-max-size above the default 50Mi` : ''})`,
  );
  console.log(
    'Flux reference (Flux 2.9 source-controller, 16 cores): ' +
      '100 HelmCharts 36s / 63 MiB; 500 HelmCharts 2m33s / 123 MiB',
  );
} finally {
  setTestCluster(undefined);
  await Promise.all([charts?.close(), bigRepo?.close(), registry?.stop()]);
  for (const repo of [charts, bigRepo]) if (repo) rmSync(repo.dir, { recursive: true, force: true });
  await cluster.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
