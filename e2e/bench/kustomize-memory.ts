// Where the memory of tide-controller (--controllers=source,kustomize) goes: the setup of
// e2e/bench/kustomize.ts (N Kustomizations from one GitRepository, --concurrent=10), with a small
// preload in the controller that samples process.memoryUsage() and the V8 heap spaces, and on
// SIGUSR2 collects garbage (with --expose-gc) and records the live heap. Prints peak RSS, the
// parts of memory at the peak, the live heap once all are Ready, and RSS / live heap after each of
// BENCH_RESYNCS (default 10) no-op resyncs: a leak check.
//   BENCH_SIZES=200 node e2e/bench/kustomize-memory.ts
//   BENCH_NODE_ARGS='--max-semi-space-size=2'  extra node flags for the controller
//   BENCH_SNAPSHOT=/tmp/ks                      heap snapshots (after Ready, after the last resync)
//   BENCH_MAIN=dist/controllers/main.js         the built controller instead of the TypeScript sources
//   BENCH_ENV='NAME=value,...'                  extra environment for the controller
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { startGitHttpServer } from '../support/git/http-server.ts';
import { freePort } from '../support/net.ts';
import { createFleet, createFleetRepo, KS_PATH, ksNames, requestReconcile } from './fleet.ts';
import { batched, type Proc, readyNow, startProc, type Watched, watchUntil } from './support.ts';

const SIZES = (process.env.BENCH_SIZES ?? '200').split(',').map(Number);
const RESYNCS = Number(process.env.BENCH_RESYNCS ?? 10);
const MB = 1024 * 1024;

const PROBE = `
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import v8 from 'node:v8';
const out = process.env.MEMPROBE_OUT;
const t0 = Date.now();
function sample(tag) {
  const u = process.memoryUsage();
  const hwm = Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  appendFileSync(out, JSON.stringify({ tag, t: Date.now() - t0, ...u, hwm, spaces }) + '\\n');
}
setInterval(() => sample('s'), 200).unref();
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  globalThis.gc?.();
  sample('gc');
  if (existsSync(out + '.snap')) {
    v8.writeHeapSnapshot(readFileSync(out + '.snap', 'utf8'));
    rmSync(out + '.snap');
  }
  appendFileSync(out, JSON.stringify({ tag: 'ack' }) + '\\n');
  process.stderr.write('memprobe: recorded\\n');
});
`;

interface Sample {
  tag: string;
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  hwm: number;
  spaces: Record<string, number>;
}

function samples(file: string): Sample[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Sample);
}

/** CPU seconds the process used so far (user + system). */
function cpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const mb = (n: number) => `${(n / MB).toFixed(0)}`.padStart(4);
function parts(s: Sample): string {
  const sp = s.spaces;
  return (
    `rss ${mb(s.rss)}  heapTotal ${mb(s.heapTotal)} (new ${mb(sp.new_space ?? 0)} old ${mb(sp.old_space ?? 0)} ` +
    `code ${mb(sp.code_space ?? 0)} large ${mb((sp.large_object_space ?? 0) + (sp.new_large_object_space ?? 0))}) ` +
    `heapUsed ${mb(s.heapUsed)}  external ${mb(s.external)} (arrayBuffers ${mb(s.arrayBuffers)})  ` +
    `rest ${mb(s.rss - s.heapTotal - s.external)}`
  );
}

/** Asks the controller for a GC and a record of the live heap; waits until it says it wrote one. */
async function collect(controller: Proc, file: string, snapshot?: string): Promise<Sample> {
  if (snapshot) writeFileSync(`${file}.snap`, snapshot);
  const recorded = Promise.withResolvers<void>();
  const unlisten = controller.listen((line) => line === 'memprobe: recorded' && recorded.resolve());
  const exitCheck = setInterval(
    () => controller.exited() && recorded.reject(new Error('tide-controller exited')),
    1000,
  );
  try {
    process.kill(controller.pid, 'SIGUSR2');
    await recorded.promise;
  } finally {
    unlisten();
    clearInterval(exitCheck);
  }
  return samples(file)
    .filter((s) => s.tag === 'gc')
    .at(-1)!;
}

