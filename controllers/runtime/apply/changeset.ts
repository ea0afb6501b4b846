// What an apply or prune did, one entry per object, in the order it was done.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { InventoryEntry } from './inventory.ts';

export type Action = 'created' | 'configured' | 'unchanged' | 'skipped' | 'deleted';

export interface ChangeSetEntry {
  /** Inventory id: `<namespace>_<name>_<group>_<kind>`. */
  id: string;
  version: string;
  /** `Kind/namespace/name`, for messages and events. */
  subject: string;
  action: Action;
  /** The object as the API server last returned it (apply answer or live read); not after a delete. */
  object?: KubernetesObject;
}

export type ChangeSet = ChangeSetEntry[];

/** The inventory an apply leaves behind: every object it manages, skipped ones included. */
export function inventoryOf(changeSet: ChangeSet): InventoryEntry[] {
  return changeSet.filter((e) => e.action !== 'deleted').map((e) => ({ id: e.id, v: e.version }));
}

/** "Deployment/ns/app configured\nService/ns/app created": the lines Flux puts in events. */
export function summarize(
  changeSet: ChangeSet,
  include: readonly Action[] = ['created', 'configured', 'deleted'],
): string {
  return changeSet
    .filter((e) => include.includes(e.action))
    .map((e) => `${e.subject} ${e.action}`)
    .join('\n');
}
