// Polls instead of sleeping: tests state what must become true, not how long it takes.
import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Prefixed to the last error on timeout, to say what was awaited. */
  message?: string;
}

const expired = Symbol('expired');

/** Calls fn until it resolves and returns its value; on timeout rethrows fn's last error. */
export async function eventually<T>(fn: () => Promise<T>, opts: EventuallyOptions = {}): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 250, message } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = new Error('no attempt finished');
  for (;;) {
    // An attempt that hangs must not outlive the deadline.
    const cancel = new AbortController();
    const timer = sleep(Math.max(deadline - Date.now(), 0), expired, { signal: cancel.signal });
    try {
      const result = await Promise.race([fn(), timer]);
      if (result !== expired) return result as T;
    } catch (err) {
      last = err;
    } finally {
      cancel.abort();
      timer.catch(() => {});
    }
    if (Date.now() + intervalMs >= deadline) break;
    await sleep(intervalMs);
  }
  const err = last instanceof Error ? last : new Error(String(last));
  err.message = `${message ? `${message}: ` : ''}still failing after ${timeoutMs} ms: ${err.message}`;
  throw err;
}
