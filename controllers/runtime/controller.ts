// The worker loop: takes keys from the queue, reads the object fresh from the cache, runs the
// reconciler, turns its outcome into status (outcome.ts) and tells the queue what comes next.
import type { KubernetesObject } from '@kubernetes/client-node';
import { realClock, type Clock } from './clock.ts';
import { rfc3339 } from './conditions.ts';
import type { EventRecorder, EventType } from './events.ts';
import type { Informer } from './informer.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import {
  applyOutcome,
  outcomeOf,
  progressStatus,
  queueDecision,
  type ObservedStatus,
  type Outcome,
} from './outcome.ts';
import { WorkQueue } from './queue.ts';
import { defaultControllerRateLimiter, type RetryOptions } from './rate-limiter.ts';
import { keyOf, type ResourceType } from './resource.ts';
import type { StatusPatcher } from './status.ts';
import { errorMessage } from './api-errors.ts';

export const REQUESTED_AT_ANNOTATION = 'reconcile.fluxcd.io/requestedAt';

export type ManagedObject<S extends ObservedStatus = ObservedStatus> = KubernetesObject & {
  spec?: unknown;
  status?: S;
};

export interface ReconcileContext<S extends ObservedStatus = ObservedStatus> {
  key: string;
  logger: Logger;
  /** A copy of the object's status; steps write into it and it is patched once at the end. */
  status: S;
  now(): Date;
  event(type: EventType, reason: string, message: string): void;
  /** Set when the object is gone or about to be (finalizer removed): nothing to patch. */
  skipStatus: boolean;
  /**
   * Aborted when a newer request for this object arrives while it is reconciled (a spec change,
   * a reconcile request, a new source revision); the reason names what asked. Long waits pass it on.
   */
  signal: AbortSignal;
  /** Names the source revision this reconcile works on: a trigger bringing that same revision does not supersede it. */
  workingOn(revision: string): void;
  /**
   * Writes `status` now with Reconciling=True (Progressing, `message`) and Ready=Unknown, so that
   * kstatus tools see the work before its long part. Call once, when there is real work.
   */
  progress(message: string): Promise<void>;
}

export interface Reconciler<T extends ManagedObject> {
  /** Returns the outcome of the reconcile (steps.ts runs the steps); throws only on a defect. */
  reconcile(obj: T, ctx: ReconcileContext<NonNullable<T['status']>>): Promise<Outcome>;
  /** The reason used when a defect escapes reconcile(). */
  failureReason?: string;
}

export interface ControllerOptions<T extends ManagedObject> {
  /** Lower-case kind, used as the metrics `controller` label and the queue name. */
  name: string;
  resource: ResourceType;
  informer: Informer<T>;
  reconciler: Reconciler<T>;
  patcher: StatusPatcher;
  recorder: EventRecorder;
  logger: Logger;
  metrics: Metrics;
  concurrency?: number;
  retry?: Partial<RetryOptions>;
  clock?: Clock;
  random?: () => number;
  /** Objects for which this is true are skipped without a status change (spec.suspend). */
  isSuspended?: (obj: T) => boolean;
}

export class Controller<T extends ManagedObject> {
  readonly queue: WorkQueue;
  readonly name: string;
  private readonly opts: ControllerOptions<T>;
  private readonly clock: Clock;
  private workers: Promise<void>[] = [];
  private running = false;
  /** Reconciles in flight, by key: aborted when a newer request for the key arrives. */
  private readonly inFlight = new Map<string, { abort: AbortController; revision?: string }>();
  /**
   * The object as our last status write left it, until the informer has caught up: a reconcile
   * that follows at once (the key was queued meanwhile) must build on that status, not on the
   * cache's older copy, or it would write the older history and inventory back.
   */
  private readonly written = new Map<string, T>();

