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
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return failed(`progress deadline exceeded: ${explain(progressing)}`);
  if (spec.paused === true) return ready('paused');
  const total = num(status.replicas);
  const updated = num(status.updatedReplicas);
  const available = num(status.availableReplicas);
  if (total < want) return pending(`${total}/${want} replicas created`);
  if (updated < want) return pending(`${updated}/${want} replicas updated`);
  if (total > want) return pending(`${total - want} old replicas pending termination`);
  if (available < updated) {
    const unavailable = condition(obj, 'Available');
    const why = unavailable?.status === 'False' ? ` (${explain(unavailable)})` : '';
    return pending(`${available}/${updated} replicas available${why}`);
  }
  if (num(status.readyReplicas) < want) return pending(`${num(status.readyReplicas)}/${want} replicas ready`);
  // Without a progress deadline the controller never writes Progressing (kstatus: MaxInt32 means none).
  const deadline = num(spec.progressDeadlineSeconds, 2 ** 31 - 1);
  if (deadline !== 2 ** 31 - 1 && !(progressing?.status === 'True' && progressing.reason === 'NewReplicaSetAvailable'))
    return pending(`new replica set not available${progressing ? ` (${explain(progressing)})` : ''}`);
  const availableCond = condition(obj, 'Available');
  if (availableCond?.status !== 'True')
    return pending(`deployment not available${availableCond ? ` (${explain(availableCond)})` : ''}`);
  return ready(`${available}/${want} replicas available`);
}

function statefulSetHealth(obj: Obj): ObjectHealth {
  const spec = obj.spec ?? {};
  const status = obj.status ?? {};
  const strategy = (spec.updateStrategy ?? {}) as { type?: string; rollingUpdate?: { partition?: number } };
  if (strategy.type === 'OnDelete') return ready('update strategy OnDelete');
  const want = num(spec.replicas, 1);
  const total = num(status.replicas);
  const readyReplicas = num(status.readyReplicas);
  if (total < want) return pending(`${total}/${want} replicas created`);
  if (readyReplicas < want) return pending(`${readyReplicas}/${want} replicas ready`);
  if (total > want) return pending(`${total - want} extra replicas pending termination`);
  const updated = num(status.updatedReplicas);
  const partition = strategy.rollingUpdate?.partition;
  if (typeof partition === 'number') {
    return updated < want - partition
      ? pending(`${updated}/${want - partition} replicas updated (partition ${partition})`)
      : ready('partitioned roll out complete');
  }
  const current = num(status.currentReplicas);
  if (current < want) return pending(`${current}/${want} replicas current`);
  if ((status.currentRevision ?? '') !== (status.updateRevision ?? ''))
    return pending(`${updated}/${want} replicas at revision ${String(status.updateRevision ?? '')}`);
  return ready(`${readyReplicas}/${want} replicas ready`);
}

function daemonSetHealth(obj: Obj): ObjectHealth {
  const status = obj.status ?? {};
  // The DaemonSet controller always writes both; without them it has not acted on the object.
  if (typeof obj.metadata?.generation !== 'number') return pending('no metadata.generation');
  if (typeof status.observedGeneration !== 'number') return pending('no status.observedGeneration');
  if (typeof status.desiredNumberScheduled !== 'number') return pending('no status.desiredNumberScheduled');
  const want = status.desiredNumberScheduled;
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
  const status = obj.status ?? {};
  const failure = condition(obj, 'ReplicaFailure');
  if (failure?.status === 'True') return pending(`replica failure: ${explain(failure)}`);
  const counts: Array<[string, unknown]> = [
    ['labelled', status.fullyLabeledReplicas],
    ['available', status.availableReplicas],
    ['ready', status.readyReplicas],
  ];
  for (const [what, value] of counts) if (num(value) < want) return pending(`${num(value)}/${want} replicas ${what}`);
  const total = num(status.replicas);
  if (total > want) return pending(`${total - want} extra replicas pending termination`);
  return ready(`${num(status.availableReplicas)}/${want} replicas available`);
}

