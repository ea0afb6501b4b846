// Benchmark of the image controller (make bench-image): ImageRepository, ImagePolicy and
// ImageUpdateAutomation of tide-controller --controllers=source,image against one repository of
// BENCH_TAGS (default 10000) tags in the CNCF distribution registry (e2e/support/registry.ts), on one
// local cluster. The tags are a mix: semver (1.2.3, v1.2.3, 1.2.3-rc.1), timestamped builds
// (main-<sha7>-<unix seconds>, a few pr-<n>-<sha7>-<unix seconds>) and noise (latest,
// sha256-<hex>.sig …); one small image (config and layer blobs uploaded once) is pushed by PUTting
// its manifest under every tag, 16 at a time.
// Phases, one controller process throughout:
//   1. scan: an ImageRepository (interval 24h) created until status.lastScanResult.tagCount is set,
//      then a requested rescan (reconcile.fluxcd.io/requestedAt) of the unchanged tags until
//      status.lastHandledReconcileAt answers it (median of BENCH_RESCANS, default 3);
//   2. policies: one ImagePolicy of each type (semver, semver with prereleases, alphabetical and
//      numerical asc/desc over the timestamps of the main-… tags), each created alone until
//      status.latestRef is set; beside it, in this process, compileFilter + selectLatest over the
//      same tags (median of BENCH_RUNS, default 20), which must pick the same tag;
//   3. automations: BENCH_AUTOMATIONS (default 100) ImageUpdateAutomations on one git repository
//      (git http-backend, e2e/support/git/http-server.ts), one directory and one ImagePolicy each,
//      all pushing to main: the policies created at once until each has a latestRef, then the
//      automations created at once until each has pushed (status.lastPushCommit), main checked
//      with the git CLI, the push attempts counted at the git server, the failed runs (a push
//      refused 3 times because main kept moving) in the controller's log; then a requested re-run
//      of all of them with nothing to change, twice.
// Each row: the time end to end (watches, no polling), the controller's peak RSS during the phase
// (VmHWM, reset at its start through /proc/<pid>/clear_refs), and the API requests the phase made
// (the API server's own count, without the control plane's background traffic and this
// benchmark's requests). Figures are printed, not asserted.
// BENCH_LOG=<file> BENCH_LOG_LEVEL=debug keeps the controller's log for a look.
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compileFilter,
  type FilterTags,
  type PolicyChoice,
  selectLatest,
} from '../../controllers/image/policy/policy.ts';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { setTestCluster } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { startGitHttpServer } from '../support/git/http-server.ts';
import { createRepo, git, revParse } from '../support/git/repos.ts';
import {
  ociManifestMediaType,
  pushArtifact,
  pushManifest,
  startRegistry,
  type TestRegistry,
} from '../support/registry.ts';
import { apiRequests as requests, type Proc, startTide, statusMiB, type Watched, watchUntil } from './support.ts';

const TAGS = Number(process.env.BENCH_TAGS ?? 10000);
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const RESCANS = Number(process.env.BENCH_RESCANS ?? 3);
const PUSH_CONCURRENCY = 16;
const IMAGE = 'image.toolkit.fluxcd.io';
const NS = 'bench-image';
const REPO = 'team/app';
const REPOSITORY_NAME = 'app';
const CONTROLLERS = 'source,image';
/** Flux's default spec.exclusionList of an ImageRepository. */
const DEFAULT_EXCLUSION = /^.*\.sig$/;

/** One row of the table. */
interface Row {
  phase: string;
  /** End to end through the controller. */
  ms: number;
  /** In this process (policies: compileFilter + selectLatest, median). */
  inProcessMs?: number;
  /** Peak RSS of the controller during the phase. */
  rssMiB: number;
  requests: number;
  result: string;
}

// ---- tags -----------------------------------------------------------------------------------

const hex = (seed: string, length: number) => createHash('sha256').update(seed).digest('hex').slice(0, length);

/**
 * `n` distinct tags: half semver (a quarter of those v-prefixed, a quarter prereleases, some 0.x),
 * 40% timestamped builds (mostly main-<sha7>-<ts>, every fifth pr-<n>-<sha7>-<ts>), the rest noise
 * (half of it sha256-<hex>.sig, which the ImageRepository's default exclusionList leaves out).
 */
