// Garbage collection of objects that left the set: deletes what is ours and still there, and
// nothing else.
import type { KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangeSet, ChangeSetEntry } from './changeset.ts';
import { apiClientFor } from './client.ts';
import { DEFAULT_CONCURRENCY, mapLimit } from './concurrency.ts';
import { reasonOf } from './errors.ts';
import { statusCode } from '../api-errors.ts';
import { apiVersionOf, refOfEntry, subjectOf, type InventoryEntry, type ObjectRef } from './inventory.ts';
import { isCRD, isNamespace } from './order.ts';
import { DEFAULT_ANNOTATION_DOMAIN, pruneDisabled } from './policy.ts';

export interface PruneOptions {
  /**
   * Labels every object of the owner carries (e.g. `kustomize.toolkit.fluxcd.io/name` and
   * `/namespace`). All must match: an object labelled for another owner, or not labelled at all,
   * was adopted by someone else since it entered the inventory, and is left alone.
   */
  ownerLabels: Record<string, string>;
  /** Report what would be deleted; delete nothing. */
  dryRun?: boolean;
  /** Domain of the `prune: disabled` annotation. */
  annotationDomain?: string;
  concurrency?: number;
}

/**
 * Deleted last, so the objects inside them go first, one by one and subject to the checks above,
 * while their namespace and kind still exist for the controllers running their finalizers.
 */
function isContainer(ref: ObjectRef): boolean {
  return isNamespace(ref) || isCRD(ref);
}

/** Some stale objects could not be pruned; `changeSet` lists what was. */
export class PruneError extends Error {
  readonly changeSet: ChangeSet;
  constructor(messages: string[], changeSet: ChangeSet) {
    super(messages.join('\n'));
    this.name = 'PruneError';
    this.changeSet = changeSet;
  }
}

/**
 * Deletes the stale objects (background propagation: the API server's garbage collector removes
 * their dependents). Returns a `deleted` entry per object deleted and a `skipped` entry per object
 * kept because of `prune: disabled` or foreign owner labels; objects already gone, or already
 * being deleted, are left out. Namespaces and CRDs go after everything else. One object that
 * cannot be deleted does not stop the others; a PruneError names each failure.
 */
export async function prune(kc: KubeConfig, stale: readonly InventoryEntry[], opts: PruneOptions): Promise<ChangeSet> {
  const client = apiClientFor(kc);
  const domain = opts.annotationDomain ?? DEFAULT_ANNOTATION_DOMAIN;
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const errors: string[] = [];

  const pruneOne = async (entry: InventoryEntry): Promise<ChangeSetEntry | undefined> => {
    let subject = entry.id;
    try {
      const ref = refOfEntry(entry);
      subject = subjectOf(ref);
      const result = (action: 'deleted' | 'skipped'): ChangeSetEntry => ({
        id: entry.id,
        version: ref.version,
        subject,
        action,
      });
      // A kind no longer served (its CRD was deleted) has no objects left to delete.
      const res = await client.resourceFor(apiVersionOf(ref), ref.kind);
      if (!res) return undefined;
      const live = await client.get(res, ref);
      if (!live || live.metadata?.deletionTimestamp) return undefined;
      if (pruneDisabled(live, domain)) return result('skipped');
      const labels = live.metadata?.labels ?? {};
      if (!Object.entries(opts.ownerLabels).every(([k, v]) => labels[k] === v)) return result('skipped');
      if (opts.dryRun) return result('deleted');
      // The uid precondition keeps a look-alike created since the read from being deleted.
      return (await client.delete(res, ref, live.metadata?.uid)) ? result('deleted') : undefined;
    } catch (err) {
      if (statusCode(err) === 409) return undefined;
      errors.push(`${subject} prune failed: ${reasonOf(err)}`);
      return undefined;
    }
  };

  const isLast = (e: InventoryEntry) => {
    try {
      return isContainer(refOfEntry(e));
    } catch {
      return false;
    }
  };
  const first = await mapLimit(
    stale.filter((e) => !isLast(e)),
    concurrency,
    pruneOne,
  );
  const last = await mapLimit(stale.filter(isLast), concurrency, pruneOne);
  const changeSet = [...first, ...last].filter((e): e is ChangeSetEntry => e !== undefined);
  if (errors.length > 0) throw new PruneError(errors, changeSet);
  return changeSet;
}

/**
 * Resolves once none of the objects exists any more (deleted, or its kind no longer served), for
 * Flux's WaitForTermination; throws naming the objects left when `timeoutMs` passes.
 */
export async function waitForDeletion(
  kc: KubeConfig,
  entries: readonly InventoryEntry[],
  timeoutMs: number,
  pollMs = 2000,
): Promise<void> {
  const client = apiClientFor(kc);
  const deadline = Date.now() + timeoutMs;
  let left = entries.map(refOfEntry);
  for (;;) {
    const exists = await mapLimit(left, DEFAULT_CONCURRENCY, async (ref) => {
      try {
        const res = await client.resourceFor(apiVersionOf(ref), ref.kind);
        return res !== undefined && (await client.get(res, ref)) !== undefined;
      } catch {
        return true; // a failed read proves nothing; ask again
      }
    });
    left = left.filter((_, i) => exists[i]);
    if (left.length === 0) return;
    const wait = deadline - Date.now();
    if (wait <= 0)
      throw new Error(
        `timeout after ${Math.round(timeoutMs / 1000)}s, still terminating: ${left.map(subjectOf).join(', ')}`,
      );
    await sleep(Math.min(pollMs, wait));
  }
}
