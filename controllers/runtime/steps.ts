// The one reconcile shape: an explicit, ordered list of named steps over a state object, run until
// the first one that cannot go on (the idea of source-controller's list of reconcile functions).
//
// The channel for outcomes is `throw`: a step that cannot go on throws its outcome (`stalled()`,
// `waiting()`, `failed()`, `superseded()` from outcome.ts); a step that succeeds returns nothing
// and leaves what later steps need in the state. Anything else a step throws is an `error` with
// the step's reason, or what the recipe's `classify` makes of it. The runner alone catches, marks
// the failing step's negative condition and returns the one Outcome, which the controller maps
// through the outcome table.
import { removeCondition, setCondition } from './conditions.ts';
import type { ReconcileContext } from './controller.ts';
import { ReconcileError, outcomeOf, type ObservedStatus, type Outcome } from './outcome.ts';

export interface Step<S> {
  /** Named in logs and in the outcome when the step ends the reconcile. */
  name: string;
  /** The reason of a failure that is not an outcome. */
  reason: string;
  /**
   * The kind's negative condition for this step (FetchFailed, BuildFailed, …): set True with the
   * failure's reason and message when the step fails (not when it stalls or waits), removed when it passes.
   */
  condition?: string;
  run(state: S): Promise<void> | void;
}

export interface Recipe<S> {
  steps: readonly Step<S>[];
  /** The outcome when every step passed. */
  success(state: S): Outcome;
  /** Maps domain errors of this kind (a transport's auth failure, say) to outcomes; undefined: the step's reason. */
  classify?(err: unknown, step: Step<S>): ReconcileError | undefined;
}

/** Runs the steps in order; returns success or the outcome of the first step that did not pass. */
export async function runSteps<S, T extends ObservedStatus>(
  recipe: Recipe<S>,
  state: S,
  ctx: Pick<ReconcileContext<T>, 'status' | 'now'>,
  generation?: number,
): Promise<Outcome> {
  for (const step of recipe.steps) {
    try {
      await step.run(state);
    } catch (err) {
      const thrown = err instanceof ReconcileError ? err : (recipe.classify?.(err, step) ?? err);
      const outcome = { ...outcomeOf(thrown, step.reason), step: step.name };
      if (step.condition && outcome.type === 'error') {
        ctx.status.conditions = setCondition(
          ctx.status.conditions,
          {
            type: step.condition,
            status: 'True',
            reason: outcome.reason,
            message: outcome.message,
            ...(generation !== undefined ? { observedGeneration: generation } : {}),
          },
          ctx.now(),
        );
      }
      return outcome;
    }
    if (step.condition) ctx.status.conditions = removeCondition(ctx.status.conditions, step.condition);
  }
  return recipe.success(state);
}
