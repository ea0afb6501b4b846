// Health of a set of objects: what `wait: true` and health checks read.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { apiClientFor } from './client.ts';
import { DEFAULT_CONCURRENCY, mapLimit } from './concurrency.ts';
import { reasonOf } from './errors.ts';
import { apiVersionOf, refOf, refOfEntry, subjectOf, type InventoryEntry } from './inventory.ts';
import type { CustomHealth } from './expressions.ts';
import { objectHealth } from './kstatus.ts';

export interface HealthReport {
  ready: boolean;
  /** `Kind/namespace/name: why`, for objects still progressing (or missing). */
  pending: string[];
  /** `Kind/namespace/name: why`, for objects in a terminal failure. */
  failed: string[];
}

export function checkHealth(objects: readonly KubernetesObject[], custom?: CustomHealth): HealthReport {
  const report: HealthReport = { ready: true, pending: [], failed: [] };
  for (const obj of objects) {
    const health = custom?.(obj) ?? objectHealth(obj);
    if (health.state === 'ready') continue;
    report.ready = false;
    report[health.state].push(`${subjectOf(refOf(obj))}: ${health.message}`);
  }
  return report;
}

export class HealthError extends Error {
  readonly report: HealthReport;
  constructor(prefix: string, report: HealthReport) {
    super(`${prefix}: ${[...report.failed, ...report.pending].join('; ')}`);
    this.name = 'HealthError';
    this.report = report;
  }
}

export interface WaitOptions {
  /** Stop at the first terminal failure instead of waiting for the timeout. */
  failFast?: boolean;
  signal?: AbortSignal;
  /**
   * Objects as the API server just returned them, by inventory id: the first round reads these
   * instead of asking again.
   */
  observed?: ReadonlyMap<string, KubernetesObject>;
  /** Rules that replace kstatus for some kinds (healthCheckExprs). */
  custom?: CustomHealth;
  /** Called once, when the first look finds objects not ready: the wait really begins. */
  onWaiting?: (pending: string) => Promise<void> | void;
}

/**
 * Polls the objects until all are ready; throws a HealthError naming every object that is not
 * ready, with its reason, when `timeoutMs` passes. An object is polled until it is first seen
 * ready and not after, so a Job that a TTL controller deletes once complete stays counted as done.
 * With `opts.observed`, objects already known to be ready cost no request at all.
 */
export async function waitForHealth(
  kc: KubeConfig,
  entries: readonly InventoryEntry[],
  timeoutMs: number,
  pollMs = 2000,
  opts: WaitOptions = {},
): Promise<void> {
  const client = apiClientFor(kc);
  const deadline = Date.now() + timeoutMs;
  const health = (obj: KubernetesObject) => opts.custom?.(obj) ?? objectHealth(obj);
  let waiting = entries.map((e) => ({ ref: refOfEntry(e), known: opts.observed?.get(e.id) }));
  let first = true;
  for (;;) {
    const report: HealthReport = { ready: true, pending: [], failed: [] };
    const results = await mapLimit(waiting, DEFAULT_CONCURRENCY, async ({ ref, known }) => {
      if (known) return { ref, ...health(known) };
      try {
        const res = await client.resourceFor(apiVersionOf(ref), ref.kind);
        const live = res && (await client.get(res, ref));
        if (!live)
          return {
            ref,
            state: 'pending' as const,
            message: res ? 'not found' : `kind ${ref.kind} is not served by the API server`,
          };
        return { ref, ...health(live) };
      } catch (err) {
        // One failed read is no verdict on the object; the next poll asks again.
        return { ref, state: 'pending' as const, message: `read failed: ${reasonOf(err)}` };
      }
    });
    for (const r of results) {
      if (r.state === 'ready') continue;
      report.ready = false;
      report[r.state].push(`${subjectOf(r.ref)}: ${r.message}`);
    }
    if (report.ready) return;
    if (opts.failFast && report.failed.length > 0) throw new HealthError('health check failed', report);
    // Only a wait is cancelled: a set found healthy above is done, whatever arrived meanwhile.
    opts.signal?.throwIfAborted();
    if (first) {
      first = false;
      const pending = [...report.failed, ...report.pending];
      await opts.onWaiting?.(pending.length === 1 ? pending[0]! : `${pending.length} objects`);
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new HealthError(`timeout after ${Math.round(timeoutMs / 1000)}s waiting for`, report);
    waiting = results.filter((r) => r.state !== 'ready').map((r) => ({ ref: r.ref, known: undefined }));
    await sleep(Math.min(pollMs, left), undefined, { signal: opts.signal });
  }
}
