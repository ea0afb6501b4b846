// The one mapping from the outcome of a reconcile to conditions and to what the queue does next
// (ARCHITECTURE §3). Inside a reconcile, a step that cannot go on throws its outcome (`stalled()`,
// `waiting()`, `failed()`, `superseded()`); the step runner (steps.ts) catches it and the
// reconciler returns the one Outcome. Reconcilers never touch the queue.
import { setCondition, removeCondition, type Condition } from './conditions.ts';
import { ConditionType, Reason } from './reasons.ts';
import { errorMessage } from './api-errors.ts';

export type OutcomeType = 'success' | 'waiting' | 'stalled' | 'error' | 'superseded';

export interface Outcome {
  type: OutcomeType;
  reason: string;
  message: string;
  /** success: the spec interval; waiting: how long to wait; error: the longest the backoff may grow to. */
  requeueAfterMs?: number;
  /** The step that ended the reconcile, when one failed (for logs). */
  step?: string;
}

interface Row {
  ready: 'True' | 'False';
  /** Reconciling=True with this reason, or no Reconciling condition. */
  reconciling: string | false;
  stalled: boolean;
  observeGeneration: boolean;
  /** recheck: nothing is retried, but the object is looked at again after requeueAfterMs when given. */
  queue: 'after-jittered' | 'after' | 'none' | 'backoff' | 'recheck';
}

export const OUTCOME_TABLE: Readonly<Record<OutcomeType, Row>> = {
  success: { ready: 'True', reconciling: false, stalled: false, observeGeneration: true, queue: 'after-jittered' },
  waiting: {
    ready: 'False',
    reconciling: Reason.ProgressingWithRetry,
    stalled: false,
    observeGeneration: false,
    queue: 'after',
  },
  stalled: { ready: 'False', reconciling: false, stalled: true, observeGeneration: true, queue: 'recheck' },
  error: {
    ready: 'False',
    reconciling: Reason.ProgressingWithRetry,
    stalled: false,
    observeGeneration: false,
    queue: 'backoff',
  },
  // A newer request for the object arrived and cut this reconcile short (a health wait): the
  // queue already holds the object again, so nothing is scheduled here.
  superseded: {
    ready: 'False',
    reconciling: Reason.Progressing,
    stalled: false,
    observeGeneration: false,
    queue: 'none',
  },
};

/** How a step hands its outcome to the runner; anything else thrown counts as `error` with the step's reason. */
export class ReconcileError extends Error {
  readonly outcome: OutcomeType;
  readonly reason: string;
  readonly requeueAfterMs: number | undefined;

  constructor(outcome: OutcomeType, reason: string, message: string, requeueAfterMs?: number) {
    super(message);
    this.name = 'ReconcileError';
    this.outcome = outcome;
    this.reason = reason;
    this.requeueAfterMs = requeueAfterMs;
  }
}

/**
 * `recheckAfterMs`: a stall that something outside the spec can lift (a HelmRelease out of retries
 * whose values come from a ConfigMap) is looked at again after this long; without it, only a
 * spec change or a reconcile request brings the object back.
 */
export function stalled(reason: string, message: string, recheckAfterMs?: number): ReconcileError {
  return new ReconcileError('stalled', reason, message, recheckAfterMs);
}

export function waiting(reason: string, message: string, requeueAfterMs: number): ReconcileError {
  return new ReconcileError('waiting', reason, message, requeueAfterMs);
}

/** `retryAfterMs` caps the backoff: a kind's spec.retryInterval, say. */
export function failed(reason: string, message: string, retryAfterMs?: number): ReconcileError {
  return new ReconcileError('error', reason, message, retryAfterMs);
}

/** A newer request for the object made this reconcile moot (Flux's HealthCheckCanceled). */
export function superseded(reason: string, message: string): ReconcileError {
  return new ReconcileError('superseded', reason, message);
}

