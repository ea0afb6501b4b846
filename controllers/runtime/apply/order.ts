// The order objects are applied in. Stages exist because some objects must be served before others
// can even be validated: a custom resource needs its CRD established, a namespaced object its
// Namespace. Within a stage, the kind order puts what admission and controllers read (quotas,
// limit ranges, service accounts, config) before the workloads that use it, and webhooks last so a
// webhook whose backend is not running yet cannot block the rest of the set.
import type { ObjectRef } from './inventory.ts';

type KindRef = Pick<ObjectRef, 'group' | 'kind'>;

const KIND_ORDER = [
  'CustomResourceDefinition',
  'Namespace',
  'ResourceQuota',
  'LimitRange',
  'PriorityClass',
  'NetworkPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
];
const rank = new Map(KIND_ORDER.map((k, i) => [k, i]));

export function isCRD(ref: KindRef): boolean {
  return ref.kind === 'CustomResourceDefinition' && ref.group === 'apiextensions.k8s.io';
}

export function isNamespace(ref: KindRef): boolean {
  return ref.kind === 'Namespace' && ref.group === '';
}

/** 0: definitions (CRDs, Namespaces, ClusterRoles); 1: *Class kinds; 2: everything else. */
export function stageOf(ref: KindRef): number {
  if (isCRD(ref) || isNamespace(ref) || (ref.kind === 'ClusterRole' && ref.group === 'rbac.authorization.k8s.io'))
    return 0;
  if (ref.kind.endsWith('Class')) return 1;
  return 2;
}

export const STAGES = 3;

/** Known kinds in KIND_ORDER, then unknown kinds by name; ties by namespace and name. */
export function compareRefs(a: ObjectRef, b: ObjectRef): number {
  const ra = rank.get(a.kind) ?? KIND_ORDER.length;
  const rb = rank.get(b.kind) ?? KIND_ORDER.length;
  if (ra !== rb) return ra - rb;
  for (const key of ['kind', 'group', 'namespace', 'name'] as const) {
    if (a[key] !== b[key]) return a[key] < b[key] ? -1 : 1;
  }
  return 0;
}