  constructor(opts: ControllerOptions<T>) {
    this.opts = opts;
    this.name = opts.name;
    this.clock = opts.clock ?? realClock;
    this.queue = new WorkQueue(
      this.clock,
      defaultControllerRateLimiter(this.clock, opts.retry),
      opts.metrics.queueObserver(opts.name),
    );
    opts.metrics.watchQueue(opts.name, this.queue);
    opts.informer.on({
      add: (obj) => this.enqueue(keyOf(obj)),
      update: (oldObj, newObj) => {
        // The cache has caught up with our last write: it needs no remembering any more.
        this.freshest(keyOf(newObj), newObj);
        // A new generation, reconcile request or deletion also supersedes the reconcile in flight.
        if (specOrRequestChanged(oldObj, newObj)) this.enqueue(keyOf(newObj), `${opts.resource.kind}/${keyOf(newObj)}`);
      },
      delete: (obj) => {
        this.queue.forget(keyOf(obj));
        this.written.delete(keyOf(obj));
      },
    });
  }

  /**
   * Queues the key. With `trigger` (what asked, e.g. GitRepository/ns/name), a reconcile of the
   * key in flight is told that it is superseded (ctx.signal), unless it works on `revision`, the
   * one the trigger brings, or has not read its source yet. `first` puts it at the front of the queue.
   */
  enqueue(key: string, trigger?: string, revision?: string, first = false): void {
    const inFlight = trigger ? this.inFlight.get(key) : undefined;
    // A reconcile in flight that works on that revision, or has not read its source yet (it will
    // read this revision), already does what the trigger asks.
    if (inFlight && revision !== undefined && (inFlight.revision ?? revision) === revision) return;
    if (inFlight && !inFlight.abort.signal.aborted) {
      this.opts.logger.debug('a newer request supersedes the reconcile in flight', { key, trigger });
      inFlight.abort.abort(trigger);
    }
    this.queue.add(key, first);
  }

