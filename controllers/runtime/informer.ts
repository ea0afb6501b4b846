// A cache of one kind, fed by client-node's ListWatch, with what controllers need on top:
// restarts after any error with backoff, periodic relists, a `synced` promise, old/new pairs
// for predicates and secondary indexes. Cached objects are trimmed (trimForCache) as
// controller-runtime's cache does: no controller reads managedFields or the last-applied
// annotation of a cached object (code that needs them reads the live object with a GET).
import { KubernetesObjectApi, ListWatch, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { realClock, type Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import { apiVersionOf, collectionPath, keyOf, type ResourceType } from './resource.ts';
import { apiStatusOf, errorMessage, refusal, statusCode } from './api-errors.ts';

export interface EventHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  /** A full relist this often catches anything a watch may have missed. */
  relistMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  clock?: Clock;
  logger?: Logger;
}

export type IndexFunc<T> = (obj: T) => string[];

export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops what controllers never read from the cache and what makes an object large: its
 * managedFields and `kubectl apply`'s last-applied annotation (a second copy of the object).
 * Changes `obj` in place, so that client-node's ListWatch, which holds the same object, lets
 * them go too.
 */
export function trimForCache<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata;
  if (!meta) return obj;
  if (meta.managedFields !== undefined) delete meta.managedFields;
  const annotations = meta.annotations;
  if (annotations && LAST_APPLIED_ANNOTATION in annotations) {
    const { [LAST_APPLIED_ANNOTATION]: _dropped, ...rest } = annotations;
    meta.annotations = rest;
  }
  return obj;
}

export class Informer<T extends KubernetesObject = KubernetesObject> {
  readonly resource: ResourceType;
  readonly synced: Promise<void>;
  private markSynced!: () => void;
  private isSynced = false;
  private readonly store = new Map<string, T>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly kc: KubeConfig;
  private readonly opts: Required<Omit<InformerOptions, 'namespace' | 'labelSelector' | 'logger'>> & InformerOptions;
  private lw: ListWatch<T> | undefined;
  private stopped = true;
  private backoffMs: number;
  private restartTimer: { cancel(): void } | undefined;
  private relistTimer: { cancel(): void } | undefined;
  /** Errors of the LIST, told apart from those of the WATCH so that a refusal names its verb. */
  private readonly listErrors = new WeakSet<object>();
  private refusedBecause: string | undefined;

