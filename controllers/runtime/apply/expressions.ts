// CEL expressions over objects (Flux's healthCheckExprs and dependsOn readyExpr), evaluated with
// @marcbachmann/cel-js. Expressions are compiled once, up front: a syntax error is the spec's
// fault and is reported as such; an evaluation error (a field the object does not have yet) only
// means "not yet".
import type { KubernetesObject } from '@kubernetes/client-node';
import { parse } from '@marcbachmann/cel-js';
import type { ObjectHealth } from './kstatus.ts';
import { errorMessage } from '../api-errors.ts';

/** An expression that does not parse; `message` names where it is and what is wrong. */
export class ExpressionError extends Error {
  override name = 'ExpressionError';
}

export type Compiled = (variables: Record<string, unknown>) => unknown;

/** The first line of a cel-js message (the rest is a drawing of the position). */
function firstLine(err: unknown): string {
  return errorMessage(err).split('\n')[0]!.trim();
}

export function compile(expression: string, where: string): Compiled {
  let run: (ctx: Record<string, unknown>) => unknown;
  try {
    run = parse(expression);
  } catch (err) {
    throw new ExpressionError(`${where}: invalid CEL expression ${JSON.stringify(expression)}: ${firstLine(err)}`);
  }
  return (variables) => run(variables);
}

/** Evaluates to a boolean; anything else, or an error, is reported as a string. */
export function evaluateBool(compiled: Compiled, variables: Record<string, unknown>): boolean | string {
  try {
    const value = compiled(variables);
    return typeof value === 'boolean'
      ? value
      : `evaluated to ${typeof value === 'bigint' ? value : JSON.stringify(value)}, not a bool`;
  } catch (err) {
    return firstLine(err);
  }
}

export interface HealthExpression {
  apiVersion: string;
  kind: string;
  current: string;
  inProgress?: string;
  failed?: string;
}

/** Health of objects of the listed kinds by their expressions; undefined for other kinds. */
export type CustomHealth = (obj: KubernetesObject) => ObjectHealth | undefined;

/**
 * Compiles `spec.healthCheckExprs`. For an object of a listed kind, as in Flux: `inProgress`,
 * then `failed`, then `current`; the first true decides, and none true means in progress. The
 * expressions see the object's top-level fields (`metadata`, `spec`, `status`, …).
 */
export function healthExpressions(list: readonly HealthExpression[], field = 'spec.healthCheckExprs'): CustomHealth {
  const byKind = new Map<string, { state: ObjectHealth['state']; name: string; run: Compiled }[]>();
  for (const [i, e] of list.entries()) {
    const where = `${field}[${i}]`;
    const rules: { state: ObjectHealth['state']; name: string; run: Compiled }[] = [];
    if (e.inProgress)
      rules.push({ state: 'pending', name: 'inProgress', run: compile(e.inProgress, `${where}.inProgress`) });
    if (e.failed) rules.push({ state: 'failed', name: 'failed', run: compile(e.failed, `${where}.failed`) });
    rules.push({ state: 'ready', name: 'current', run: compile(e.current, `${where}.current`) });
    byKind.set(`${e.apiVersion}/${e.kind}`, rules);
  }
  return (obj) => {
    const rules = byKind.get(`${obj.apiVersion}/${obj.kind}`);
    if (!rules) return undefined;
    const variables = obj as unknown as Record<string, unknown>;
    const errors: string[] = [];
    for (const rule of rules) {
      const result = evaluateBool(rule.run, variables);
      if (result === true) return { state: rule.state, message: `${rule.name} expression is true` };
      if (typeof result === 'string') errors.push(`${rule.name}: ${result}`);
    }
    return {
      state: 'pending',
      message:
        errors.length > 0 ? `expressions not yet true (${errors.join('; ')})` : 'current expression is not yet true',
    };
  };
}