function generateTags(n: number): string[] {
  const semver = Math.floor(n * 0.5);
  const builds = Math.floor(n * 0.4);
  const tags: string[] = [];
  for (let i = 0; i < semver; i++) {
    // i = 260 patch + 13 minor + major: distinct versions, majors 0 to 12 at any n.
    const version = `${i % 13}.${Math.floor(i / 13) % 20}.${Math.floor(i / 260)}`;
    const form = i % 4;
    // The last is the only 13.x: a prerelease above every release.
    if (i === semver - 1) tags.push('13.0.0-rc.1');
    else tags.push(form === 2 ? `v${version}` : form === 3 ? `${version}-rc.${1 + (i % 3)}` : version);
  }
  for (let i = 0; i < builds; i++) {
    const ts = 1_700_000_000 + i * 600;
    tags.push(i % 5 === 4 ? `pr-${100 + i}-${hex(`pr${i}`, 7)}-${ts}` : `main-${hex(`main${i}`, 7)}-${ts}`);
  }
  const fixed = ['latest', 'stable', 'edge', 'nightly'];
  for (let i = 0; tags.length < n; i++) {
    tags.push(i < fixed.length ? fixed[i]! : `sha256-${hex(`sig${i}`, 64)}.${i % 2 ? 'sig' : 'att'}`);
  }
  return tags;
}

/** Runs `fn` over `items`, `concurrency` at a time. */
async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Pushes one small image as `tags[0]` (its blobs uploaded once), then PUTs the same manifest under
 * every other tag. Returns the milliseconds it took.
 */
