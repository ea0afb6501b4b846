// status.history (Flux's meta.History): the last reconciliations, newest first, one entry per
// digest of what was reconciled and result. Reconciling the same thing with the same result again
// updates its entry (and moves it first) instead of adding one.
import { createHash } from 'node:crypto';
import { rfc3339 } from './conditions.ts';

export interface Snapshot {
  digest: string;
  firstReconciled: string;
  lastReconciled: string;
  lastReconciledDuration: string;
  lastReconciledStatus: string;
  totalReconciliations: number;
  metadata?: Record<string, string>;
}

export const HISTORY_LENGTH = 5;

/** sha256 of the objects as JSON, in their order: the same manifests give the same digest. */
export function digestOf(objects: readonly unknown[]): string {
  const hash = createHash('sha256');
  for (const o of objects) hash.update(JSON.stringify(o)).update('\n');
  return `sha256:${hash.digest('hex')}`;
}

/** A duration the way Go prints one (1.5s, 250ms, 2m3.5s), which the schema's pattern accepts. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let rest = ms / 1000;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  const s = Number(rest.toFixed(3));
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

export function recordSnapshot(
  history: readonly Snapshot[] | undefined,
  entry: { digest: string; status: string; at: Date; durationMs: number; metadata?: Record<string, string> },
): Snapshot[] {
  const at = rfc3339(entry.at);
  const list = [...(history ?? [])];
  const i = list.findIndex((s) => s.digest === entry.digest && s.lastReconciledStatus === entry.status);
  const previous = i >= 0 ? list.splice(i, 1)[0] : undefined;
  const snapshot: Snapshot = {
    digest: entry.digest,
    firstReconciled: previous?.firstReconciled ?? at,
    lastReconciled: at,
    lastReconciledDuration: formatDuration(entry.durationMs),
    lastReconciledStatus: entry.status,
    totalReconciliations: (previous?.totalReconciliations ?? 0) + 1,
    ...(entry.metadata ? { metadata: entry.metadata } : {}),
  };
  return [snapshot, ...list].slice(0, HISTORY_LENGTH);
}
