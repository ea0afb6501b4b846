// Prometheus metrics under the names Flux's controllers export, so existing dashboards work.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { findCondition, type Condition } from './conditions.ts';
import type { QueueObserver } from './queue.ts';
import type { ResourceType } from './resource.ts';

/**
 * The objects of one kind that gotk_resource_info reports, read at each scrape: the controller's
 * own informer cache, so that the gauge costs no API request and never outlives an object.
 */
export interface ResourceInfoSource<T extends KubernetesObject = KubernetesObject> {
  resource: ResourceType;
  objects(): Iterable<T>;
  isSuspended?(obj: T): boolean;
  /** The kind's revision (the artifact's, the last applied, ...); no label when undefined. */
  revision?(obj: T): string | undefined;
  /**
   * Whether this process reports the kind now: only the leader does, so that a standby replica
   * with the same warm cache does not double every object.
   */
  active(): boolean;
}

/** The result label values of controller_runtime_reconcile_total, as controller-runtime sets them. */
export const RECONCILE_RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const;

export class Metrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({
    name: 'gotk_reconcile_duration_seconds',
    help: 'The duration in seconds of a GitOps Toolkit resource reconciliation.',
    labelNames: ['kind', 'name', 'namespace'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller.',
    labelNames: ['controller', 'result'],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue.',
    labelNames: ['name'],
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue.',
    labelNames: ['name'],
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue.',
    labelNames: ['name'],
    registers: [this.registry],
  });
  readonly queueLatency = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested.',
    labelNames: ['name'],
    buckets: [0.001, 0.01, 0.1, 1, 10, 60, 600],
    registers: [this.registry],
  });
  readonly workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes.',
    labelNames: ['name'],
    buckets: [0.001, 0.01, 0.1, 1, 10, 60, 600],
    registers: [this.registry],
  });
  /** Work queues by name, read at each scrape for the two gauges below. */
  private readonly queues = new Map<string, { inProgress(): { unfinishedSeconds: number; longestSeconds: number } }>();
  readonly unfinishedWork = new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: 'How many seconds of work has been done that is in progress and has not been observed by work_duration.',
    labelNames: ['name'],
    registers: [this.registry],
    collect: () => {
      for (const [name, q] of this.queues) this.unfinishedWork.set({ name }, q.inProgress().unfinishedSeconds);
    },
  });
  readonly longestRunning = new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames: ['name'],
    registers: [this.registry],
    collect: () => {
      for (const [name, q] of this.queues) this.longestRunning.set({ name }, q.inProgress().longestSeconds);
    },
  });
  readonly leader = new Gauge({
    name: 'leader_election_master_status',
    help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.',
    labelNames: ['name'],
    registers: [this.registry],
  });

  private readonly resourceSources: ResourceInfoSource[] = [];
  /**
   * Rebuilt from the caches at each scrape, so a series whose labels changed (readiness, revision)
   * and the series of a deleted object are gone at the next scrape. Flux gets this gauge from
   * kube-state-metrics, whose custom-resource labels (customresource_kind, ...) are kept so that
   * queries written for Flux work; `kind` and `namespace` match gotk_reconcile_duration_seconds.
   */
  readonly resourceInfo = new Gauge({
    name: 'gotk_resource_info',
    help: 'The current state of a GitOps Toolkit resource.',
    labelNames: [
      'customresource_group',
      'customresource_version',
      'customresource_kind',
      'kind',
      'name',
      'namespace',
      'ready',
      'suspended',
      'revision',
    ],
    registers: [this.registry],
    collect: () => {
      this.resourceInfo.reset();
      for (const source of this.resourceSources) {
        if (!source.active()) continue;
        for (const obj of source.objects()) this.resourceInfo.set(resourceInfoLabels(source, obj), 1);
      }
    },
  });

  private readonly controllers = new Set<string>();

  constructor(processMetrics = true) {
    if (processMetrics) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters, which `promtool check metrics` refuses; they are the sums of
      // nodejs_active_handles, nodejs_active_requests and nodejs_active_resources over their types.
      for (const name of [
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
      ])
        this.registry.removeSingleMetric(name);
    }
  }

  /**
   * Creates every series of a controller with zero values, as controller-runtime does when a
   * controller is made, so that they exist from the first scrape and absent() alerts stay quiet.
   * A name seen before (two managers sharing one registry) keeps its values.
   */
  addController(name: string): void {
    if (this.controllers.has(name)) return;
    this.controllers.add(name);
    for (const result of RECONCILE_RESULTS) this.reconcileTotal.inc({ controller: name, result }, 0);
    this.reconcileErrors.inc({ controller: name }, 0);
    this.activeWorkers.inc({ controller: name }, 0);
    this.queueDepth.inc({ name }, 0);
    this.queueAdds.inc({ name }, 0);
    this.queueRetries.inc({ name }, 0);
    this.queueLatency.zero({ name });
    this.workDuration.zero({ name });
    this.unfinishedWork.set({ name }, 0);
    this.longestRunning.set({ name }, 0);
  }

  /** Reports the objects of a kind in gotk_resource_info from the next scrape on. */
  trackResources<T extends KubernetesObject>(source: ResourceInfoSource<T>): void {
    this.resourceSources.push(source as unknown as ResourceInfoSource);
  }

  /** Reports the work in progress of a controller's queue at each scrape. */
  watchQueue(name: string, queue: { inProgress(): { unfinishedSeconds: number; longestSeconds: number } }): void {
    this.queues.set(name, queue);
  }

  queueObserver(name: string): QueueObserver {
    return {
      depth: (n) => this.queueDepth.set({ name }, n),
      added: () => this.queueAdds.inc({ name }),
      retried: () => this.queueRetries.inc({ name }),
      waited: (ms) => this.queueLatency.observe({ name }, ms / 1000),
      worked: (ms) => this.workDuration.observe({ name }, ms / 1000),
    };
  }
}

function resourceInfoLabels(source: ResourceInfoSource, obj: KubernetesObject): Record<string, string> {
  const { group, version, kind } = source.resource;
  const conditions = (obj as { status?: { conditions?: Condition[] } }).status?.conditions;
  const labels: Record<string, string> = {
    customresource_group: group,
    customresource_version: version,
    customresource_kind: kind,
    kind,
    name: obj.metadata?.name ?? '',
    namespace: obj.metadata?.namespace ?? '',
    // No Ready condition yet is kstatus' "unknown", not a missing label that `ready!="True"` skips.
    ready: findCondition(conditions, 'Ready')?.status ?? 'Unknown',
    suspended: String(source.isSuspended?.(obj) ?? false),
  };
  const revision = source.revision?.(obj);
  if (revision) labels.revision = revision;
  return labels;
}
