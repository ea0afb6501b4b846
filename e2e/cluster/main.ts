// `make up` / `make down`: the local control plane plus tide-controller, detached, with all
// state in .tide/ so a later `down` (another process) finds and stops what `up` started.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { componentStopOrder, LocalCluster, repoRoot } from './cluster.ts';
import { portIsFree, recordedPid, spawnLogged, stopRecorded } from './process.ts';
import { errorMessage } from '../../controllers/runtime/api-errors.ts';

const stateDir = path.join(repoRoot, '.tide');
const kubeconfig = path.join(stateDir, 'kubeconfig');
const controller = 'tide-controller';
const controllerPorts = [
  { port: 8080, use: 'metrics' },
  { port: 9440, use: 'health probes' },
  { port: 9090, use: 'artifact storage' },
];
const stopOrder = [[controller], ...componentStopOrder];
/** Set once a signal started the teardown; the failures it causes in `up` are not worth reporting. */
let interrupted: Promise<unknown> | undefined;
const rel = (p: string) => path.relative(process.cwd(), p) || '.';

async function up(): Promise<void> {
  const running = stopOrder.flat().filter((name) => recordedPid(stateDir, name) !== undefined);
  if (running.length > 0) throw new Error(`already running (${running.join(', ')}); run \`make down\` first`);
  // Checked before anything starts, so a clash leaves nothing to clean up.
  for (const { port, use } of controllerPorts) {
    if (!(await portIsFree(port)))
      throw new Error(
        `port ${port} (${controller} ${use}) is in use; stop whatever listens on it (ss -ltnp 'sport = :${port}')`,
      );
  }

  // The components are detached from the terminal, so Ctrl-C during `up` must stop them itself.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping what was started`);
      interrupted = stopRecorded(stateDir, stopOrder).finally(() => process.exit(130));
    });
  }
  const cluster = new LocalCluster({ stateDir, kubeconfigPath: kubeconfig, detached: true });
  console.log(`starting the control plane in ${rel(stateDir)} ...`);
  await cluster.start();
  console.log(`control plane ready at ${cluster.server} in ${(cluster.startupMs / 1000).toFixed(1)}s`);
  const kubectl = path.join(cluster.binDir, 'kubectl');

  try {
    installCrds(kubectl);
    await startController(cluster.binDir);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n(the control plane is still running; \`make down\` stops it)`);
  }

  console.log(`
ready; logs in ${rel(cluster.logsDir)}/
  kubectl --kubeconfig ${rel(kubeconfig)} get kustomizations
kubectl is ${kubectl}
stop everything with \`make down\``);
}

function installCrds(kubectl: string): void {
  const dir = path.join(repoRoot, 'crds');
  const manifests = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)) : [];
  if (manifests.length === 0) {
    console.log('no CRDs in crds/ yet; skipping their installation');
    return;
  }
  const run = (args: string[]) => {
    try {
      execFileSync(kubectl, ['--kubeconfig', kubeconfig, ...args], { stdio: 'inherit' });
    } catch {
      throw new Error(`kubectl ${args.join(' ')} failed (its output is above)`);
    }
  };
  run(['apply', '--server-side', '-f', dir]);
  // Right after a start, kubectl's discovery can still miss the new CRDs; ask again before giving up.
  for (let attempt = 1; ; attempt++) {
    try {
      run(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
      return;
    } catch (err) {
      if (attempt === 3) throw err;
      execFileSync('sleep', ['2']);
    }
  }
}

async function startController(binDir: string): Promise<void> {
  const entry = path.join(repoRoot, 'controllers/main.ts');
  if (!fs.existsSync(entry)) throw new Error(`${rel(entry)} does not exist yet, so ${controller} cannot start`);
  // An absolute kubeconfig path puts the state dir in the command line, which is how `down`
  // recognises the process as ours.
  // The default ports, bound to loopback: the local control plane is for this machine only.
  const args = [
    entry,
    '--kubeconfig',
    kubeconfig,
    '--controllers=all',
    '--metrics-addr=127.0.0.1:8080',
    '--health-addr=127.0.0.1:9440',
    `--storage-path=${path.join(stateDir, 'storage')}`,
    '--storage-addr=127.0.0.1:9090',
    '--storage-adv-addr=127.0.0.1:9090',
    `--kustomize-path=${path.join(binDir, 'kustomize')}`,
    `--sops-path=${path.join(binDir, 'sops')}`,
    `--helm-helper-path=${path.join(binDir, 'tide-helm')}`,
  ];
  const proc = spawnLogged(controller, process.execPath, args, { stateDir, detached: true, cwd: repoRoot });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exit) throw proc.exitError('before answering http://127.0.0.1:9440/readyz');
    const ok = await fetch('http://127.0.0.1:9440/readyz', { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(
        `${controller} did not answer http://127.0.0.1:9440/readyz with 200 within 60s; see ${rel(proc.logPath)}`,
      );
    await sleep(250);
  }
}

async function down(): Promise<void> {
  const stopped = await stopRecorded(stateDir, stopOrder);
  console.log(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing running');
}

const command = process.argv[2];
try {
  if (command === 'up') await up();
  else if (command === 'down') await down();
  else throw new Error('usage: node e2e/cluster/main.ts up|down');
  process.exit(0);
} catch (err) {
  if (interrupted) await interrupted;
  console.error(`error: ${errorMessage(err)}`);
  process.exit(1);
}
