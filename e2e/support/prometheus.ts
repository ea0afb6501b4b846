// A real Prometheus (Debian's prometheus package; `make system-deps` installs it) on loopback,
// scraping the given targets, evaluating the given rule files, and asked through its HTTP API.
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { eventually } from './eventually.ts';
import { freePort } from './net.ts';

const BIN_DIR = '/usr/bin';

function binary(name: 'prometheus' | 'promtool'): string {
  const path = join(BIN_DIR, name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing: run \`make system-deps\` (Debian package prometheus)`);
  }
  return path;
}

export interface ScrapeTarget {
  /** host:port of a /metrics endpoint. */
  address: string;
  /**
   * Target labels, as Kubernetes service discovery attaches them: a `namespace` here turns the
   * exposition's own `namespace` into `exported_namespace`, as a PodMonitor scrape does.
   */
  labels?: Record<string, string>;
}

export interface PrometheusOptions {
  targets: ScrapeTarget[];
  ruleFiles?: string[];
  /** Both scrape and rule evaluation, in Prometheus duration syntax. */
  interval?: string;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface RunningPrometheus {
  url: string;
  /** An instant query; throws Prometheus' own error for an expression it refuses. */
  query(expr: string): Promise<Sample[]>;
  /** The alerts pending or firing now. */
  alerts(): Promise<ActiveAlert[]>;
  /** Every metric name Prometheus holds, from /api/v1/label/__name__/values. */
  metricNames(): Promise<string[]>;
  logs(): string;
  stop(): Promise<void>;
}

async function api<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
  if (body.status !== 'success') throw new Error(`${path}: ${body.errorType}: ${body.error}`);
  return body.data;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const bin = binary('prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'tide-prometheus-'));
  const interval = opts.interval ?? '1s';
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: [
        {
          job_name: 'tide',
          static_configs: opts.targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
        },
      ],
    }),
  );
  const port = await freePort();
  const child = spawn(
    bin,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let logs = '';
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${logs.slice(-2000)}`);
        const res = await fetch(`${url}/-/ready`);
        if (res.status !== 200) throw new Error(`/-/ready answered ${res.status}`);
      },
      { timeoutMs: 30_000, message: 'Prometheus did not become ready' },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    query: async (expr) =>
      (await api<{ result: Sample[] }>(url, `/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: ActiveAlert[] }>(url, '/api/v1/alerts')).alerts,
    metricNames: () => api<string[]>(url, '/api/v1/label/__name__/values'),
    logs: () => logs,
    stop,
  };
}

/** Runs promtool with `args`, `input` on its standard input; resolves with its exit code and output. */
export function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  const bin = binary('promtool');
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (code === -1) return reject(err);
      resolve({ code, output: `${stdout}${stderr}` });
    });
    child.stdin!.end(input ?? '');
  });
}