  /** Starts the workers; keys queued before this wait for them. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const obj of this.opts.informer.list()) this.enqueue(keyOf(obj));
    const n = this.opts.concurrency ?? 4;
    this.workers = Array.from({ length: n }, () => this.work());
  }

  /** Stops handing out keys and waits for in-flight reconciles, at most `deadlineMs`. */
  async stop(deadlineMs: number): Promise<void> {
    if (!this.running) return;
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)));
    await Promise.race([Promise.all([this.queue.shutDown(), ...this.workers]).then(() => undefined), deadline]);
    clearTimeout(timer);
  }

  /** The cached object, or what our last status write returned when the cache has not seen it yet. */
  private freshest(key: string, cached: T | undefined): T | undefined {
    const mine = this.written.get(key);
    if (!mine) return cached;
    if (!cached || !olderThan(cached, mine)) {
      this.written.delete(key);
      return cached;
    }
    return mine;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.opts.metrics.activeWorkers.inc({ controller: this.name });
      try {
        await this.process(key);
      } finally {
        this.opts.metrics.activeWorkers.dec({ controller: this.name });
        this.queue.done(key);
      }
    }
  }

  private async process(key: string): Promise<void> {
    const { informer, reconciler, metrics, resource } = this.opts;
    const obj = this.freshest(key, informer.get(key));
    if (!obj) {
      this.queue.forget(key);
      return;
    }
    const logger = this.opts.logger.with({
      controller: this.name,
      [resource.kind]: { name: obj.metadata?.name, namespace: obj.metadata?.namespace },
      reconcileID: Math.random().toString(16).slice(2, 10),
    });
    if (this.opts.isSuspended?.(obj) && !obj.metadata?.deletionTimestamp) {
      logger.info('reconciliation is suspended for this object');
      this.queue.forget(key);
      metrics.reconcileTotal.inc({ controller: this.name, result: 'success' });
      return;
    }
    const started = this.clock.now();
    const generation = obj.metadata?.generation ?? 0;
    const abort = new AbortController();
    const flight: { abort: AbortController; revision?: string } = { abort };
    this.inFlight.set(key, flight);
    // What the API server holds now: the informer's copy until this reconcile writes progress.
    let written: unknown = obj.status;
    const ctx: ReconcileContext<NonNullable<T['status']>> = {
      key,
      logger,
      status: structuredClone(obj.status ?? {}) as NonNullable<T['status']>,
      now: () => new Date(this.clock.now()),
      event: (type, reason, message) => void this.opts.recorder.record(obj, type, reason, message),
      skipStatus: false,
      signal: abort.signal,
      workingOn: (revision) => {
        flight.revision = revision;
      },
      progress: async (message) => {
        ctx.status = progressStatus(ctx.status, message, generation, ctx.now());
        const status = structuredClone(ctx.status);
        try {
          const answer = await this.opts.patcher.patch(resource, obj, status, written);
          if (answer) {
            written = status;
            this.written.set(key, answer as T);
          }
        } catch (err) {
          // Progress is a courtesy; the reconcile goes on and its final write says how it ended.
          logger.debug('failed to write progress', { error: errorMessage(err) });
        }
      },
    };
    let outcome: Outcome;
    try {
      outcome = await reconciler.reconcile(obj, ctx);
    } catch (err) {
      outcome = outcomeOf(err, reconciler.failureReason);
    } finally {
      this.inFlight.delete(key);
    }
    const seconds = (this.clock.now() - started) / 1000;
    metrics.reconcileDuration.observe(
      { kind: resource.kind, name: obj.metadata?.name ?? '', namespace: obj.metadata?.namespace ?? '' },
      seconds,
    );

    let status = applyOutcome(ctx.status, outcome, generation, ctx.now());
    const requestedAt = obj.metadata?.annotations?.[REQUESTED_AT_ANNOTATION];
    if (requestedAt) status = { ...status, lastHandledReconcileAt: requestedAt };
    if (!ctx.skipStatus) {
      try {
        const answer = await this.opts.patcher.patch(resource, obj, status, written);
        if (answer) this.written.set(key, answer as T);
      } catch (err) {
        // The object cannot show this outcome, so the log carries it beside the refusal.
        logger.error('failed to update status', {
          error: errorMessage(err),
          outcome: outcome.type,
          reason: outcome.reason,
          message: outcome.message,
        });
        metrics.reconcileTotal.inc({ controller: this.name, result: 'error' });
        metrics.reconcileErrors.inc({ controller: this.name });
        this.queue.addRateLimited(key);
        return;
      }
    }
    if (outcome.type === 'error' || outcome.type === 'stalled') {
      logger.error('Reconciler error', { step: outcome.step, reason: outcome.reason, error: outcome.message });
      if (!ctx.skipStatus) ctx.event('Warning', outcome.reason, outcome.message);
    } else {
      logger.debug('reconciled', {
        outcome: outcome.type,
        reason: outcome.reason,
        durationSeconds: seconds,
        at: rfc3339(ctx.now()),
      });
    }
    const decision = queueDecision(outcome, this.opts.random);
    // This outcome alone decides when the key comes back: a retry or wait scheduled by an earlier
    // outcome (a source that was not ready yet, say) would only reconcile it again for nothing.
    this.queue.cancelDelayed(key);
    switch (decision.action) {
      case 'requeue-after':
        this.queue.forget(key);
        this.queue.addAfter(key, decision.afterMs);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'requeue_after' });
        break;
      case 'backoff':
        this.queue.addRateLimited(key, decision.maxMs);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'error' });
        metrics.reconcileErrors.inc({ controller: this.name });
        break;
      case 'none':
        this.queue.forget(key);
        // A superseded reconcile is queued again already: controller-runtime's "requeue".
        metrics.reconcileTotal.inc({
          controller: this.name,
          result: outcome.type === 'superseded' ? 'requeue' : 'success',
        });
        break;
    }
  }
}

/**
 * Whether `a` is an older version of the object than `b`. resourceVersions are opaque, but the
 * API server's are etcd revisions (integers): compared as such, and never "older" otherwise.
 */
function olderThan(a: KubernetesObject, b: KubernetesObject): boolean {
  const [x, y] = [a.metadata?.resourceVersion, b.metadata?.resourceVersion];
  if (!x || !y || !/^\d+$/.test(x) || !/^\d+$/.test(y)) return false;
  return BigInt(x) < BigInt(y);
}

/**
 * The own-kind predicate, as Flux's (generation changed or reconcile requested): spec changes, a
 * reconcile request and deletion reconcile; status writes and the finalizer we add do not.
 */
export function specOrRequestChanged(oldObj: KubernetesObject, newObj: KubernetesObject): boolean {
  const o = oldObj.metadata ?? {};
  const n = newObj.metadata ?? {};
  if (o.generation !== n.generation) return true;
  if (o.annotations?.[REQUESTED_AT_ANNOTATION] !== n.annotations?.[REQUESTED_AT_ANNOTATION]) return true;
  return Boolean(o.deletionTimestamp) !== Boolean(n.deletionTimestamp);
}
