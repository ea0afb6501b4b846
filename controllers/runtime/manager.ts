// Holds what the controllers of one process share: the API connection, informers (one per kind),
// metrics and health endpoints, and leader election. Informers run on every replica so that a
// standby is warm; controllers run only on the leader.
import {
  ApiextensionsV1Api,
  CoreV1Api,
  VersionApi,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Server } from 'node:http';
import { Controller, type ManagedObject, type Reconciler } from './controller.ts';
import { EventRecorder } from './events.ts';
import { closeServer, listen } from './http.ts';
import { Informer } from './informer.ts';
import { shareConnections } from './kubeconfig.ts';
import { errorMessage, statusCode } from './api-errors.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader.ts';
import type { Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import type { RetryOptions } from './rate-limiter.ts';
import type { ResourceType } from './resource.ts';
import { StatusPatcher } from './status.ts';

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  metrics?: Metrics;
  metricsAddr?: string;
  healthAddr?: string;
  /** Watch only this namespace; undefined watches all. */
  namespace?: string;
  labelSelector?: string;
  concurrency?: number;
  retry?: Partial<RetryOptions>;
  leaderElection?: LeaderElectionOptions;
  gracefulShutdownMs?: number;
  relistMs?: number;
  /** Called when the lease is lost while leading; main.ts exits the process. */
  onLostLeadership?: () => void;
}

export interface ControllerSpec<T extends ManagedObject> {
  name: string;
  resource: ResourceType;
  /** Flux's field manager for this kind, e.g. source-controller. */
  fieldManager: string;
  reconciler: Reconciler<T>;
  isSuspended?: (obj: T) => boolean;
  /** The revision gotk_resource_info reports for an object, in the kind's own terms. */
  revision?: (obj: T) => string | undefined;
}

export class Manager {
  readonly metrics: Metrics;
  readonly kubeConfig: KubeConfig;
  private readonly opts: ManagerOptions;
  private readonly informers = new Map<string, Informer<KubernetesObject>>();
  private readonly controllers: Controller<ManagedObject>[] = [];
  private readonly servers: Server[] = [];
  private elector: LeaderElector | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private readonly stopHooks: (() => Promise<void>)[] = [];
  private readonly startHooks: (() => Promise<void>)[] = [];
  private signalStop!: () => void;
  private readonly stopSignal = new Promise<void>((resolve) => (this.signalStop = resolve));

