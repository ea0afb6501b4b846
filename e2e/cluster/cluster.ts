// A real control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok with one fake node, so Deployments roll out without a kubelet.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { generatePki, type KeyPair, type Pki } from './pki.ts';
import { freePorts, recordedPid, spawnLogged, stopRecorded, type Proc } from './process.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

const binaries = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

/** Stop order: everything that talks to the apiserver first, etcd last. */
export const componentStopOrder = [
  ['kwok'],
  ['kube-scheduler'],
  ['kube-controller-manager'],
  ['kube-apiserver'],
  ['etcd'],
];

const serviceRange = '10.96.0.0/16';
const serviceIP = '10.96.0.1';

/**
 * The control-plane bin dir: $TIDE_BIN_DIR, else what e2e/controlplane/build.sh prints (it builds
 * once, then answers from its cache).
 */
export function resolveBinDir(): string {
  if (process.env.TIDE_BIN_DIR) return process.env.TIDE_BIN_DIR;
  try {
    const out = execFileSync(path.join(repoRoot, 'e2e/controlplane/build.sh'), {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return out.trim().split('\n').at(-1) ?? '';
  } catch {
    throw new Error(
      'e2e/controlplane/build.sh failed (its error is printed above); ' +
        'fix it and run `make controlplane`, or set TIDE_BIN_DIR',
    );
  }
}

export interface LocalClusterOptions {
  /** Holds certificates, etcd data, logs/<name>.log and pids/<name>.pid; wiped by start(). */
  stateDir: string;
  binDir?: string;
  /** Where the admin kubeconfig goes; default <stateDir>/kubeconfig. */
  kubeconfigPath?: string;
  /** Let the processes outlive this one (make up). Otherwise they are killed when it exits. */
  detached?: boolean;
  /** Limit for start() and startApiServer(); default 90 s. */
  timeoutMs?: number;
}

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
}

interface Response {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: an API answer of any shape, read by the caller
  body: any;
}

export class LocalCluster {
  static readonly nodeName = 'kwok-node-0';
  readonly stateDir: string;
  readonly binDir: string;
  readonly kubeconfigPath: string;
  /** How long the last start() took. */
  startupMs = 0;
  #detached: boolean;
  #timeoutMs: number;
  #ports: Ports | undefined;
  #pki: Pki | undefined;
  #tls: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;
  #procs = new Map<string, Proc>();

  constructor(opts: LocalClusterOptions) {
    this.stateDir = path.resolve(opts.stateDir);
    this.binDir = path.resolve(opts.binDir ?? resolveBinDir());
    this.kubeconfigPath = path.resolve(opts.kubeconfigPath ?? path.join(this.stateDir, 'kubeconfig'));
    this.#detached = opts.detached ?? false;
    this.#timeoutMs = opts.timeoutMs ?? 90_000;
  }

  /** The apiserver's https URL; known once start() has chosen the ports. */
  get server(): string {
    if (!this.#ports) throw new Error('LocalCluster.server is known only after start()');
    return `https://127.0.0.1:${this.#ports.apiserver}`;
  }

  get logsDir(): string {
    return path.join(this.stateDir, 'logs');
  }

  async start(): Promise<void> {
    const started = Date.now();
    for (const b of binaries) {
      if (!fs.existsSync(path.join(this.binDir, b)))
        throw new Error(`${b} not found in ${this.binDir}; run \`make controlplane\``);
    }
    const running = binaries.filter((b) => recordedPid(this.stateDir, b) !== undefined);
    if (running.length > 0) {
      throw new Error(
        `a cluster from ${this.stateDir} is still running (${running.join(', ')}); stop it first (make down)`,
      );
    }
    for (const d of ['etcd', 'pki', 'pids', 'logs', 'config'])
      fs.rmSync(path.join(this.stateDir, d), { recursive: true, force: true });

    const [etcdClient, etcdPeer, apiserver] = await freePorts(3);
    this.#ports = { etcdClient, etcdPeer, apiserver };
    const pki = generatePki(path.join(this.stateDir, 'pki'), serviceIP);
    this.#pki = pki;
    this.#tls = {
      ca: fs.readFileSync(pki.ca.cert),
      cert: fs.readFileSync(pki.admin.cert),
      key: fs.readFileSync(pki.admin.key),
    };
    const config = path.join(this.stateDir, 'config');
    fs.mkdirSync(config, { recursive: true });
    fs.mkdirSync(path.dirname(this.kubeconfigPath), { recursive: true });
    fs.writeFileSync(this.kubeconfigPath, this.#kubeconfig('tide-admin', pki.admin), { mode: 0o600 });
    // kwok gets its own copy of the admin kubeconfig so every command line names the state dir.
    fs.writeFileSync(path.join(config, 'kwok.kubeconfig'), this.#kubeconfig('tide-admin', pki.admin), { mode: 0o600 });
    fs.writeFileSync(
      path.join(config, 'kube-controller-manager.kubeconfig'),
      this.#kubeconfig('kube-controller-manager', pki.controllerManager),
      { mode: 0o600 },
    );
    fs.writeFileSync(
      path.join(config, 'kube-scheduler.kubeconfig'),
      this.#kubeconfig('kube-scheduler', pki.scheduler),
      { mode: 0o600 },
    );

    const deadline = started + this.#timeoutMs;
    try {
      // The apiserver retries etcd until it answers, so both can boot at once.
      this.#launch('etcd', this.#etcdArgs());
      this.#launch('kube-apiserver', this.#apiserverArgs());
      await this.#waitFor('kube-apiserver /readyz', deadline, () => this.#apiserverReady());
      this.#launch('kube-controller-manager', this.#controllerManagerArgs());
      this.#launch('kube-scheduler', this.#schedulerArgs());
      this.#launch('kwok', this.#kwokArgs());
      await this.#registerNode();
      await this.#waitFor(`node ${LocalCluster.nodeName} to be Ready`, deadline, () => this.#nodeReady());
      await this.#waitFor('ServiceAccount default/default', deadline, async () => {
        return (await this.#request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200;
      });
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.startupMs = Date.now() - started;
  }

  /** Stops every component recorded in the state dir, including ones started by another process. */
  async stop(): Promise<void> {
    await stopRecorded(this.stateDir, componentStopOrder);
    for (const p of this.#procs.values()) if (!p.exit) p.child.kill('SIGKILL');
    this.#procs.clear();
  }

  /** Stops only kube-apiserver; etcd and the other components keep running. */
  async stopApiServer(): Promise<void> {
    this.#procs.delete('kube-apiserver');
    await stopRecorded(this.stateDir, [['kube-apiserver']]);
  }

  /** Starts kube-apiserver again on the same port and etcd, and waits until it is ready. */
  async startApiServer(): Promise<void> {
    if (!this.#ports) throw new Error('startApiServer() needs a cluster started with start()');
    if (recordedPid(this.stateDir, 'kube-apiserver') !== undefined)
      throw new Error('kube-apiserver is already running; call stopApiServer() first');
    this.#launch('kube-apiserver', this.#apiserverArgs());
    await this.#waitFor('kube-apiserver /readyz', Date.now() + this.#timeoutMs, () => this.#apiserverReady());
  }

  #launch(name: string, args: string[]): void {
    const proc = spawnLogged(name, path.join(this.binDir, name), args, {
      stateDir: this.stateDir,
      detached: this.#detached,
    });
    this.#procs.set(name, proc);
  }

  async #waitFor(what: string, deadline: number, ready: () => Promise<boolean>): Promise<void> {
    for (;;) {
      for (const p of this.#procs.values()) if (p.exit) throw p.exitError(`while waiting for ${what}`);
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${this.#timeoutMs / 1000}s waiting for ${what}; see the logs in ${this.logsDir}`,
        );
      }
      await sleep(200);
    }
  }

  async #apiserverReady(): Promise<boolean> {
    return (await this.#request('GET', '/readyz')).status === 200;
  }

  async #registerNode(): Promise<void> {
    const name = LocalCluster.nodeName;
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        // kwok manages only nodes carrying this annotation (--manage-nodes-with-annotation-selector).
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: {
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
        },
      },
    };
    const res = await this.#request('POST', '/api/v1/nodes', node);
    if (res.status !== 201)
      throw new Error(`registering node ${name} failed with HTTP ${res.status}: ${res.body?.message ?? ''}`);
  }

  async #nodeReady(): Promise<boolean> {
    const res = await this.#request('GET', `/api/v1/nodes/${LocalCluster.nodeName}`);
    const conditions: { type: string; status: string }[] = res.body?.status?.conditions ?? [];
    return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
  }

  #request(method: string, urlPath: string, body?: unknown): Promise<Response> {
    const tls = this.#tls!;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: this.#ports!.apiserver,
          path: urlPath,
          method,
          ...tls,
          timeout: 5000,
          headers: payload ? { 'content-type': 'application/json' } : {},
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // /readyz answers plain text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  #kubeconfig(user: string, pair: KeyPair): string {
    const b64 = (file: string) => fs.readFileSync(file).toString('base64');
    return YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'tide', cluster: { server: this.server, 'certificate-authority-data': b64(this.#pki!.ca.cert) } },
      ],
      users: [{ name: user, user: { 'client-certificate-data': b64(pair.cert), 'client-key-data': b64(pair.key) } }],
      contexts: [{ name: 'tide', context: { cluster: 'tide', user } }],
      'current-context': 'tide',
    });
  }

  #file(...parts: string[]): string {
    return path.join(this.stateDir, ...parts);
  }

  #etcdArgs(): string[] {
    const { etcdClient, etcdPeer } = this.#ports!;
    const client = `http://127.0.0.1:${etcdClient}`;
    const peer = `http://127.0.0.1:${etcdPeer}`;
    return [
      '--name=tide',
      `--data-dir=${this.#file('etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=tide=${peer}`,
      // Throwaway data: durability buys nothing here and fsync dominates etcd's latency.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ];
  }

  #apiserverArgs(): string[] {
    const pki = this.#pki!;
    return [
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${this.#ports!.apiserver}`,
      `--cert-dir=${this.#file('pki')}`,
      `--etcd-servers=http://127.0.0.1:${this.#ports!.etcdClient}`,
      `--tls-cert-file=${pki.apiserver.cert}`,
      `--tls-private-key-file=${pki.apiserver.key}`,
      `--client-ca-file=${pki.ca.cert}`,
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      // Endpoints may not hold a loopback address, so the `kubernetes` Service stays without them.
      '--endpoint-reconciler-type=none',
      // Without it, open watches hold shutdown until the 60 s request timeout.
      '--shutdown-watch-termination-grace-period=2s',
      `--service-cluster-ip-range=${serviceRange}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    ];
  }

  #controllerManagerArgs(): string[] {
    const pki = this.#pki!;
    return [
      `--kubeconfig=${this.#file('config', 'kube-controller-manager.kubeconfig')}`,
      '--leader-elect=false',
      // Cloud controllers are in `*` but skip themselves when no cloud provider is set.
      '--controllers=*',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.ca.cert}`,
      `--cluster-signing-cert-file=${pki.ca.cert}`,
      `--cluster-signing-key-file=${pki.ca.key}`,
      `--service-cluster-ip-range=${serviceRange}`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
    ];
  }

  #schedulerArgs(): string[] {
    return [
      `--kubeconfig=${this.#file('config', 'kube-scheduler.kubeconfig')}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
    ];
  }

  #kwokArgs(): string[] {
    return [
      `--kubeconfig=${this.#file('config', 'kwok.kubeconfig')}`,
      // The Stages shipped with the pinned kwok module, put next to the binaries by build.sh.
      `--config=${path.join(this.binDir, 'kwok-stages.yaml')}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-ip=127.0.0.1',
      '--node-lease-duration-seconds=40',
    ];
  }
}