async function runSize(n: number): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tide-bench-mem-'));
  const cluster = new LocalCluster({ stateDir });
  await cluster.start();
  const root = mkdtempSync(join(tmpdir(), 'tide-bench-mem-repo-'));
  await createFleetRepo(root, n);
  const git = await startGitHttpServer({ root });
  try {
    const kc = shareConnections(new KubeConfig());
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCRDs(kc);
    const api = kc.makeApiClient(CustomObjectsApi);
    await createFleet(api, git.url('fleet'), n);

    const probe = join(stateDir, 'probe.mjs');
    writeFileSync(probe, PROBE);
    const out = join(stateDir, 'samples.jsonl');
    writeFileSync(out, '');
    const storage = await freePort();
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const extraEnv = Object.fromEntries(
      (process.env.BENCH_ENV ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    // The controller may exit before the wait resolves: the wait fails then.
    let started: Proc | undefined;
    const ready = watchUntil({
      kc,
      path: KS_PATH,
      names: ksNames(n),
      done: readyNow,
      procs: () => (started ? [started] : []),
    });
    const t = performance.now();
    const controller = await startProc({
      name: 'tide-controller',
      command: process.execPath,
      args: [
        '--expose-gc',
        `--import=${probe}`,
        ...nodeArgs,
        join(import.meta.dirname, '..', '..', process.env.BENCH_MAIN ?? 'controllers/main.ts'),
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
      env: { ...extraEnv, MEMPROBE_OUT: out },
    });
    started = controller;
    const pid = controller.pid;
    await ready.done;
    const readyMs = performance.now() - t;
    const readyCpu = cpu(pid);
    const peakToReady = samples(out).filter((s) => s.tag === 's');
    const peak = peakToReady.reduce((a, b) => (b.rss > a.rss ? b : a));
    const hwmReady = peakToReady.at(-1)!.hwm;
    const snap = process.env.BENCH_SNAPSHOT;
    const atReady = await collect(controller, out, snap && `${snap}-n${n}-ready.heapsnapshot`);

    const rows: string[] = [];
    for (let r = 1; r <= RESYNCS; r++) {
      const at = new Date().toISOString();
      const tr = performance.now();
      const c0 = cpu(pid);
      const handled = watchUntil<Watched & { status?: { lastHandledReconcileAt?: string } }>({
        kc,
        path: KS_PATH,
        names: ksNames(n),
        done: (k) => k.status?.lastHandledReconcileAt === at,
        procs: () => [controller],
      });
      await handled.synced;
      await batched(n, (i) => requestReconcile(api, at, `app-${i}`));
      await handled.done;
      const ms = performance.now() - tr;
      const used = cpu(pid) - c0;
      const s = await collect(
        controller,
        out,
        r === RESYNCS && snap ? `${snap}-n${n}-resync${r}.heapsnapshot` : undefined,
      );
      rows.push(
        `  resync ${String(r).padStart(2)} ${(ms / 1000).toFixed(1).padStart(5)}s (CPU ${used.toFixed(1)}s)  ` +
          `peak RSS ${mb(s.hwm)}  ` +
          `after GC: ${parts(s)}`,
      );
    }
    const all = samples(out).filter((s) => s.tag === 's');
    const hwm = all.at(-1)!.hwm;
    await controller.stop();
    console.log(
      `N=${n}: all Ready ${(readyMs / 1000).toFixed(1)}s (controller CPU ${readyCpu.toFixed(1)}s), ` +
        `peak RSS until Ready ${mb(hwmReady)} MB`,
    );
    console.log(`  at the sampled peak (t=${(peak.t / 1000).toFixed(1)}s): ${parts(peak)}`);
    console.log(`  all Ready, after GC:  ${parts(atReady)}`);
    for (const r of rows) console.log(r);
    console.log(`  peak RSS overall ${mb(hwm)} MB`);
    if (process.env.BENCH_KEEP_SAMPLES) writeFileSync(process.env.BENCH_KEEP_SAMPLES, readFileSync(out));
  } finally {
    await git.close();
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

console.log(`tide kustomize memory: Node ${process.version}, --concurrent=10, ${RESYNCS} no-op resyncs`);
for (const n of SIZES) await runSize(n);