  get logger(): Logger {
    return this.opts.logger;
  }

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.kubeConfig = shareConnections(opts.kubeConfig);
    this.metrics = opts.metrics ?? new Metrics();
  }

  /**
   * The shared informer of a kind; created on first use. `labelSelector` replaces the manager's
   * own (the shard selector) for informers of objects the controllers only read, such as
   * ConfigMaps labelled for watching.
   */
  informer<T extends KubernetesObject>(rt: ResourceType, opts: { labelSelector?: string } = {}): Informer<T> {
    const labelSelector = opts.labelSelector ?? this.opts.labelSelector;
    const key = `${rt.group}/${rt.version}/${rt.plural}?${labelSelector ?? ''}`;
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new Informer(this.kubeConfig, rt, {
        namespace: this.opts.namespace,
        labelSelector,
        logger: this.opts.logger,
        ...(this.opts.relistMs ? { relistMs: this.opts.relistMs } : {}),
      });
      this.informers.set(key, inf);
    }
    return inf as unknown as Informer<T>;
  }

  addController<T extends ManagedObject>(spec: ControllerSpec<T>): Controller<T> {
    const informer = this.informer<T>(spec.resource);
    const controller = new Controller<T>({
      name: spec.name,
      resource: spec.resource,
      informer,
      reconciler: spec.reconciler,
      patcher: new StatusPatcher(this.kubeConfig, spec.fieldManager),
      recorder: new EventRecorder(this.kubeConfig, spec.fieldManager, this.opts.logger),
      logger: this.opts.logger,
      metrics: this.metrics,
      concurrency: this.opts.concurrency,
      retry: this.opts.retry,
      isSuspended: spec.isSuspended,
    });
    this.controllers.push(controller as unknown as Controller<ManagedObject>);
    this.metrics.addController(spec.name);
    this.metrics.trackResources({
      resource: spec.resource,
      objects: () => informer.list(),
      isSuspended: spec.isSuspended,
      revision: spec.revision,
      active: () => this.isLeader(),
    });
    return controller;
  }

  /** Runs in start(), after the preflight checks and before the informers start. */
  onStart(hook: () => Promise<void>): void {
    this.startHooks.push(hook);
  }

  /** Runs at stop(), after the controllers finished: for servers and the like a setup opened. */
  onStop(hook: () => Promise<void>): void {
    this.stopHooks.push(hook);
  }

  ready(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  /** The kinds whose informers have not synced, each with the refusal that keeps it so, if any. */
  unsynced(): string[] {
    return [...this.informers.values()]
      .filter((i) => !i.hasSynced())
      .map((i) => {
        const refused = i.refused();
        return refused ? `${i.resource.kind} (${refused})` : i.resource.kind;
      });
  }

  /**
   * Checks the API server and the CRDs, opens the endpoints and starts the informers; the
   * controllers follow in the background once the informers synced (and this replica leads).
   */
  async start(): Promise<void> {
    await this.preflight();
    const { metricsAddr, healthAddr } = this.opts;
    if (metricsAddr && metricsAddr !== '0') {
      this.servers.push(
        await listen('--metrics-addr', metricsAddr, {
          '/metrics': async (_req, res) => {
            res
              .writeHead(200, { 'Content-Type': this.metrics.registry.contentType })
              .end(await this.metrics.registry.metrics());
          },
        }),
      );
    }
    if (healthAddr && healthAddr !== '0') {
      this.servers.push(
        await listen('--health-addr', healthAddr, {
          '/healthz': (_req, res) => void res.writeHead(200).end('ok\n'),
          '/readyz': (_req, res) => {
            if (this.ready()) return void res.writeHead(200).end('ok\n');
            res.writeHead(503).end(`informers not synced: ${this.unsynced().join('; ')}\n`);
          },
        }),
      );
    }
    for (const hook of this.startHooks) await hook();
    for (const inf of this.informers.values()) void inf.start();
    const elector = this.opts.leaderElection
      ? new LeaderElector(this.kubeConfig, this.opts.leaderElection, this.opts.logger, this.metrics)
      : undefined;
    this.elector = elector;
    this.running = (async () => {
      if (elector && !(await elector.acquire())) return;
      await this.startControllers();
      if (elector && (await elector.keepLeading()) === 'lost' && !this.stopping) {
        await Promise.all(this.controllers.map((c) => c.stop(0)));
        this.opts.onLostLeadership?.();
      }
    })();
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : true;
  }

  /** Graceful stop: in-flight reconciles get until the deadline, then the lease is released. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.signalStop();
    const deadline = this.opts.gracefulShutdownMs ?? 30_000;
    await Promise.all(this.controllers.map((c) => c.stop(deadline)));
    await this.elector?.stop();
    await this.running;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await Promise.all(this.servers.map(closeServer));
    for (const hook of this.stopHooks) await hook();
  }

  private async startControllers(): Promise<void> {
    await Promise.race([Promise.all([...this.informers.values()].map((i) => i.synced)), this.stopSignal]);
    if (this.stopping) return;
    for (const c of this.controllers) c.start();
    this.opts.logger.info('controllers started', { controllers: this.controllers.map((c) => c.name) });
  }

  /** Fails with one line naming the cause and the fix before anything starts. */
  private async preflight(): Promise<void> {
    const server = this.kubeConfig.getCurrentCluster()?.server ?? '(none)';
    try {
      await this.kubeConfig.makeApiClient(VersionApi).getCode();
    } catch (err) {
      throw new Error(
        `cannot reach the Kubernetes API server at ${server}: ${errorMessage(err)}; ` +
          'check --kubeconfig or that the cluster is running',
      );
    }
    const crds = this.kubeConfig.makeApiClient(ApiextensionsV1Api);
    for (const inf of this.informers.values()) {
      const rt = inf.resource;
      if (!rt.group?.includes('.') || rt.group.endsWith('.k8s.io')) continue;
      const name = `${rt.plural}.${rt.group}`;
      const fix = 'apply the CRDs first: kubectl apply --server-side -f crds/';
      let served = false;
      try {
        const crd = await crds.readCustomResourceDefinition({ name });
        served = crd.spec.versions.some((v) => v.name === rt.version && v.served);
      } catch (err) {
        if (statusCode(err) !== 404)
          throw new Error(`cannot read CustomResourceDefinition ${name}: ${errorMessage(err)}`);
        throw new Error(`the CustomResourceDefinition ${name} is not installed; ${fix}`);
      }
      if (!served) throw new Error(`the CustomResourceDefinition ${name} does not serve ${rt.version}; ${fix}`);
    }
    if (this.opts.leaderElection && this.opts.namespace === undefined) {
      const ns = this.opts.leaderElection.namespace;
      try {
        await this.kubeConfig.makeApiClient(CoreV1Api).readNamespace({ name: ns });
      } catch (err) {
        throw new Error(
          `leader election namespace "${ns}" is not readable: ${errorMessage(err)}; ` +
            'create it or pass --leader-election-namespace',
        );
      }
    }
  }
}