/** As Flux's Job status reader (fluxcd/pkg runtime/statusreaders): ready once complete, not merely started. */
function jobHealth(obj: Obj): ObjectHealth {
  if (obj.spec?.suspend === true) return ready('job suspended');
  const complete = condition(obj, 'Complete');
  if (complete?.status === 'True') return ready('job complete');
  const failedCond = condition(obj, 'Failed');
  if (failedCond?.status === 'True') return failed(`job failed: ${explain(failedCond)}`);
  const status = obj.status ?? {};
  return pending(
    `job in progress: ${num(status.active)} active, ${num(status.succeeded)} succeeded, ${num(status.failed)} failed`,
  );
}

/** How long a Pod may stay unschedulable before it counts as failed (kstatus ScheduleWindow). */
const SCHEDULE_WINDOW_MS = 15_000;

function podHealth(obj: Obj): ObjectHealth {
  const phase = obj.status?.phase;
  if (phase === 'Succeeded') return ready('pod succeeded');
  // A finished Pod is done, whatever its exit: kstatus calls it Current.
  if (phase === 'Failed') return ready(`pod failed${obj.status?.message ? `: ${String(obj.status.message)}` : ''}`);
  const readyCond = condition(obj, 'Ready');
  if (phase === 'Running') {
    if (readyCond?.status === 'True') return ready('pod ready');
    const statuses = (obj.status?.containerStatuses ?? []) as {
      name?: string;
      state?: { waiting?: { reason?: string } };
    }[];
    const looping = statuses.filter((c) => c?.state?.waiting?.reason === 'CrashLoopBackOff').map((c) => c.name);
    if (looping.length > 0) return failed(`containers in CrashLoopBackOff: ${looping.join(', ')}`);
    return pending(`pod running, not ready${readyCond ? `: ${explain(readyCond)}` : ''}`);
  }
  const scheduled = condition(obj, 'PodScheduled');
  if (phase === 'Pending' && scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const created = Date.parse(String(obj.metadata?.creationTimestamp ?? ''));
    const young = Number.isFinite(created) && Date.now() - SCHEDULE_WINDOW_MS < created;
    return (young ? pending : failed)(`pod not scheduled: ${explain(scheduled)}`);
  }
  return pending(`pod ${String(phase ?? 'Pending')}${readyCond ? `: ${explain(readyCond)}` : ''}`);
}

function crdHealth(obj: Obj): ObjectHealth {
  const names = condition(obj, 'NamesAccepted');
  if (names?.status === 'False') return failed(`names not accepted: ${explain(names)}`);
  const established = condition(obj, 'Established');
  if (established?.status === 'True') return ready('established');
  if (established?.status === 'False' && established.reason !== 'Installing')
    return failed(`not established: ${explain(established)}`);
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

/** kstatus's standard conditions, which decide for any kind that sets them. */
function standardConditionsHealth(obj: Obj): ObjectHealth | undefined {
  const stalled = condition(obj, 'Stalled');
  if (stalled?.status === 'True') return failed(`stalled: ${explain(stalled)}`);
  const reconciling = condition(obj, 'Reconciling');
  if (reconciling?.status === 'True') return pending(`reconciling: ${explain(reconciling)}`);
  return undefined;
}

function conditionsHealth(obj: Obj): ObjectHealth {
  const readyCond = condition(obj, 'Ready');
  if (!readyCond) return ready('no Ready condition');
  if (readyCond.status === 'True') return ready(explain(readyCond));
  // kstatus reads Ready=False as still in progress: only Stalled is a failure.
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
  const standard = standardConditionsHealth(obj);
  if (standard) return standard;
  const rule = BY_KIND[`${refOf(obj).group}/${obj.kind}`];
  if (rule) {
    // A built-in controller that has not written status yet has not acted on the object.
    if (!obj.status && obj.kind !== 'Service') return pending('no status yet');
    return rule(obj);
  }
  if (!obj.status || typeof obj.status !== 'object') return ready('no status');
  return conditionsHealth(obj);
}
