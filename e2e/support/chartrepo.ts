// Helm charts and HTTP chart repositories for tests, made with the real Helm 4 CLI: charts are
// written as directories, packaged with `helm package` and indexed with `helm repo index`, and the
// repository directory is served on 127.0.0.1 (optionally with basic auth and TLS).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { testCluster } from './cluster.ts';
import { makeTestCertificates } from './git/tls.ts';

export interface ChartDependency {
  name: string;
  version: string;
  repository: string;
  alias?: string;
}

export interface TestChart {
  name: string;
  version: string;
  values?: Record<string, unknown>;
  /** Template file name → content; a ConfigMap template is written when none is given. */
  templates?: Record<string, string>;
  dependencies?: ChartDependency[];
  /** Extra files, path relative to the chart → content. */
  files?: Record<string, string>;
}

/** Writes the chart as a directory `<parent>/<name>`; returns its path. */
export function writeChart(parent: string, chart: TestChart): string {
  const dir = path.join(parent, chart.name);
  fs.mkdirSync(path.join(dir, 'templates'), { recursive: true });
  const meta: Record<string, unknown> = {
    apiVersion: 'v2',
    name: chart.name,
    version: chart.version,
    type: 'application',
  };
  if (chart.dependencies) meta.dependencies = chart.dependencies;
  fs.writeFileSync(path.join(dir, 'Chart.yaml'), stringify(meta));
  fs.writeFileSync(path.join(dir, 'values.yaml'), stringify(chart.values ?? { message: 'hello' }));
  const templates = chart.templates ?? {
    'configmap.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-{{ .Chart.Name }}',
      'data:',
      '  message: {{ .Values.message | quote }}',
      '',
    ].join('\n'),
  };
  for (const [name, content] of Object.entries(templates)) fs.writeFileSync(path.join(dir, 'templates', name), content);
  for (const [name, content] of Object.entries(chart.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

/** Runs the Helm 4 CLI with its config, cache and data homes in a private temp dir. */
export function helm(args: string[], opts: { cwd?: string; home?: string } = {}): Promise<string> {
  const home = opts.home ?? helmHome();
  const env = {
    ...process.env,
    HELM_CONFIG_HOME: path.join(home, 'config'),
    HELM_CACHE_HOME: path.join(home, 'cache'),
    HELM_DATA_HOME: path.join(home, 'data'),
    HELM_REGISTRY_CONFIG: path.join(home, 'registry.json'),
  };
  return new Promise((resolve, reject) => {
    execFile(path.join(testCluster().binDir, 'helm'), args, { cwd: opts.cwd, env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`helm ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

let sharedHome: string | undefined;
function helmHome(): string {
  sharedHome ??= fs.mkdtempSync(path.join(os.tmpdir(), 'tide-helm-home-'));
  return sharedHome;
}

/** `helm package <chartDir> -d <out>`; returns the path of the .tgz. */
export async function packageChart(chartDir: string, out: string): Promise<string> {
  fs.mkdirSync(out, { recursive: true });
  const stdout = await helm(['package', chartDir, '-d', out]);
  const match = /saved it to: (.+\.tgz)/.exec(stdout);
  if (!match) throw new Error(`helm package did not say where it saved the chart: ${stdout}`);
  return match[1]!.trim();
}

export interface ChartRepoOptions {
  auth?: { username: string; password: string };
  tls?: boolean;
}

export interface ChartRepo {
  /** `http(s)://127.0.0.1:PORT`, the HelmRepository URL. */
  url: string;
  /** The served directory (charts and index.yaml). */
  dir: string;
  caPem?: string;
  /** Requests answered so far: path, status, whether credentials came along. */
  requests: { path: string; status: number; authorized: boolean }[];
  /** Writes, packages and indexes the chart; returns the .tgz path. */
  publish(chart: TestChart): Promise<string>;
  /** Re-runs `helm repo index` over the directory. */
  reindex(): Promise<void>;
  /** Replaces index.yaml with the given bytes. */
  writeIndex(content: string | Buffer): void;
  close(): Promise<void>;
}

/** Serves a fresh chart repository directory over HTTP(S) on 127.0.0.1. */
export async function startChartRepo(opts: ChartRepoOptions = {}): Promise<ChartRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-chartrepo-'));
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-chartsrc-'));
  const requests: ChartRepo['requests'] = [];
  const expected = opts.auth
    ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`
    : undefined;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const urlPath = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const authorized = expected !== undefined && req.headers.authorization === expected;
    const answer = (status: number, body?: Buffer | string) => {
      requests.push({ path: urlPath, status, authorized });
      res.writeHead(status, status === 401 ? { 'www-authenticate': 'Basic realm="charts"' } : {});
      res.end(body);
    };
    if (expected && !authorized) return answer(401, 'unauthorized\n');
    const file = path.join(dir, path.normalize(urlPath).replace(/^(\.\.[/\\])+/, ''));
    if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return answer(404, 'not found\n');
    answer(200, fs.readFileSync(file));
  };
  let server: http.Server;
  let caPem: string | undefined;
  if (opts.tls) {
    const certs = await makeTestCertificates(fs.mkdtempSync(path.join(os.tmpdir(), 'tide-chartrepo-tls-')));
    caPem = certs.caPem;
    server = https.createServer({ cert: certs.certPem, key: certs.keyPem }, handler);
  } else {
    server = http.createServer(handler);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const reindex = async () => {
    await helm(['repo', 'index', dir, '--url', url]);
  };
  return {
    url,
    dir,
    ...(caPem ? { caPem } : {}),
    requests,
    async publish(chart) {
      const tgz = await packageChart(writeChart(fs.mkdtempSync(path.join(src, 'c-')), chart), dir);
      await reindex();
      return tgz;
    },
    reindex,
    writeIndex(content) {
      fs.writeFileSync(path.join(dir, 'index.yaml'), content);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
