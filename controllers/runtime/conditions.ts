// kstatus-shaped conditions: Ready/Reconciling/Stalled plus per-kind ones.
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** The API server rejects condition messages longer than this. */
export const MAX_MESSAGE_LENGTH = 32768;

export function trimMessage(message: string): string {
  const flat = message.trim();
  return flat.length <= MAX_MESSAGE_LENGTH ? flat : `${flat.slice(0, MAX_MESSAGE_LENGTH - 3)}...`;
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/**
 * Returns conditions with `type` set. lastTransitionTime moves only when status, reason or
 * message change, so that repeated identical reconciles leave the object untouched.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: { type: string; status: ConditionStatus; reason: string; message: string; observedGeneration?: number },
  now: Date,
): Condition[] {
  const message = trimMessage(next.message);
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === next.type);
  const previous = index >= 0 ? list[index] : undefined;
  const unchanged =
    previous !== undefined &&
    previous.status === next.status &&
    previous.reason === next.reason &&
    previous.message === message;
  const condition: Condition = {
    type: next.type,
    status: next.status,
    ...(next.observedGeneration !== undefined ? { observedGeneration: next.observedGeneration } : {}),
    lastTransitionTime: unchanged ? previous.lastTransitionTime : rfc3339(now),
    reason: next.reason,
    message,
  };
  if (index >= 0) list[index] = condition;
  else list.push(condition);
  return sortConditions(list);
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

// Ready first, then the kstatus pair, then the kind's own in name order: a stable order means a
// stable status, and a stable status means no needless writes.
const PRIORITY: Record<string, number> = { Ready: 0, Reconciling: 1, Stalled: 2 };

function sortConditions(list: Condition[]): Condition[] {
  return list.sort((a, b) => (PRIORITY[a.type] ?? 9) - (PRIORITY[b.type] ?? 9) || a.type.localeCompare(b.type));
}

/** Kubernetes timestamps have second precision. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
