// Object identity in the format Flux stores in `status.inventory.entries`, so the flux CLI and
// Tide read each other's inventories: id `<namespace>_<name>_<group>_<kind>`, v `<version>`.
import type { KubernetesObject } from '@kubernetes/client-node';

export interface InventoryEntry {
  id: string;
  v: string;
}

export interface ObjectRef {
  /** Empty for cluster-scoped objects. */
  namespace: string;
  name: string;
  /** Empty for the core group. */
  group: string;
  version: string;
  kind: string;
}

const SEP = '_';
// Names of RBAC objects may hold colons (system:auth-delegator); Flux writes them as "__", which
// no DNS name can contain.
const COLON = '__';

export function formatId(ref: Omit<ObjectRef, 'version'>): string {
  return [ref.namespace, ref.name.replaceAll(':', COLON), ref.group, ref.kind].join(SEP);
}

/**
 * The inverse of formatId. Namespace, group and kind never contain "_", so they are cut from the
 * ends and whatever remains in the middle is the name.
 */
export function parseId(id: string): Omit<ObjectRef, 'version'> {
  const first = id.indexOf(SEP);
  const last = id.lastIndexOf(SEP);
  const beforeLast = id.lastIndexOf(SEP, last - 1);
  if (first < 0 || beforeLast <= first)
    throw new Error(`invalid inventory id ${JSON.stringify(id)}: want <namespace>_<name>_<group>_<kind>`);
  const ref = {
    namespace: id.slice(0, first),
    name: id.slice(first + 1, beforeLast).replaceAll(COLON, ':'),
    group: id.slice(beforeLast + 1, last),
    kind: id.slice(last + 1),
  };
  if (!ref.name || !ref.kind) throw new Error(`invalid inventory id ${JSON.stringify(id)}: name and kind are required`);
  return ref;
}

export function refOf(obj: KubernetesObject): ObjectRef {
  const apiVersion = obj.apiVersion ?? '';
  const i = apiVersion.indexOf('/');
  return {
    namespace: obj.metadata?.namespace ?? '',
    name: obj.metadata?.name ?? '',
    group: i < 0 ? '' : apiVersion.slice(0, i),
    version: i < 0 ? apiVersion : apiVersion.slice(i + 1),
    kind: obj.kind ?? '',
  };
}

export function entryOf(ref: ObjectRef): InventoryEntry {
  return { id: formatId(ref), v: ref.version };
}

export function refOfEntry(entry: InventoryEntry): ObjectRef {
  return { ...parseId(entry.id), version: entry.v };
}

export function apiVersionOf(ref: Pick<ObjectRef, 'group' | 'version'>): string {
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}

/** `Kind/namespace/name`, or `Kind/name` when cluster-scoped: how messages and events name objects. */
export function subjectOf(ref: Pick<ObjectRef, 'namespace' | 'name' | 'kind'>): string {
  return ref.namespace ? `${ref.kind}/${ref.namespace}/${ref.name}` : `${ref.kind}/${ref.name}`;
}

/**
 * Entries of `previous` whose object is absent from `current`: what to prune. Identity is the id
 * alone, so an object whose manifest moved to another version of its group is kept.
 */
export function staleEntries(
  previous: readonly InventoryEntry[],
  current: readonly InventoryEntry[],
): InventoryEntry[] {
  const keep = new Set(current.map((e) => e.id));
  return previous.filter((e) => !keep.has(e.id));
}

/** Entries sorted by id and without duplicates, so an unchanged set gives an unchanged status. */
export function normalizeInventory(entries: readonly InventoryEntry[]): InventoryEntry[] {
  const byId = new Map<string, InventoryEntry>();
  for (const e of entries) byId.set(e.id, { id: e.id, v: e.v });
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
