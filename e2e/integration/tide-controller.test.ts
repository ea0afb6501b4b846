// The tide-controller process as users run it: flags, endpoints, graceful shutdown, bad input.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeConfig, testCluster } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/net.ts';

const main = join(import.meta.dirname, '..', '..', 'controllers', 'main.ts');

function run(args: string[]) {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number);
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** The value of the sample `name` whose labels include `labels`, from a Prometheus text exposition. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('tide-controller', function () {
  this.timeout(60_000);

  before(() => installCRDs(kubeConfig()));

  it('serves /readyz, /healthz and /metrics, and exits 0 on SIGTERM', async () => {
    const [metrics, health] = [await freePort(), await freePort()];
    const storage = await freePort();
    const p = run([
      '--kubeconfig',
      testCluster().kubeconfigPath,
      `--metrics-addr=127.0.0.1:${metrics}`,
      `--health-addr=127.0.0.1:${health}`,
      `--storage-addr=127.0.0.1:${storage}`,
      `--storage-path=${mkdtempSync(join(tmpdir(), 'tide-storage-'))}`,
    ]);
    try {
      await eventually(async () => expect((await fetch(`http://127.0.0.1:${health}/readyz`)).status).to.equal(200), {
        timeoutMs: 20_000,
      });
      expect((await fetch(`http://127.0.0.1:${health}/healthz`)).status).to.equal(200);
      expect(await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text()).to.match(
        /process_cpu_seconds_total \d/,
      );
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).to.equal(0);
    for (const line of p.stderr().trim().split('\n')) expect(() => JSON.parse(line), line).to.not.throw();
  });

  it('names the address and the fix when a port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const p = run([
        '--kubeconfig',
        testCluster().kubeconfigPath,
        `--metrics-addr=127.0.0.1:${port}`,
        '--health-addr=0',
        '--controllers=source',
        '--storage-addr=127.0.0.1:0',
      ]);
      expect(await p.exited).to.equal(1);
      expect(p.stderr()).to.include(
        `--metrics-addr 127.0.0.1:${port}: address already in use; ` +
          'stop the process using it or pass another --metrics-addr',
      );
    } finally {
      blocker.close();
    }
  });

  it('names the server and the fix when the API server is unreachable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-kc-'));
    const port = await freePort();
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'x',
        clusters: [{ name: 'x', cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'x', user: { token: 'not-a-real-token' } }],
        contexts: [{ name: 'x', context: { cluster: 'x', user: 'x' } }],
      }),
    );
    const p = run(['--kubeconfig', kubeconfig, '--metrics-addr=0', '--health-addr=0']);
    expect(await p.exited).to.equal(1);
    const lines = p.stderr().trim().split('\n');
    const last = JSON.parse(lines.at(-1)!) as { level: string; msg: string };
    expect(last.level).to.equal('error');
    expect(last.msg).to.match(
      new RegExp(
        `^cannot reach the Kubernetes API server at https://127.0.0.1:${port}: .*; ` +
          'check --kubeconfig or that the cluster is running$',
      ),
    );
    expect(p.stderr()).to.not.include('not-a-real-token');
  });

  it('rejects a missing kubeconfig and invalid flags with exit codes 1 and 2', async () => {
    const missing = run(['--kubeconfig', '/nonexistent/kubeconfig']);
    expect(await missing.exited).to.equal(1);
    expect(missing.stderr()).to.include(
      'kubeconfig /nonexistent/kubeconfig does not exist; pass an existing file to --kubeconfig',
    );
    const bad = run(['--concurrent=zero', '--kubeconfig', testCluster().kubeconfigPath]);
    expect(await bad.exited).to.equal(1);
    expect(bad.stderr()).to.include('invalid --concurrent=\\"zero\\": expected a positive integer');
    const unknown = run(['--no-such-flag']);
    expect(await unknown.exited).to.equal(2);
    expect(unknown.stderr()).to.match(/^error: .*no-such-flag/);
  });

  it('names the flag and the controller of a bad per-controller value', async () => {
    const bad = run(['--requeue-dependency=abc', '--kubeconfig', testCluster().kubeconfigPath]);
    expect(await bad.exited).to.equal(1);
    const last = JSON.parse(bad.stderr().trim().split('\n').at(-1)!) as { level: string; msg: string };
    expect(last).to.include({ level: 'error' });
    expect(last.msg).to.equal(
      'invalid --requeue-dependency="abc" (kustomize controller): expected a Go duration such as 30s, 5m or 1h30m',
    );
    // A controller that does not run does not read its flags.
    const other = run(['--controllers=source', '--git-max-size=0', '--requeue-dependency=abc', '--kubeconfig=/none']);
    expect(await other.exited).to.equal(1);
    expect(other.stderr()).to.include('invalid --git-max-size=\\"0\\" (source controller): expected a number of bytes');
    expect(other.stderr()).to.not.include('requeue-dependency');
  });

  it('prints --help grouped by controller', async () => {
    const help = run(['--help']);
    expect(await help.exited).to.equal(0);
    const sections = [...help.stdout().matchAll(/^(\S.*):$/gm)].map((m) => m[1]);
    expect(sections).to.deep.equal([
      'General',
      'source controller',
      'kustomize controller',
      'helm controller',
      'image controller',
    ]);
    expect(help.stdout()).to.include('  --requeue-dependency duration (default "30s")\n');
  });

  it('exports every controller series with zero values from the first scrape', async () => {
    const metrics = await freePort();
    const p = run([
      '--kubeconfig',
      testCluster().kubeconfigPath,
      `--metrics-addr=127.0.0.1:${metrics}`,
      '--health-addr=0',
      `--storage-addr=127.0.0.1:${await freePort()}`,
      `--storage-path=${mkdtempSync(join(tmpdir(), 'tide-storage-'))}`,
      // Nothing in the cluster matches: nothing is reconciled.
      '--watch-label-selector=tide.test/metrics=none',
    ]);
    try {
      const text = await eventually(async () => (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text(), {
        timeoutMs: 20_000,
      });
      for (const controller of ['gitrepository', 'kustomization']) {
        const zero = (name: string, labels: Record<string, string>) =>
          expect(sample(text, name, labels), `${name}${JSON.stringify(labels)}`).to.equal(0);
        for (const result of ['success', 'error', 'requeue', 'requeue_after'])
          zero('controller_runtime_reconcile_total', { controller, result });
        zero('controller_runtime_reconcile_errors_total', { controller });
        zero('controller_runtime_active_workers', { controller });
        zero('workqueue_depth', { name: controller });
        zero('workqueue_adds_total', { name: controller });
        zero('workqueue_retries_total', { name: controller });
        zero('workqueue_queue_duration_seconds_count', { name: controller });
        zero('workqueue_work_duration_seconds_count', { name: controller });
        zero('workqueue_work_duration_seconds_bucket', { name: controller, le: '+Inf' });
        zero('workqueue_unfinished_work_seconds', { name: controller });
        zero('workqueue_longest_running_processor_seconds', { name: controller });
      }
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).to.equal(0);
  });
});
