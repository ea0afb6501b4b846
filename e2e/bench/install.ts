// Split vs combined (make bench-install): the memory of tide-controller installed as the chart's
// split Deployments (one process per controller: source, kustomize, helm, image) against its
// combined mode (one process, --controllers=all), for docs/install.md. Each mode on a fresh local
// control plane, the processes started with default flags (startTide of support.ts):
//   1. idle: VmRSS of each process once its informers have synced (/readyz answers 200), and again
//      after BENCH_IDLE seconds (default 10) with nothing to do: the figure a quiet cluster pays;
//   2. N=BENCH_N (default 100) Kustomizations of the benchmark fleet (fleet.ts), each from the one
//      GitRepository, until all are Ready: VmRSS then and the peak so far (VmHWM).
// The RSS of the processes each one started (the Helm helper tide-helm) is shown beside its own.
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { startGitHttpServer } from '../support/git/http-server.ts';
import { createFleet, createFleetRepo, KS_PATH, ksNames } from './fleet.ts';
import { childPids, type Proc, progress, readyNow, startTide, statusMiB, watchUntil } from './support.ts';

const N = Number(process.env.BENCH_N ?? 100);
const IDLE_MS = Number(process.env.BENCH_IDLE ?? 10) * 1000;

const MODES = [
  { name: 'split', processes: ['source', 'kustomize', 'helm', 'image'] },
  { name: 'combined', processes: ['all'] },
] as const;

interface Sample {
  rss: number;
  /** RssAnon: the process's own memory (heap, stacks); the rest of RSS is file pages (node, libraries). */
  anon: number;
  /** Pss: RSS with each shared page divided among the processes that map it. */
  pss: number;
  peak: number;
  /** The RSS of its child processes (tide-helm). */
  children: number;
}

/** A field of /proc/<pid>/<file> in MiB, 0 when the process is gone. */
function procMiB(pid: number, file: 'status' | 'smaps_rollup', field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function sample(p: Proc): Sample {
  return {
    rss: statusMiB(p.pid, 'VmRSS'),
    anon: procMiB(p.pid, 'status', 'RssAnon'),
    pss: procMiB(p.pid, 'smaps_rollup', 'Pss'),
    peak: statusMiB(p.pid, 'VmHWM'),
    children: childPids(p.pid).reduce((sum, pid) => sum + statusMiB(pid, 'VmRSS'), 0),
  };
}

interface ModeResult {
  name: string;
  processes: readonly string[];
  synced: Sample[];
  idle: Sample[];
  readyMs: number;
  loaded: Sample[];
}

async function runMode(mode: (typeof MODES)[number]): Promise<ModeResult> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-install-'));
  const cluster = new LocalCluster({ stateDir });
  await cluster.start();
  const root = mkdtempSync(join(tmpdir(), 'tide-bench-repo-'));
  await createFleetRepo(root, N);
  const git = await startGitHttpServer({ root });
  const procs: Proc[] = [];
  try {
    const kc = shareConnections(new KubeConfig());
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCRDs(kc);

    progress(`${mode.name}: starting --controllers=${mode.processes.join(' | ')}`);
    for (const controllers of mode.processes) procs.push(await startTide(cluster, { controllers }));
    const synced = procs.map(sample);
    // Idle is a span of time with nothing to reconcile: this wait is the measurement.
    await sleep(IDLE_MS);
    const idle = procs.map(sample);

    progress(`${mode.name}: ${N} Kustomizations until Ready`);
    const ready = watchUntil({ kc, path: KS_PATH, names: ksNames(N), done: readyNow, procs: () => procs });
    const t = performance.now();
    await createFleet(kc.makeApiClient(CustomObjectsApi), git.url('fleet'), N);
    const reached = await ready.done;
    const readyMs = Math.max(...[...reached.values()].map((r) => r.at)) - t;
    return { name: mode.name, processes: mode.processes, synced, idle, readyMs, loaded: procs.map(sample) };
  } finally {
    for (const p of procs) await p.stop();
    await git.close();
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

const mb = (mib: number) => `${Math.round(mib)} MB`;
/** RSS / its anonymous part, and the children's RSS when there are any. */
const cell = (s: Sample) =>
  `${Math.round(s.rss)} / ${Math.round(s.anon)} MB${s.children > 0 ? ` + ${mb(s.children)}` : ''}`;
const total = (samples: Sample[]): Sample => ({
  rss: samples.reduce((a, s) => a + s.rss, 0),
  anon: samples.reduce((a, s) => a + s.anon, 0),
  pss: samples.reduce((a, s) => a + s.pss, 0),
  peak: samples.reduce((a, s) => a + s.peak, 0),
  children: samples.reduce((a, s) => a + s.children, 0),
});

const COLUMNS = [
  ['tide-controller', 31],
  ['synced RSS / anon', 17],
  [`idle ${IDLE_MS / 1000}s later`, 17],
  [`N=${N} all Ready`, 15],
  [`N=${N} RSS / anon`, 17],
  [`N=${N} peak`, 10],
] as const;

function line(cells: readonly string[]): string {
  return cells.map((c, i) => c.padEnd(COLUMNS[i]![1])).join(' | ');
}

function table(results: ModeResult[]): void {
  console.log(`\nMemory of each tide-controller process, ${availableParallelism()} cores:`);
  console.log(line(COLUMNS.map(([name]) => name)));
  for (const r of results) {
    const rows = r.processes.map((name, i) => ({
      label: `${r.name}: --controllers=${name}`,
      synced: r.synced[i]!,
      idle: r.idle[i]!,
      loaded: r.loaded[i]!,
    }));
    if (rows.length > 1)
      rows.push({ label: `${r.name}: sum`, synced: total(r.synced), idle: total(r.idle), loaded: total(r.loaded) });
    for (const row of rows)
      console.log(
        line([
          row.label,
          cell(row.synced),
          cell(row.idle),
          row === rows.at(-1) ? `${(r.readyMs / 1000).toFixed(1)}s` : '',
          cell(row.loaded),
          mb(row.loaded.peak),
        ]),
      );
    const [idle, loaded] = [total(r.idle), total(r.loaded)];
    console.log(
      `${r.name}: PSS (shared pages divided among the processes) idle ${mb(idle.pss)}, N=${N} ${mb(loaded.pss)}`,
    );
  }
  for (const text of [
    'RSS / anon: VmRSS and its RssAnon part (heap, stacks: what no other process shares; the rest is file pages',
    '  of node and its libraries, shared by processes of one image on one node); + the tide-helm children, if any.',
    'synced: once /readyz answered (informers synced); idle: the same after the idle span.',
    `N=${N}: ${N} Kustomizations (prune, wait) from one GitRepository, from their creation until all Ready;`,
    "  RSS then, and peak: VmHWM (for split the sum of the processes' peaks, an upper bound of their peak together).",
  ])
    console.log(text);
}

console.log(
  'tide install benchmark: split (one process per controller) vs combined (--controllers=all), ' +
    `Node ${process.version}, ${availableParallelism()} cores, a fresh cluster per mode`,
);
const results: ModeResult[] = [];
try {
  for (const mode of MODES) {
    const r = await runMode(mode);
    results.push(r);
    console.log(
      `${r.name}: idle RSS ${cell(total(r.idle))}, N=${N} all Ready in ${(r.readyMs / 1000).toFixed(1)}s, ` +
        `then ${cell(total(r.loaded))}`,
    );
  }
} finally {
  if (results.length) table(results);
}
