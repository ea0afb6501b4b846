// tide-controller as a real process against the test cluster, for end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCluster } from './cluster.ts';
import { eventually } from './eventually.ts';
import { freePort } from './net.ts';

export interface RunningController {
  process: ChildProcess;
  storagePath: string;
  metricsUrl: string;
  /** /healthz and /readyz live under it. */
  healthUrl: string;
  /** Everything it logged so far (JSON lines). */
  logs(): string;
  stop(): Promise<number | null>;
}

export interface StartOptions {
  /** Another identity than the cluster admin's (a ServiceAccount's token, say). */
  kubeconfig?: string;
  env?: Record<string, string>;
  /** Whether to wait for /readyz (default); a process that cannot sync is awaited by its caller. */
  waitReady?: boolean;
}

export async function startController(args: string[] = [], opts: StartOptions = {}): Promise<RunningController> {
  const [health, metrics, storage] = [await freePort(), await freePort(), await freePort()];
  const storagePath = mkdtempSync(join(tmpdir(), 'tide-e2e-storage-'));
  const main = join(import.meta.dirname, '..', '..', 'controllers', 'main.ts');
  const child = spawn(
    process.execPath,
    [
      main,
      `--kubeconfig=${opts.kubeconfig ?? testCluster().kubeconfigPath}`,
      `--health-addr=127.0.0.1:${health}`,
      `--metrics-addr=127.0.0.1:${metrics}`,
      `--storage-addr=127.0.0.1:${storage}`,
      `--storage-adv-addr=127.0.0.1:${storage}`,
      `--storage-path=${storagePath}`,
      `--kustomize-path=${join(testCluster().binDir, 'kustomize')}`,
      `--sops-path=${join(testCluster().binDir, 'sops')}`,
      `--helm-helper-path=${join(testCluster().binDir, 'tide-helm')}`,
      '--log-level=debug',
      ...args,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } },
  );
  let logs = '';
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = once(child, 'exit');
  if (opts.waitReady !== false)
    await eventually(
      async () => {
        if (child.exitCode !== null)
          throw new Error(`tide-controller exited with ${child.exitCode}: ${logs.slice(-2000)}`);
        const res = await fetch(`http://127.0.0.1:${health}/readyz`);
        if (res.status !== 200) throw new Error(`readyz ${res.status}: ${(await res.text()).trim()}`);
      },
      { timeoutMs: 30_000, message: 'tide-controller did not become ready' },
    );
  return {
    process: child,
    storagePath,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    healthUrl: `http://127.0.0.1:${health}`,
    logs: () => logs,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await exited;
      return code as number | null;
    },
  };
}