  constructor(kc: KubeConfig, resource: ResourceType, opts: InformerOptions = {}) {
    this.kc = kc;
    this.resource = resource;
    this.opts = { relistMs: 10 * 60_000, minBackoffMs: 500, maxBackoffMs: 30_000, clock: realClock, ...opts };
    this.backoffMs = this.opts.minBackoffMs;
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  on(handlers: EventHandlers<T>): void {
    this.handlers.push(handlers);
  }

  addIndex(name: string, fn: IndexFunc<T>): void {
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indexes.set(name, index);
    for (const [key, obj] of this.store) for (const v of fn(obj)) addTo(index, v, key);
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.indexes.get(name)?.get(value);
    if (!this.indexes.has(name)) throw new Error(`informer for ${this.resource.kind} has no index "${name}"`);
    return [...(keys ?? [])].map((k) => this.store.get(k)!).filter(Boolean);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  hasSynced(): boolean {
    return this.isSynced;
  }

  /**
   * Why the API server refuses (401/403) the list or watch of this kind, until one goes through:
   * no object can carry it in a condition, so /readyz and the log say it.
   */
  refused(): string | undefined {
    return this.refusedBecause;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.restartTimer?.cancel();
    this.relistTimer?.cancel();
    const lw = this.lw;
    this.lw = undefined;
    await lw?.stop();
  }

  /** Forces a fresh LIST now (also done every relistMs). */
  async relist(): Promise<void> {
    if (this.stopped) return;
    const old = this.lw;
    this.lw = undefined;
    await old?.stop();
    await this.connect();
  }

  private async connect(): Promise<void> {
    const path = collectionPath(this.resource, this.opts.namespace);
    const api = this.kc.makeApiClient(KubernetesObjectApi);
    const listFn = () =>
      api
        .list<T>(
          apiVersionOf(this.resource),
          this.resource.kind,
          this.opts.namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          this.opts.labelSelector,
        )
        .catch((err: unknown) => {
          if (err !== null && typeof err === 'object') this.listErrors.add(err);
          throw err;
        });
    const lw = new ListWatch<T>(path, new Watch(this.kc), listFn, false, this.opts.labelSelector);
    // Events of a ListWatch we have replaced must not reach the store.
    const current = () => this.lw === lw && !this.stopped;
    lw.on('add', (obj) => current() && this.upsert(obj));
    lw.on('update', (obj) => current() && this.upsert(obj));
    lw.on('delete', (obj) => current() && this.remove(keyOf(obj)));
    lw.on('error', (err) => current() && this.scheduleRestart(lw, err));
    this.lw = lw;
    await this.run(lw);
  }

  /** Starts (or resumes) a ListWatch; when its list went through, the store is in sync. */
  private async run(lw: ListWatch<T>): Promise<void> {
    let failed = false;
    const onError = () => (failed = true);
    lw.on('error', onError);
    try {
      await lw.start();
    } finally {
      lw.off('error', onError);
    }
    if (failed || this.lw !== lw || this.stopped) return;
    // Whatever we hold that the list did not return was deleted while we were not watching.
    const seen = new Set(lw.list().map((o) => keyOf(o)));
    for (const key of [...this.store.keys()]) if (!seen.has(key)) this.remove(key);
    this.backoffMs = this.opts.minBackoffMs;
    this.refusedBecause = undefined;
    this.relistTimer?.cancel();
    this.relistTimer = this.opts.clock.setTimeout(() => void this.relist(), this.opts.relistMs);
    if (!this.isSynced) {
      this.isSynced = true;
      this.markSynced();
    }
  }

  private scheduleRestart(lw: ListWatch<T>, err: unknown): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs);
    const verb = err !== null && typeof err === 'object' && this.listErrors.has(err) ? 'list' : 'watch';
    const refused = this.refusal(verb, err);
    if (refused) {
      this.refusedBecause = refused;
      this.opts.logger?.error('the API server refuses to list or watch this kind; retrying with backoff', {
        kind: this.resource.kind,
        verb,
        error: refused,
        retryInMs: delay,
      });
    } else {
      this.opts.logger?.debug(`${verb} failed; restarting`, {
        kind: this.resource.kind,
        error: errorMessage(err),
        retryInMs: delay,
      });
    }
    this.restartTimer?.cancel();
    // Resuming the same ListWatch continues from its resourceVersion; it relists on 410.
    this.restartTimer = this.opts.clock.setTimeout(() => {
      if (this.lw === lw && !this.stopped) void this.run(lw);
    }, delay);
  }

  /** The refusal in words naming verb and resource; a refused WATCH carries no Status to quote. */
  private refusal(verb: 'list' | 'watch', err: unknown): string | undefined {
    const code = statusCode(err);
    if (code === 403) return apiStatusOf(err)?.message ?? refusal(verb, this.resource, this.opts.namespace);
    if (code === 401) {
      const what = `${verb} ${this.resource.plural}`;
      return `unauthorized: the API server does not accept the kubeconfig's credentials to ${what}`;
    }
    return undefined;
  }

  private upsert(obj: T): void {
    trimForCache(obj);
    const key = keyOf(obj);
    const old = this.store.get(key);
    this.store.set(key, obj);
    // The same version again (a relist): keep the object the ListWatch now holds, not a second copy.
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    this.reindex(key, old, obj);
    for (const h of this.handlers) {
      if (old) h.update?.(old, obj);
      else h.add?.(obj);
    }
  }

  private remove(key: string): void {
    const old = this.store.get(key);
    if (!old) return;
    this.store.delete(key);
    this.reindex(key, old, undefined);
    for (const h of this.handlers) h.delete?.(old);
  }

  private reindex(key: string, oldObj: T | undefined, newObj: T | undefined): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indexes.get(name)!;
      if (oldObj) for (const v of fn(oldObj)) index.get(v)?.delete(key);
      if (newObj) for (const v of fn(newObj)) addTo(index, v, key);
    }
  }
}

function addTo(index: Map<string, Set<string>>, value: string, key: string): void {
  let set = index.get(value);
  if (!set) {
    set = new Set();
    index.set(value, set);
  }
  set.add(key);
}
