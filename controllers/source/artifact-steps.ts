// What every source kind does around its artifact, the same way: the finalizer, deletion, whether
// the artifact in status is still in storage, the ArtifactOutdated mark, and publishing.
import type { KubeConfig } from '@kubernetes/client-node';
import { removeCondition, setCondition } from '../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext } from '../runtime/controller.ts';
import { hasFinalizer, setFinalizer } from '../runtime/finalizers.ts';
import type { ObservedStatus, Outcome } from '../runtime/outcome.ts';
import { ConditionType, Reason } from '../runtime/reasons.ts';
import type { Step } from '../runtime/steps.ts';
import type { Storage } from './storage.ts';

export interface ArtifactStatus extends ObservedStatus {
  artifact?: { path: string; revision: string } | undefined;
}

type SourceObject = ManagedObject<ArtifactStatus>;

export async function ensureFinalizer(kc: KubeConfig, obj: ManagedObject): Promise<void> {
  if (!hasFinalizer(obj)) await setFinalizer(kc, obj, true);
}

/** On deletion: removes the object's artifacts and its finalizer; nothing is written to status. */
export async function deleteArtifacts(
  kc: KubeConfig,
  storage: Storage,
  dir: string,
  obj: SourceObject,
  ctx: ReconcileContext<ArtifactStatus>,
): Promise<Outcome> {
  await storage.removeAll(dir);
  await setFinalizer(kc, obj, false);
  ctx.skipStatus = true;
  return { type: 'success', reason: Reason.Succeeded, message: 'artifacts removed' };
}

/** Whether the artifact in status is still in storage (a restart on an empty volume loses it). */
export async function artifactInStorage(storage: Storage, ctx: ReconcileContext<ArtifactStatus>): Promise<boolean> {
  const current = ctx.status.artifact;
  const present = current !== undefined && (await storage.exists(current.path));
  if (!present) ctx.status.conditions = removeCondition(ctx.status.conditions, ConditionType.ArtifactInStorage);
  return present;
}

/** ArtifactOutdated=True NewRevision: there is an artifact, and a newer one is being built. */
export function markOutdated(ctx: ReconcileContext<ArtifactStatus>, generation: number | undefined, message: string) {
  if (!ctx.status.artifact) return;
  ctx.status.conditions = setCondition(
    ctx.status.conditions,
    {
      type: ConditionType.ArtifactOutdated,
      status: 'True',
      reason: Reason.NewRevision,
      message,
      observedGeneration: generation,
    },
    ctx.now(),
  );
}

/** The artifact in status is the current one: say so, and drop older ones beyond the retention. */
export async function publishArtifact(
  storage: Storage,
  dir: string,
  ctx: ReconcileContext<ArtifactStatus>,
  generation: number | undefined,
  inStorage?: { reason: string; message: string },
): Promise<void> {
  const artifact = ctx.status.artifact!;
  ctx.status.conditions = removeCondition(ctx.status.conditions, ConditionType.ArtifactOutdated);
  ctx.status.conditions = setCondition(
    ctx.status.conditions,
    {
      type: ConditionType.ArtifactInStorage,
      status: 'True',
      reason: inStorage?.reason ?? Reason.Succeeded,
      message: inStorage?.message ?? `stored artifact for revision '${artifact.revision}'`,
      observedGeneration: generation,
    },
    ctx.now(),
  );
  await storage
    .garbageCollect(dir, artifact.path)
    .catch((err: unknown) => ctx.logger.error('artifact garbage collection failed', { error: err }));
}

/** Go's units.HumanSize: decimal units, four significant digits ("30.88kB"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(4))}${units[i]}`;
}

/** What the shared steps read and write of a source reconcile's state. */
export interface SourceRun {
  obj: SourceObject;
  ctx: ReconcileContext<ArtifactStatus>;
  /** The object's directory in storage. */
  dir: string;
  /** Set by the storage step: the artifact in status is in storage. */
  inStorage?: boolean;
}

/** The steps every source kind starts and ends with, in the order they run. */
export const sourceSteps = {
  finalizer: (kc: KubeConfig): Step<SourceRun> => ({
    name: 'finalizer',
    reason: Reason.ReconciliationFailed,
    run: (r) => ensureFinalizer(kc, r.obj),
  }),
  storage: (storage: Storage): Step<SourceRun> => ({
    name: 'storage',
    reason: Reason.StatOperationFailed,
    condition: ConditionType.StorageOperationFailed,
    run: async (r) => {
      r.inStorage = await artifactInStorage(storage, r.ctx);
    },
  }),
  /** `inStorage`: the ArtifactInStorage reason and message, when the kind has its own. */
  publish: <S extends SourceRun>(
    storage: Storage,
    inStorage?: (run: S) => { reason: string; message: string },
  ): Step<S> => ({
    name: 'publish',
    reason: Reason.ReconciliationFailed,
    run: (r) => publishArtifact(storage, r.dir, r.ctx, r.obj.metadata?.generation, inStorage?.(r)),
  }),
};
