import type { Clock } from './clock.ts';

/** Decides how long a key waits before its next retry, as client-go's rate limiters do. */
export interface RateLimiter {
  when(key: string): number;
  forget(key: string): void;
  retries(key: string): number;
}

/** base·2^failures per key, capped at max. */
export class ExponentialFailureLimiter implements RateLimiter {
  private failures = new Map<string, number>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(baseMs: number, maxMs: number) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long before it matters; min() keeps it finite.
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** Overall token bucket (qps, burst): protects the API server when many keys fail at once. */
export class TokenBucketLimiter implements RateLimiter {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;

  constructor(qps: number, burst: number, clock: Clock) {
    this.qps = qps;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }

  when(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    // Reserve a token even if it is in the future, so callers queue up behind each other.
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  forget(): void {}

  retries(): number {
    return 0;
  }
}

/** The longest wait any of the limiters asks for. */
export class MaxOfLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  retries(key: string): number {
    return Math.max(...this.limiters.map((l) => l.retries(key)));
  }
}

export interface RetryOptions {
  minRetryDelayMs: number;
  maxRetryDelayMs: number;
}

/** Flux's controller default: max(per-item exponential 750ms→15m, bucket of 10 qps / 100 burst). */
export function defaultControllerRateLimiter(clock: Clock, opts?: Partial<RetryOptions>): RateLimiter {
  return new MaxOfLimiter(
    new ExponentialFailureLimiter(opts?.minRetryDelayMs ?? 750, opts?.maxRetryDelayMs ?? 15 * 60_000),
    new TokenBucketLimiter(10, 100, clock),
  );
}
