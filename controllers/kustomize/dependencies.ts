// dependsOn: a Kustomization waits until each Kustomization it depends on is Ready for its
// current generation and has applied the revision its own source currently offers.
import { findCondition } from '../runtime/conditions.ts';
import type { Informer } from '../runtime/informer.ts';
import type { KustomizationSpec, KustomizationStatus } from '../api/kustomize/kustomization.ts';
import type { ManagedObject } from '../runtime/controller.ts';
import type { GitRepositoryStatus } from '../api/source/gitrepository.ts';

export type Kustomization = ManagedObject<KustomizationStatus> & { spec: KustomizationSpec };
export type Source = ManagedObject<GitRepositoryStatus>;

/** Why the first unready dependency is not ready, or undefined when all are. */
export function unreadyDependency(
  obj: Kustomization,
  kustomizations: Informer<Kustomization>,
  sourceOf: (k: Kustomization) => Source | undefined,
): string | undefined {
  for (const dep of obj.spec.dependsOn ?? []) {
    const key = `${dep.namespace ?? obj.metadata!.namespace}/${dep.name}`;
    const other = kustomizations.get(key);
    if (!other) return `dependency '${key}' not found`;
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

/** Index values: the keys of the Kustomizations `obj` depends on. */
export function dependencyKeys(obj: Kustomization): string[] {
  return (obj.spec?.dependsOn ?? []).map((d) => `${d.namespace ?? obj.metadata?.namespace}/${d.name}`);
}

/** Index value: the source an object reads, "Kind/namespace/name". */
export function sourceKey(obj: Kustomization): string[] {
  const ref = obj.spec?.sourceRef;
  return ref ? [`${ref.kind}/${ref.namespace ?? obj.metadata?.namespace}/${ref.name}`] : [];
}