async function pushTags(registry: TestRegistry, tags: readonly string[]): Promise<number> {
  const t = performance.now();
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: ['/app'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${hex('layer', 64)}`] },
  });
  const digest = await pushArtifact(registry, REPO, tags[0]!, {
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', bytes: config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', bytes: 'layer' }],
  });
  // The manifest's exact bytes, so every tag names the same digest.
  const res = await fetch(`${registry.origin}/v2/${REPO}/manifests/${digest}`, {
    headers: { accept: ociManifestMediaType },
  });
  if (res.status !== 200) throw new Error(`GET manifest ${digest} answered ${res.status}`);
  const manifest = Buffer.from(await res.arrayBuffer());
  await pool(tags.slice(1), PUSH_CONCURRENCY, (tag) =>
    pushManifest(registry, REPO, tag, manifest, ociManifestMediaType),
  );
  return performance.now() - t;
}

// ---- measuring ------------------------------------------------------------------------------

/** CPU seconds: of process `pid` (user + system), and of the whole machine busy and in all. */
function cpuSeconds(pid: number): { process: number; busy: number; total: number } {
  // Clock ticks (USER_HZ, 100 on Linux); the fields after the command name, which may hold spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + cpu[4]!;
  const total = cpu.slice(0, 8).reduce((x, y) => x + y, 0);
  return { process: (Number(fields[11]) + Number(fields[12])) / 100, busy: (total - idle) / 100, total: total / 100 };
}

/**
 * Resets the peak RSS (VmHWM) of a process to its current RSS, so that the next reading is the
 * peak since now; false where the kernel does not allow it (the reading is then the peak so far).
 */
function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

type Controller = Proc & { metricsUrl: string };

/**
 * tide-controller --controllers=source,image (the source controller only for the GitRepository an
 * ImageUpdateAutomation reads its URL from), with its metrics endpoint.
 */
async function startController(cluster: LocalCluster): Promise<Controller> {
  const c = await startTide(cluster, { controllers: CONTROLLERS, metrics: true });
  return { ...c, metricsUrl: c.metricsUrl! };
}

type ImageObject = Watched & {
  status?: {
    lastHandledReconcileAt?: string;
    lastScanResult?: { tagCount?: number; revision?: string };
    latestRef?: { name: string; tag: string };
    lastPushCommit?: string;
    observedSourceRevision?: string;
  };
};

/**
 * Watches one object of `plural` in NS until `done` holds for it (or throws: a failure to report);
 * returns the object and the milliseconds since `t`. One watch, no polling: the time is when the
 * status turned. (Without a resourceVersion the watch starts with the object as it is, so it may
 * be opened after the change it waits for was asked for.)
 */
async function waitFor(
  b: Bench,
  plural: string,
  name: string,
  done: (o: ImageObject) => boolean,
  t: number,
): Promise<{ obj: ImageObject; ms: number }> {
  const { objs, ms } = await waitForAll(b, plural, [name], done, t, { fieldSelector: `metadata.name=${name}` });
  return { obj: objs.get(name)!, ms };
}

/**
 * waitFor for many objects at once, over one watch of `plural` in NS (narrowed by `query`): until
 * `done` holds for each of `names`. Returns each object as it was then, the milliseconds since `t`
 * each took, and the time of the last.
 */
async function waitForAll(
  b: Bench,
  plural: string,
  names: readonly string[],
  done: (o: ImageObject) => boolean,
  t: number,
  query: { fieldSelector?: string; labelSelector?: string } = {},
): Promise<{ objs: Map<string, ImageObject>; times: Map<string, number>; ms: number }> {
  const path = `/apis/${IMAGE}/v1/namespaces/${NS}/${plural}`;
  const reached = await watchUntil<ImageObject>({ kc: b.kc, path, names, done, query, procs: () => [b.controller] })
    .done;
  const objs = new Map<string, ImageObject>();
  const times = new Map<string, number>();
  for (const [name, r] of reached) {
    objs.set(name, r.obj);
    times.set(name, r.at - t);
  }
  return { objs, times, ms: Math.max(...times.values()) };
}

/** Throws when the object reports a failure it will not get past by itself soon. */
function failure(o: ImageObject): void {
  const c = o.status?.conditions?.find((x) => x.type === 'Stalled' && x.status === 'True');
  const ready = o.status?.conditions?.find((x) => x.type === 'Ready' && x.status === 'False');
  const bad = c ?? (ready && ready.reason !== 'DependencyNotReady' ? ready : undefined);
  if (bad) throw new Error(`${o.metadata.name}: ${bad.reason}: ${bad.message}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ---- phases ---------------------------------------------------------------------------------

/** What every phase works with; each appends its rows. */
interface Bench {
  cluster: LocalCluster;
  kc: KubeConfig;
  api: CustomObjectsApi;
  controller: Controller;
  registry: TestRegistry;
  /** The tags pushed, as the registry lists them (lexically sorted). */
  tags: string[];
  /** The tags a scan keeps: without those the default exclusionList (`^.*\.sig$`) matches. */
  scanned: string[];
  rows: Row[];
}

/**
 * Runs `body` (which returns the row without its RSS and request count, how many API requests it
 * made itself, over how many runs to spread the rest, and lines to print below the row) with the
 * controller's peak RSS reset and the API server's count taken around it.
 */
async function measure(
  b: Bench,
  body: () => Promise<{ row: Omit<Row, 'rssMiB' | 'requests'>; own: number; runs?: number; notes?: string[] }>,
): Promise<Row> {
  resetPeakRss(b.controller.pid);
  const before = await requests(b.cluster);
  const { row, own, runs = 1, notes = [] } = await body();
  // +1: the scrape that took `before` is counted in the next one.
  const calls = (await requests(b.cluster)) - before - own - 1;
  const full = { ...row, rssMiB: statusMiB(b.controller.pid, 'VmHWM'), requests: Math.round(calls / runs) };
  b.rows.push(full);
  console.log(formatRow(full));
  for (const line of notes) console.log(`  ${line}`);
  return full;
}

/** Phase 1: the first scan of the repository, then requested rescans of the unchanged tags. */
async function benchScan(b: Bench): Promise<void> {
  await measure(b, async () => {
    const t = performance.now();
    await b.api.createNamespacedCustomObject({
      group: IMAGE,
      version: 'v1',
      plural: 'imagerepositories',
      namespace: NS,
      body: {
        apiVersion: `${IMAGE}/v1`,
        kind: 'ImageRepository',
        metadata: { name: REPOSITORY_NAME },
        spec: { image: `${b.registry.host}/${REPO}`, interval: '24h', insecure: true },
      },
    });
    const { obj, ms } = await waitFor(
      b,
      'imagerepositories',
      REPOSITORY_NAME,
      (o) => {
        failure(o);
        return o.status?.lastScanResult?.tagCount !== undefined;
      },
      t,
    );
    return {
      row: { phase: `scan, ${b.tags.length} tags`, ms, result: `${obj.status!.lastScanResult!.tagCount} tags kept` },
      own: 2, // the create, the watch
    };
  });

  await measure(b, async () => {
    const times: number[] = [];
    let count = 0;
    for (let i = 0; i < RESCANS; i++) {
      const at = `bench-rescan-${i}-${Date.now()}`;
      const t = performance.now();
      await b.api.patchNamespacedCustomObject(
        {
          group: IMAGE,
          version: 'v1',
          plural: 'imagerepositories',
          namespace: NS,
          name: REPOSITORY_NAME,
          body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': at } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const { obj, ms } = await waitFor(
        b,
        'imagerepositories',
        REPOSITORY_NAME,
        (o) => o.status?.lastHandledReconcileAt === at,
        t,
      );
      times.push(ms);
      count = obj.status?.lastScanResult?.tagCount ?? 0;
    }
    return {
      row: { phase: `rescan, unchanged (median of ${RESCANS})`, ms: median(times), result: `${count} tags` },
      own: 2 * RESCANS, // a patch and a watch each
      runs: RESCANS, // the table shows the requests of one rescan
    };
  });
}

/** The ImagePolicies of phase 2, one of each type. */
const TIMESTAMPS: FilterTags = { pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)', extract: '$ts' };
const POLICIES: { name: string; label: string; policy: PolicyChoice; filterTags?: FilterTags }[] = [
  { name: 'semver', label: 'semver >=1.0.0', policy: { semver: { range: '>=1.0.0' } } },
  { name: 'semver-pre', label: 'semver >=1.0.0-0 (prereleases)', policy: { semver: { range: '>=1.0.0-0' } } },
  {
    name: 'alpha-asc',
    label: 'alphabetical asc, $ts of main-…',
    policy: { alphabetical: { order: 'asc' } },
    filterTags: TIMESTAMPS,
  },
  {
    name: 'alpha-desc',
    label: 'alphabetical desc, $ts of main-…',
    policy: { alphabetical: { order: 'desc' } },
    filterTags: TIMESTAMPS,
  },
  {
    name: 'num-asc',
    label: 'numerical asc, $ts of main-…',
    policy: { numerical: { order: 'asc' } },
    filterTags: TIMESTAMPS,
  },
  {
    name: 'num-desc',
    label: 'numerical desc, $ts of main-…',
    policy: { numerical: { order: 'desc' } },
    filterTags: TIMESTAMPS,
  },
];

/** compileFilter + selectLatest over `tags`, RUNS times after two to warm up: the median and the tag. */
function microbench(p: (typeof POLICIES)[number], tags: readonly string[]): { ms: number; tag: string | undefined } {
  let tag: string | undefined;
  const times: number[] = [];
  for (let i = -2; i < RUNS; i++) {
    const t = performance.now();
    try {
      tag = selectLatest(p.policy, compileFilter(p.filterTags)(tags));
    } catch (err) {
      tag = `error: ${(err as Error).message}`;
    }
    if (i >= 0) times.push(performance.now() - t);
  }
  return { ms: median(times), tag };
}

/** Phase 2: each ImagePolicy created alone until it has a latestRef, and the same choice in-process. */
async function benchPolicies(b: Bench): Promise<void> {
  for (const p of POLICIES) {
    const local = microbench(p, b.scanned);
    await measure(b, async () => {
      const t = performance.now();
      await b.api.createNamespacedCustomObject({
        group: IMAGE,
        version: 'v1',
        plural: 'imagepolicies',
        namespace: NS,
        body: {
          apiVersion: `${IMAGE}/v1`,
          kind: 'ImagePolicy',
          metadata: { name: p.name },
          spec: {
            imageRepositoryRef: { name: REPOSITORY_NAME },
            policy: p.policy,
            ...(p.filterTags ? { filterTags: p.filterTags } : {}),
          },
        },
      });
      const { obj, ms } = await waitFor(
        b,
        'imagepolicies',
        p.name,
        (o) => {
          failure(o);
          return o.status?.latestRef !== undefined;
        },
        t,
      );
      const tag = obj.status!.latestRef!.tag;
      const result = tag === local.tag ? tag : `${tag} (in-process: ${local.tag} MISMATCH)`;
      return { row: { phase: `policy ${p.label}`, ms, inProcessMs: local.ms, result }, own: 2 };
    });
  }
}

// ---- phase 3: automations -------------------------------------------------------------------

const AUTOMATIONS = Number(process.env.BENCH_AUTOMATIONS ?? 100);
const SOURCE = 'source.toolkit.fluxcd.io';
const GIT_AUTH = { username: 'bench', password: 'b3nch-pa55word' };
const AUTHOR = { name: 'Image Bot', email: 'image-bot@bench.invalid' };
/** The tag in the files before the automations run; no policy selects it. */
const OLD_TAG = '0.0.0';
const appName = (i: number) => `app-${i}`;

/** A Deployment whose image carries the `$imagepolicy` marker of the app's own ImagePolicy. */
function deploymentYaml(image: string, app: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    `  name: ${app}`,
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    `        - name: ${app}`,
    `          image: ${image}:${OLD_TAG} # {"$imagepolicy": "${NS}:${app}"}`,
    '',
  ].join('\n');
}

/** controller_runtime_reconcile_total of one controller by result (success, error, requeue_after …). */
async function reconciles(b: Bench, controller: string): Promise<Record<string, number>> {
  const text = await (await fetch(b.controller.metricsUrl)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^controller_runtime_reconcile_total\{(.*)\} (\S+)$/.exec(line);
    const labels = m?.[1] ?? '';
    if (!m || !labels.includes(`controller="${controller}"`)) continue;
    out[/result="([^"]*)"/.exec(labels)?.[1] ?? ''] = Number(m[2]);
  }
  return out;
}

const since = (after: Record<string, number>, before: Record<string, number>, result: string) =>
  (after[result] ?? 0) - (before[result] ?? 0);

/**
 * Throws when an automation reports a failure that is not the branch moving under its pushes (or
 * the git server under load): those it retries with backoff, and the watch counts them.
 */
function automationFailure(o: ImageObject): void {
  const stalledC = o.status?.conditions?.find((x) => x.type === 'Stalled' && x.status === 'True');
  const ready = o.status?.conditions?.find((x) => x.type === 'Ready' && x.status === 'False');
  const retried = ['GitOperationFailed', 'DependencyNotReady'];
  const bad = stalledC ?? (ready && !retried.includes(ready.reason ?? '') ? ready : undefined);
  if (bad) throw new Error(`${o.metadata.name}: ${bad.reason}: ${bad.message}`);
}

/**
 * Phase 3: AUTOMATIONS (default 100) ImageUpdateAutomations on one git repository, each with its
 * own ImagePolicy (label app=app-<i>) and its own directory apps/app-<i>, all pushing to main: the
 * policies created until each has a latestRef, then the automations created at once until each
 * has pushed (status.lastPushCommit), checked with the git CLI; then a requested re-run of all of
 * them with nothing to change, twice (the first finds main moved since most of them pushed and
 * fetches it; the second skips at the ref listing).
 */
async function benchAutomations(b: Bench): Promise<void> {
  const names = Array.from({ length: AUTOMATIONS }, (_, i) => appName(i));
  const image = `${b.registry.host}/${REPO}`;
  const root = mkdtempSync(join(tmpdir(), 'tide-bench-git-'));
  /** performance.now() of each push (authenticated POST …/git-receive-pack) as it reaches git. */
  const pushedAt: number[] = [];
  const server = await startGitHttpServer({
    root,
    auth: GIT_AUTH,
    beforeBackend: async ({ method, path }) => {
      if (method === 'POST' && path.endsWith('/git-receive-pack')) pushedAt.push(performance.now());
    },
  });
  const bare = join(root, 'fleet.git');
  /** Requests of the git server since `from` (an index of server.requests) by kind, answered 200. */
  const gitRequests = (from: number) => {
    const ok = server.requests.slice(from).filter((r) => r.status === 200);
    return {
      pushes: ok.filter((r) => r.method === 'POST' && r.path.endsWith('/git-receive-pack')).length,
      fetches: ok.filter((r) => r.method === 'POST' && r.path.endsWith('/git-upload-pack')).length,
      listings: ok.filter((r) => r.method === 'GET' && r.path.endsWith('/info/refs')).length,
      unauthorized: server.requests.slice(from).filter((r) => r.status === 401).length,
    };
  };
  try {
    const files = Object.fromEntries(names.map((n) => [`apps/${n}/deploy.yaml`, deploymentYaml(image, n)]));
    const base = (await createRepo(root, 'fleet', { files: { ...files, 'README.md': 'fleet\n' } })).commit;
    await b.kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'git' }, stringData: GIT_AUTH },
    });
    await b.api.createNamespacedCustomObject({
      group: SOURCE,
      version: 'v1',
      plural: 'gitrepositories',
      namespace: NS,
      body: {
        apiVersion: `${SOURCE}/v1`,
        kind: 'GitRepository',
        metadata: { name: 'fleet' },
        spec: { url: server.url('fleet'), interval: '1h', ref: { branch: 'main' }, secretRef: { name: 'git' } },
      },
    });

    let tag = '';
    await measure(b, async () => {
      const t = performance.now();
      const waiting = waitForAll(
        b,
        'imagepolicies',
        names,
        (o) => {
          failure(o);
          return o.status?.latestRef !== undefined;
        },
        t,
        { labelSelector: 'bench=automation' },
      );
      waiting.catch(() => {});
      await Promise.all(
        names.map((n) =>
          b.api.createNamespacedCustomObject({
            group: IMAGE,
            version: 'v1',
            plural: 'imagepolicies',
            namespace: NS,
            body: {
              apiVersion: `${IMAGE}/v1`,
              kind: 'ImagePolicy',
              metadata: { name: n, labels: { app: n, bench: 'automation' } },
              spec: { imageRepositoryRef: { name: REPOSITORY_NAME }, policy: { semver: { range: '>=1.0.0' } } },
            },
          }),
        ),
      );
      const { objs, ms } = await waiting;
      const tags = new Set([...objs.values()].map((o) => o.status!.latestRef!.tag));
      tag = [...tags][0]!;
      const result = tags.size === 1 ? `all at ${tag}` : `MISMATCH: ${[...tags].join(', ')}`;
      return { row: { phase: `${AUTOMATIONS} policies semver >=1.0.0`, ms, result }, own: AUTOMATIONS + 1 };
    });

    await measure(b, async () => {
      const from = server.requests.length;
      const firstPush = pushedAt.length;
      const before = await reconciles(b, 'imageupdateautomation');
      /** Automation → its failed runs, from the controller's log; failure message → how many. */
      const failed = new Map<string, number>();
      const messages = new Map<string, number>();
      const unlisten = b.controller.listen((line) => {
        if (!line.includes('"Reconciler error"') || !line.includes('"imageupdateautomation"')) return;
        const entry = JSON.parse(line) as { ImageUpdateAutomation?: { name: string }; error?: string };
        const name = entry.ImageUpdateAutomation?.name ?? '?';
        failed.set(name, (failed.get(name) ?? 0) + 1);
        const key = (entry.error ?? '').replace(/[0-9a-f]{40}/g, '<sha>').slice(0, 200);
        messages.set(key, (messages.get(key) ?? 0) + 1);
      });
      const cpu = cpuSeconds(b.controller.pid);
      const t = performance.now();
      const waiting = waitForAll(
        b,
        'imageupdateautomations',
        names,
        (o) => {
          automationFailure(o);
          return o.status?.lastPushCommit !== undefined;
        },
        t,
      );
      waiting.catch(() => {});
      await Promise.all(
        names.map((n) =>
          b.api.createNamespacedCustomObject({
            group: IMAGE,
            version: 'v1',
            plural: 'imageupdateautomations',
            namespace: NS,
            body: {
              apiVersion: `${IMAGE}/v1`,
              kind: 'ImageUpdateAutomation',
              metadata: { name: n },
              spec: {
                sourceRef: { kind: 'GitRepository', name: 'fleet' },
                interval: '1h',
                policySelector: { matchLabels: { app: n } },
                update: { strategy: 'Setters', path: `./apps/${n}` },
                git: { commit: { author: AUTHOR }, push: { branch: 'main' } },
              },
            },
          }),
        ),
      );
      const { times, ms } = await waiting;
      const cpuAfter = cpuSeconds(b.controller.pid);
      unlisten();
      const after = await reconciles(b, 'imageupdateautomation');
      const served = gitRequests(from);

      // What main holds: one automation commit per app on top of the first, every file at the new tag.
      const commits = (await git(['--git-dir', bare, 'log', `--author=${AUTHOR.email}`, '--format=%H', 'main']))
        .split('\n')
        .filter(Boolean).length;
      const onTop = Number(await git(['--git-dir', bare, 'rev-list', '--count', `${base}..main`]));
      const updated = (await git(['--git-dir', bare, 'grep', '-l', '-F', `${image}:${tag}`, 'main', '--', 'apps/']))
        .split('\n')
        .filter(Boolean).length;
      const ok = commits === AUTOMATIONS && onTop === AUTOMATIONS && updated === AUTOMATIONS;
      const refused = served.pushes - AUTOMATIONS;

      const sorted = [...times.values()].sort((x, y) => x - y);
      const at = (q: number) =>
        `${(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! / 1000).toFixed(1)}`;
      const pushes = pushedAt.slice(firstPush).map((p) => p - t);
      const gaps = pushes.slice(1).map((p, i) => p - pushes[i]!);
      const tenths = Array.from({ length: 10 }, (_, k) => pushes.filter((p) => Math.floor((p / ms) * 10) === k).length);
      const perAutomation = new Map<number, number>();
      for (const n of names) perAutomation.set(failed.get(n) ?? 0, (perAutomation.get(failed.get(n) ?? 0) ?? 0) + 1);
      const mostFailed = Math.max(0, ...failed.values());
      const result =
        `${commits} commits on main (${onTop} on top), ${updated} files at ${tag}${ok ? '' : ' MISMATCH'}; ` +
        `${(AUTOMATIONS / (ms / 1000)).toFixed(2)} pushes/s; ${served.pushes} push attempts (${refused} refused); ` +
        `${since(after, before, 'error')} failed runs`;
      const runs = Object.fromEntries(Object.keys(after).map((k) => [k, since(after, before, k)]));
      const notes = [
        `pushed at (s since the creates): first ${at(0)}, median ${at(0.5)}, p90 ${at(0.9)}, last ${at(1)}; ` +
          `push attempts per tenth of the time: ${tenths.join(' ')}; longest gap between two attempts ` +
          `${(Math.max(0, ...gaps) / 1000).toFixed(1)} s`,
        `reconciles ${JSON.stringify(runs)}; git requests: ${served.listings} ref listings, ` +
          `${served.fetches} fetches, ${served.pushes} pushes, ${served.unauthorized} answered 401`,
        `automations by failed runs: ${[...perAutomation]
          .sort(([x], [y]) => x - y)
          .map(([k, n]) => `${n} with ${k}`)
          .join(
            ', ',
          )} (after ${mostFailed}: ${((750 * (2 ** mostFailed - 1)) / 1000).toFixed(1)} s of backoff at least)`,
        `controller CPU ${(cpuAfter.process - cpu.process).toFixed(1)} s in ${(ms / 1000).toFixed(1)} s; machine ` +
          `${(((cpuAfter.busy - cpu.busy) / (cpuAfter.total - cpu.total)) * 100).toFixed(0)}% busy`,
        ...[...messages].map(([m, n]) => `  ${n} × ${m}`),
      ];
      return {
        row: { phase: `${AUTOMATIONS} automations, 1 repo: all pushed`, ms, result },
        own: AUTOMATIONS + 1, // the creates, the watch
        notes,
      };
    });

    // Nothing to change either time; the first finds main moved since all but the last pushed.
    for (const [i, label] of ['main moved', 'up-to-date'].entries()) {
      await measure(b, async () => {
        const tip = await revParse(bare, 'refs/heads/main');
        const listed = (await b.api.listNamespacedCustomObject({
          group: IMAGE,
          version: 'v1',
          plural: 'imageupdateautomations',
          namespace: NS,
        })) as { items: ImageObject[] };
        const current = listed.items.filter((o) => o.status?.observedSourceRevision === `main@sha1:${tip}`).length;
        const from = server.requests.length;
        const before = await reconciles(b, 'imageupdateautomation');
        const requestedAt = `bench-rerun-${i}-${Date.now()}`;
        const t = performance.now();
        const waiting = waitForAll(
          b,
          'imageupdateautomations',
          names,
          (o) => {
            automationFailure(o);
            return o.status?.lastHandledReconcileAt === requestedAt;
          },
          t,
        );
        waiting.catch(() => {});
        await Promise.all(
          names.map((name) =>
            b.api.patchNamespacedCustomObject(
              {
                group: IMAGE,
                version: 'v1',
                plural: 'imageupdateautomations',
                namespace: NS,
                name,
                body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': requestedAt } } },
              },
              setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
            ),
          ),
        );
        const { objs, ms } = await waiting;
        const after = await reconciles(b, 'imageupdateautomation');
        const served = gitRequests(from);
        const moved = (await revParse(bare, 'refs/heads/main')) !== tip;
        const notReady = [...objs.values()].filter(
          (o) => !o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length;
        const result =
          `${current} at main's tip before; ${served.fetches} fetched, ${served.pushes} pushed` +
          `${moved ? ' (main MOVED)' : ''}; ${since(after, before, 'error')} failed` +
          `${notReady ? `, ${notReady} not Ready` : ''}`;
        return { row: { phase: `${AUTOMATIONS} automations, re-run: ${label}`, ms, result }, own: AUTOMATIONS + 2 };
      });
    }
  } finally {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
}