export function outcomeOf(err: unknown, fallbackReason: string = Reason.ReconciliationFailed): Outcome {
  if (err instanceof ReconcileError) {
    return {
      type: err.outcome,
      reason: err.reason,
      message: err.message,
      ...(err.requeueAfterMs !== undefined ? { requeueAfterMs: err.requeueAfterMs } : {}),
    };
  }
  const message = errorMessage(err);
  return { type: 'error', reason: fallbackReason, message };
}

export interface ObservedStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  [field: string]: unknown;
}

/** Writes Ready/Reconciling/Stalled and observedGeneration for the outcome, per the table. */
export function applyOutcome<S extends ObservedStatus>(
  status: S,
  outcome: Outcome,
  generation: number,
  now: Date,
): S & { conditions: Condition[]; observedGeneration?: number } {
  const row = OUTCOME_TABLE[outcome.type];
  let conditions = setCondition(
    status.conditions,
    {
      type: ConditionType.Ready,
      status: row.ready,
      reason: outcome.reason,
      message: outcome.message,
      observedGeneration: generation,
    },
    now,
  );
  conditions = row.reconciling
    ? setCondition(
        conditions,
        {
          type: ConditionType.Reconciling,
          status: 'True',
          reason: row.reconciling,
          message: outcome.message,
          observedGeneration: generation,
        },
        now,
      )
    : removeCondition(conditions, ConditionType.Reconciling);
  conditions = row.stalled
    ? setCondition(
        conditions,
        {
          type: ConditionType.Stalled,
          status: 'True',
          reason: outcome.reason,
          message: outcome.message,
          observedGeneration: generation,
        },
        now,
      )
    : removeCondition(conditions, ConditionType.Stalled);
  return {
    ...status,
    conditions,
    ...(row.observeGeneration ? { observedGeneration: generation } : {}),
  };
}

export type QueueDecision =
  | { action: 'requeue-after'; afterMs: number }
  | { action: 'backoff'; maxMs?: number }
  | { action: 'none' };

export const JITTER_FRACTION = 0.05;

/** interval ±5%, so that objects created together do not reconcile in lockstep forever. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (1 + (random() * 2 - 1) * JITTER_FRACTION));
}

export function queueDecision(outcome: Outcome, random: () => number = Math.random): QueueDecision {
  const row = OUTCOME_TABLE[outcome.type];
  switch (row.queue) {
    case 'after-jittered':
      return outcome.requeueAfterMs
        ? { action: 'requeue-after', afterMs: jitter(outcome.requeueAfterMs, random) }
        : { action: 'none' };
    case 'after':
      return { action: 'requeue-after', afterMs: outcome.requeueAfterMs ?? 30_000 };
    case 'backoff':
      return outcome.requeueAfterMs ? { action: 'backoff', maxMs: outcome.requeueAfterMs } : { action: 'backoff' };
    case 'recheck':
      return outcome.requeueAfterMs ? { action: 'requeue-after', afterMs: outcome.requeueAfterMs } : { action: 'none' };
    case 'none':
      return { action: 'none' };
  }
}

/**
 * The status a reconcile shows while it works on a new generation or revision (kstatus
 * "in progress"): Reconciling=True reason Progressing with `message`, Ready=Unknown.
 */
export function progressStatus<S extends ObservedStatus>(status: S, message: string, generation: number, now: Date): S {
  let conditions = setCondition(
    status.conditions,
    {
      type: ConditionType.Reconciling,
      status: 'True',
      reason: Reason.Progressing,
      message,
      observedGeneration: generation,
    },
    now,
  );
  conditions = setCondition(
    conditions,
    {
      type: ConditionType.Ready,
      status: 'Unknown',
      reason: Reason.Progressing,
      message: 'Reconciliation in progress',
      observedGeneration: generation,
    },
    now,
  );
  return { ...status, conditions: removeCondition(conditions, ConditionType.Stalled) };
}
