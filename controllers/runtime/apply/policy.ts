// Per-object apply and prune policies, read from annotations (or labels, which Flux also reads)
// under one domain. Flux's keys and values are honoured on the manifest and on the live object
// alike, so a user can pin an object in the cluster (`kubectl annotate`) without changing git.
import type { KubernetesObject } from '@kubernetes/client-node';

export const DEFAULT_ANNOTATION_DOMAIN = 'kustomize.toolkit.fluxcd.io';

export interface ApplyPolicy {
  /** Ignore or reconcile: disabled: neither validated nor applied. */
  skip: boolean;
  /** Create when missing, never update. */
  ifNotPresent: boolean;
  /** Keep fields other managers set: no take-over of their managed fields. */
  merge: boolean;
  /** Recreate when an immutable field changes. */
  force: boolean;
}

function annotated(objs: Array<KubernetesObject | undefined>, key: string, value: string): boolean {
  return objs.some((o) => o?.metadata?.annotations?.[key] === value || o?.metadata?.labels?.[key] === value);
}

export function applyPolicy(
  desired: KubernetesObject,
  live: KubernetesObject | undefined,
  domain = DEFAULT_ANNOTATION_DOMAIN,
): ApplyPolicy {
  const both = [desired, live];
  const ssa = `${domain}/ssa`;
  return {
    skip: annotated(both, ssa, 'Ignore') || annotated(both, `${domain}/reconcile`, 'disabled'),
    ifNotPresent: annotated(both, ssa, 'IfNotPresent'),
    merge: annotated(both, ssa, 'Merge'),
    force: annotated(both, `${domain}/force`, 'enabled'),
  };
}

/** Whether prune must leave the live object alone. */
export function pruneDisabled(live: KubernetesObject, domain = DEFAULT_ANNOTATION_DOMAIN): boolean {
  return annotated([live], `${domain}/prune`, 'disabled');
}