// ---- output ---------------------------------------------------------------------------------

const HEADER =
  `${'phase'.padEnd(40)} ${'end to end'.padStart(10)}  ${'in-process'.padStart(10)}  ` +
  `${'peak RSS'.padStart(8)}  ${'API reqs'.padStart(8)}  result`;

function formatRow(r: Row): string {
  const time = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
  return (
    `${r.phase.padEnd(40)} ${time(r.ms).padStart(10)}  ` +
    `${(r.inProcessMs === undefined ? '-' : `${r.inProcessMs.toFixed(2)} ms`).padStart(10)}  ` +
    `${`${Math.round(r.rssMiB)} MiB`.padStart(8)}  ${String(r.requests).padStart(8)}  ${r.result}`
  );
}

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-image-'));
  const cluster = new LocalCluster({ stateDir });
  let registry: TestRegistry | undefined;
  let controller: Controller | undefined;
  try {
    await cluster.start();
    // registry.ts finds the registry binary in the test cluster's bin dir.
    setTestCluster(cluster);
    const kc = shareConnections(new KubeConfig());
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCRDs(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });

    registry = await startRegistry();
    const tags = generateTags(TAGS);
    const pushMs = await pushTags(registry, tags);
    controller = await startController(cluster);

    console.log(
      `tide image benchmark: kube-apiserver 1.36.3 + kwok on 127.0.0.1, Node ${process.version}, ` +
        `${availableParallelism()} cores, --controllers=${CONTROLLERS} --concurrent=10`,
    );
    console.log(
      `registry: CNCF distribution, ${REPO} with ${tags.length} tags of one image ` +
        `(pushed in ${(pushMs / 1000).toFixed(1)} s, ${PUSH_CONCURRENCY} manifest PUTs at a time); ` +
        `controller idle RSS ${Math.round(statusMiB(controller.pid, 'VmRSS'))} MiB` +
        `${resetPeakRss(controller.pid) ? '' : ' (peak RSS not resettable: the columns are peaks so far)'}`,
    );
    console.log(HEADER);
    const b: Bench = {
      cluster,
      kc,
      api: kc.makeApiClient(CustomObjectsApi),
      controller,
      registry,
      tags: [...tags].sort(),
      scanned: [...tags].sort().filter((t) => !DEFAULT_EXCLUSION.test(t)),
      rows: [],
    };

    await benchScan(b);
    await benchPolicies(b);
    await benchAutomations(b);

    console.log(`\nsummary (${tags.length} tags; in-process: compileFilter + selectLatest, median of ${RUNS})`);
    console.log(HEADER);
    for (const r of b.rows) console.log(formatRow(r));
    console.log(`controller peak RSS over the run: ${Math.round(Math.max(...b.rows.map((r) => r.rssMiB)))} MiB`);
  } finally {
    setTestCluster(undefined);
    await controller?.stop();
    await registry?.stop();
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
