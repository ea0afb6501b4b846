// Readiness of one live object, following kstatus (sigs.k8s.io/cli-utils/pkg/kstatus): built-in
// workloads by their replica counts, Jobs by their terminal conditions, CRDs by Established, and
// everything else by the Ready/Reconciling/Stalled conditions. An object whose controller has
// not yet seen its latest generation is never ready, whatever its status says.
import type { KubernetesObject } from '@kubernetes/client-node';
import { refOf } from './inventory.ts';

export type HealthState = 'ready' | 'pending' | 'failed';

export interface ObjectHealth {
  state: HealthState;
  message: string;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

type Status = Record<string, unknown> & { conditions?: Condition[]; observedGeneration?: number };
type Obj = KubernetesObject & { spec?: Record<string, unknown>; status?: Status };

const ready = (message: string): ObjectHealth => ({ state: 'ready', message });
const pending = (message: string): ObjectHealth => ({ state: 'pending', message });
const failed = (message: string): ObjectHealth => ({ state: 'failed', message });

function condition(obj: Obj, type: string): Condition | undefined {
  const list = obj.status?.conditions;
  return Array.isArray(list) ? list.find((c) => c?.type === type) : undefined;
}

function explain(c: Condition): string {
  return [c.reason, c.message].filter(Boolean).join(': ') || `${c.type}=${c.status}`;
}

function num(value: unknown, fallback = 0): number {
  return typeof value === 'number' ? value : fallback;
}

function deploymentHealth(obj: Obj): ObjectHealth {
  const spec = obj.spec ?? {};
  const status = obj.status ?? {};
  const want = num(spec.replicas, 1);
  const progressing = condition(obj, 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded')
    return failed(`progress deadline exceeded: ${explain(progressing)}`);
  if (spec.paused === true) return ready('paused');
  const updated = num(status.updatedReplicas);
  const available = num(status.availableReplicas);
  const total = num(status.replicas);
  if (updated < want) return pending(`${updated}/${want} replicas updated`);
  if (total > updated) return pending(`${total - updated} old replicas pending termination`);
  if (available < want) {
    const unavailable = condition(obj, 'Available');
    const why = unavailable?.status === 'False' ? ` (${explain(unavailable)})` : '';
    return pending(`${available}/${want} replicas available${why}`);
  }
  return ready(`${available}/${want} replicas available`);
}

function statefulSetHealth(obj: Obj): ObjectHealth {
  const spec = obj.spec ?? {};
  const status = obj.status ?? {};
  const strategy = (spec.updateStrategy ?? {}) as { type?: string; rollingUpdate?: { partition?: number } };
  if (strategy.type === 'OnDelete') return ready('update strategy OnDelete');
  const want = num(spec.replicas, 1);
  const readyReplicas = num(status.readyReplicas);
  if (num(status.replicas) < want) return pending(`${num(status.replicas)}/${want} replicas created`);
  if (readyReplicas < want) return pending(`${readyReplicas}/${want} replicas ready`);
  const partition = num(strategy.rollingUpdate?.partition);
  const updated = num(status.updatedReplicas);
  if (partition > 0) {
    return updated < want - partition
      ? pending(`${updated}/${want - partition} replicas updated (partition ${partition})`)
      : ready('partitioned roll out complete');
  }
  if (status.updateRevision && status.currentRevision !== status.updateRevision)
    return pending(`${updated}/${want} replicas at revision ${String(status.updateRevision)}`);
  return ready(`${readyReplicas}/${want} replicas ready`);
}

function daemonSetHealth(obj: Obj): ObjectHealth {
  const status = obj.status ?? {};
  const want = num(status.desiredNumberScheduled);
  const counts: Array<[string, unknown]> = [
    ['scheduled', status.currentNumberScheduled],
    ['updated', status.updatedNumberScheduled],
    ['available', status.numberAvailable],
    ['ready', status.numberReady],
  ];
  for (const [what, value] of counts) if (num(value) < want) return pending(`${num(value)}/${want} pods ${what}`);
  return ready(`${want}/${want} pods ready`);
}

function replicaSetHealth(obj: Obj): ObjectHealth {
  const want = num(obj.spec?.replicas, 1);
  const available = num(obj.status?.availableReplicas);
  const failure = condition(obj, 'ReplicaFailure');
  if (available < want)
    return pending(
      `${available}/${want} replicas available${failure?.status === 'True' ? ` (${explain(failure)})` : ''}`,
    );
  return ready(`${available}/${want} replicas available`);
}

function jobHealth(obj: Obj): ObjectHealth {
  const failedCond = condition(obj, 'Failed');
  if (failedCond?.status === 'True') return failed(`job failed: ${explain(failedCond)}`);
  const complete = condition(obj, 'Complete');
  if (complete?.status === 'True') return ready('job complete');
  const status = obj.status ?? {};
  if (obj.spec?.suspend === true) return pending('job suspended');
  return pending(
    `job in progress: ${num(status.active)} active, ${num(status.succeeded)} succeeded, ${num(status.failed)} failed`,
  );
}

function podHealth(obj: Obj): ObjectHealth {
  const phase = obj.status?.phase;
  if (phase === 'Succeeded') return ready('pod succeeded');
  if (phase === 'Failed') return failed(`pod failed${obj.status?.message ? `: ${String(obj.status.message)}` : ''}`);
  const readyCond = condition(obj, 'Ready');
  if (readyCond?.status === 'True') return ready('pod ready');
  const scheduled = condition(obj, 'PodScheduled');
  if (scheduled?.status === 'False') return pending(`pod not scheduled: ${explain(scheduled)}`);
  return pending(`pod ${String(phase ?? 'Pending')}${readyCond ? `: ${explain(readyCond)}` : ''}`);
}

function crdHealth(obj: Obj): ObjectHealth {
  const names = condition(obj, 'NamesAccepted');
  if (names?.status === 'False') return failed(`names not accepted: ${explain(names)}`);
  const established = condition(obj, 'Established');
  if (established?.status === 'True') return ready('established');
  return pending(established ? `not established: ${explain(established)}` : 'not established');
}

function pvcHealth(obj: Obj): ObjectHealth {
  const phase = obj.status?.phase;
  if (phase === 'Bound') return ready('bound');
  return phase === 'Lost' ? failed('claim lost its volume') : pending(`claim ${String(phase ?? 'Pending')}`);
}

function serviceHealth(obj: Obj): ObjectHealth {
  const spec = obj.spec ?? {};
  if (spec.type === 'LoadBalancer' && !spec.clusterIP) return pending('cluster IP not allocated');
  return ready('service');
}

function conditionsHealth(obj: Obj): ObjectHealth {
  const stalled = condition(obj, 'Stalled');
  if (stalled?.status === 'True') return failed(`stalled: ${explain(stalled)}`);
  const reconciling = condition(obj, 'Reconciling');
  if (reconciling?.status === 'True') return pending(`reconciling: ${explain(reconciling)}`);
  const readyCond = condition(obj, 'Ready');
  if (!readyCond) return ready('no Ready condition');
  if (readyCond.status === 'True') return ready(explain(readyCond));
  if (readyCond.status === 'False') return failed(`not ready: ${explain(readyCond)}`);
  return pending(`not ready: ${explain(readyCond)}`);
}

const BY_KIND: Record<string, (obj: Obj) => ObjectHealth> = {
  'apps/Deployment': deploymentHealth,
  'apps/StatefulSet': statefulSetHealth,
  'apps/DaemonSet': daemonSetHealth,
  'apps/ReplicaSet': replicaSetHealth,
  'batch/Job': jobHealth,
  '/Pod': podHealth,
  '/PersistentVolumeClaim': pvcHealth,
  '/Service': serviceHealth,
  'apiextensions.k8s.io/CustomResourceDefinition': crdHealth,
};

export function objectHealth(object: KubernetesObject): ObjectHealth {
  const obj = object as Obj;
  if (obj.metadata?.deletionTimestamp) return pending('being deleted');
  const generation = obj.metadata?.generation;
  const observed = obj.status?.observedGeneration;
  if (typeof generation === 'number' && typeof observed === 'number' && observed < generation) {
    return pending(`generation ${generation} not yet observed (observed ${observed})`);
  }
  const rule = BY_KIND[`${refOf(obj).group}/${obj.kind}`];
  if (rule) {
    // A built-in controller that has not written status yet has not acted on the object.
    if (!obj.status && obj.kind !== 'Service') return pending('no status yet');
    return rule(obj);
  }
  if (!obj.status || typeof obj.status !== 'object') return ready('no status');
  return conditionsHealth(obj);
}
