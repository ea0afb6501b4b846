import type { Clock } from './clock.ts';
import type { RateLimiter } from './rate-limiter.ts';

/** Hooks the queue calls so that metrics stay out of its logic. */
export interface QueueObserver {
  depth(n: number): void;
  added(): void;
  retried(): void;
  waited(ms: number): void;
  worked(ms: number): void;
}

const nobody: QueueObserver = { depth() {}, added() {}, retried() {}, waited() {}, worked() {} };

/**
 * A key queue with client-go's guarantees: a key waits in the queue at most once, a key being
 * processed is never handed to a second worker, and adds during processing are merged into one
 * requeue that happens when the worker calls done().
 */
export class WorkQueue {
  private readonly order: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly enqueuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; cancel(): void }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly observer: QueueObserver;

  constructor(clock: Clock, limiter: RateLimiter, observer: QueueObserver = nobody) {
    this.clock = clock;
    this.limiter = limiter;
    this.observer = observer;
  }

  /** Queues the key at the back, or at the front with `first` (moving it there if it waits already). */
  add(key: string, first = false): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (!first || this.processing.has(key)) return;
      const at = this.order.indexOf(key);
      if (at > 0) {
        this.order.splice(at, 1);
        this.order.unshift(key);
      }
      return;
    }
    this.observer.added();
    this.dirty.add(key);
    this.enqueuedAt.set(key, this.clock.now());
    if (this.processing.has(key)) return;
    this.push(key, first);
  }

  /** Adds the key after a delay; a pending delay for the same key is kept if it is sooner. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    pending?.cancel();
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, cancel: timer.cancel });
  }

  addRateLimited(key: string, maxMs = Infinity): void {
    this.observer.retried();
    this.addAfter(key, Math.min(this.limiter.when(key), maxMs));
  }

  /** Clears the failure history of a key (after a success). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Drops a delayed add of the key that has not fired yet. */
  cancelDelayed(key: string): void {
    this.delayed.get(key)?.cancel();
    this.delayed.delete(key);
  }

  numRequeues(key: string): number {
    return this.limiter.retries(key);
  }

  /** Resolves with the next key, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.order.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) this.observer.worked(this.clock.now() - started);
    this.startedAt.delete(key);
    if (this.dirty.has(key)) this.push(key);
    if (this.processing.size === 0) for (const fn of this.drainWaiters.splice(0)) fn();
  }

  len(): number {
    return this.order.length;
  }

  /** Seconds spent so far on the keys being processed: summed, and the longest (client-go's gauges). */
  inProgress(): { unfinishedSeconds: number; longestSeconds: number } {
    const now = this.clock.now();
    let unfinished = 0;
    let longest = 0;
    for (const started of this.startedAt.values()) {
      unfinished += now - started;
      longest = Math.max(longest, now - started);
    }
    return { unfinishedSeconds: unfinished / 1000, longestSeconds: longest / 1000 };
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** Stops handing out keys; resolves when every key being processed is done. */
  shutDown(): Promise<void> {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) d.cancel();
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private push(key: string, first = false): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(this.take(key));
      return;
    }
    if (first) this.order.unshift(key);
    else this.order.push(key);
    this.observer.depth(this.order.length);
  }

  private take(key: string): string {
    this.processing.add(key);
    this.dirty.delete(key);
    this.startedAt.set(key, this.clock.now());
    const queued = this.enqueuedAt.get(key);
    if (queued !== undefined) this.observer.waited(this.clock.now() - queued);
    this.enqueuedAt.delete(key);
    this.observer.depth(this.order.length);
    return key;
  }
}
