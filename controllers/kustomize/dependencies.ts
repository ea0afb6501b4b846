// dependsOn: a Kustomization waits until each Kustomization it depends on is Ready for its
// current generation and has applied the revision its own source currently offers.
import { compile, evaluateBool, type Compiled } from '../runtime/apply/expressions.ts';
import { findCondition } from '../runtime/conditions.ts';
import type { Informer } from '../runtime/informer.ts';
import type { KustomizationSpec, KustomizationStatus } from '../api/kustomize/kustomization.ts';
import type { ManagedObject } from '../runtime/controller.ts';
import type { GitRepositoryStatus } from '../api/source/gitrepository.ts';

export type Kustomization = ManagedObject<KustomizationStatus> & { spec: KustomizationSpec };
export type Source = ManagedObject<GitRepositoryStatus>;

/** Per dependsOn entry, its compiled readyExpr, if it has one. */
export type Readiness = (Compiled | undefined)[];

/** Compiles `dependsOn[].readyExpr`; throws ExpressionError naming the one that does not parse. */
export function readyExpressions(spec: KustomizationSpec): Readiness {
  return (spec.dependsOn ?? []).map((d, i) =>
    d.readyExpr ? compile(d.readyExpr, `spec.dependsOn[${i}].readyExpr`) : undefined,
  );
}

/**
 * Why the first unready dependency is not ready, or undefined when all are. A dependency with a
 * readyExpr is ready when the expression, given `dep` and `self`, is true: it replaces the
 * built-in check, as in Flux.
 */
export function unreadyDependency(
  obj: Kustomization,
  expressions: Readiness,
  kustomizations: Informer<Kustomization>,
  sourceOf: (k: Kustomization) => Source | undefined,
): string | undefined {
  for (const [i, dep] of (obj.spec.dependsOn ?? []).entries()) {
    const key = dependencyKey(obj, dep);
    const other = kustomizations.get(key);
    if (!other) return `dependency '${key}' not found`;
    const expression = expressions[i];
    if (expression) {
      const result = evaluateBool(expression, { dep: other, self: obj });
      if (result === true) continue;
      return `dependency '${key}' is not ready: readyExpr ${result === false ? 'is false' : `failed: ${result}`}`;
    }
    const ready = findCondition(other.status?.conditions, 'Ready');
    if (ready?.status !== 'True' || ready.observedGeneration !== other.metadata?.generation) {
      return `dependency '${key}' is not ready`;
    }
    const revision = sourceOf(other)?.status?.artifact?.revision;
    if (revision && other.status?.lastAppliedRevision !== revision) {
      return `dependency '${key}' is not ready: revision ${revision} not applied yet`;
    }
  }
  return undefined;
}

/** The informer key of one dependsOn entry: its namespace defaults to the Kustomization's. */
export function dependencyKey(obj: Kustomization, dep: { name: string; namespace?: string }): string {
  return `${dep.namespace ?? obj.metadata?.namespace}/${dep.name}`;
}

/** Index values: the keys of the Kustomizations `obj` depends on. */
export function dependencyKeys(obj: Kustomization): string[] {
  return (obj.spec?.dependsOn ?? []).map((d) => dependencyKey(obj, d));
}

/** Index value: the source an object reads, "Kind/namespace/name". */
export function sourceKey(obj: Kustomization): string[] {
  const ref = obj.spec?.sourceRef;
  return ref ? [`${ref.kind}/${ref.namespace ?? obj.metadata?.namespace}/${ref.name}`] : [];
}

/** Index values: the ConfigMaps and Secrets `obj` reads, "Kind/namespace/name". */
export function configKeys(obj: Kustomization): string[] {
  const ns = obj.metadata?.namespace;
  const keys = (obj.spec?.postBuild?.substituteFrom ?? []).map((s) => `${s.kind}/${ns}/${s.name}`);
  const secret = obj.spec?.kubeConfig?.secretRef?.name;
  if (secret) keys.push(`Secret/${ns}/${secret}`);
  return keys;
}
