// Whether an apply would change anything, decided from the server's own dry-run result: the server
// applies defaults, admission and conversion, so comparing its answer with the live object needs
// no local knowledge of any schema.
import { isDeepStrictEqual } from 'node:util';
import { managedFieldsOf, type LiveObject, type ManagedFieldsEntry } from './client.ts';

/** Managers whose fields an Override apply takes over; `exact: false` matches by prefix. */
export interface FieldManagerRef {
  name: string;
  operation: 'Apply' | 'Update';
  exact?: boolean;
}

/**
 * kubectl in all its forms (apply, apply --server-side, edit, patch, scale, label: the managers
 * are all named kubectl*) and the manager the API server assigns to fields that predate the first
 * server-side apply. Taking their fields over is what makes a manual change revert.
 */
export const KUBECTL_MANAGERS: readonly FieldManagerRef[] = [
  { name: 'kubectl', operation: 'Apply' },
  { name: 'kubectl', operation: 'Update' },
  { name: 'before-first-apply', operation: 'Update', exact: true },
];

// Bookkeeping the server rewrites on every write, or that differs between two reads of an
// unchanged object; status is excluded because controllers update it between our two reads.
function comparable(obj: LiveObject): unknown {
  const { status: _status, metadata = {}, ...rest } = obj;
  const { managedFields: _mf, resourceVersion: _rv, generation: _gen, ...meta } = metadata;
  return { ...rest, metadata: meta };
}

/** True when applying would change the object's content (metadata, spec, data, ...). */
export function contentDiffers(live: LiveObject, dryRun: LiveObject): boolean {
  return !isDeepStrictEqual(comparable(live), comparable(dryRun));
}

/**
 * The JSON pointers (RFC 6901) where applying would change the object, at most `limit`: the
 * deepest differing paths, for messages that say which fields drifted.
 */
export function changedPaths(live: LiveObject, dryRun: LiveObject, limit = 10): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (out.length >= limit || isDeepStrictEqual(a, b)) return;
    const objects = typeof a === 'object' && a !== null && typeof b === 'object' && b !== null;
    if (!objects || Array.isArray(a) !== Array.isArray(b)) {
      out.push(path || '/');
      return;
    }
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) {
      walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}/${escapePointer(k)}`);
    }
  };
  walk(comparable(live), comparable(dryRun), '');
  return out;
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

function ownEntry(obj: LiveObject, manager: string): ManagedFieldsEntry | undefined {
  return managedFieldsOf(obj).find((e) => e.manager === manager && e.operation === 'Apply' && !e.subresource);
}

/**
 * True when the apply would change which fields `manager` owns even though no value changes: a
 * field added to the manifest with the value it already has, or an object someone else created.
 * Without the apply the field would stay unowned by us, and removing it from the manifest later
 * would not remove it from the cluster.
 */
export function ownershipDiffers(live: LiveObject, dryRun: LiveObject, manager: string): boolean {
  return !isDeepStrictEqual(ownEntry(live, manager)?.fieldsV1, ownEntry(dryRun, manager)?.fieldsV1);
}

function matches(entry: ManagedFieldsEntry, ref: FieldManagerRef): boolean {
  if (entry.subresource || entry.operation !== ref.operation || !entry.manager) return false;
  return ref.exact ? entry.manager === ref.name : entry.manager.startsWith(ref.name);
}

function mergeFields(a: Record<string, unknown> = {}, b: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const prev = out[key];
    out[key] =
      prev && typeof prev === 'object' && value && typeof value === 'object'
        ? mergeFields(prev as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

/**
 * The managedFields with every entry of `takeOver` folded into `manager`'s Apply entry, or
 * undefined when there is nothing to take over. The next apply then owns those fields alone, and
 * drops the ones the manifest does not declare. One entry per manager: the API server keeps a
 * single Apply entry per manager, so renaming entries in place would leave duplicates.
 */
export function takeOverManagedFields(
  live: LiveObject,
  manager: string,
  takeOver: readonly FieldManagerRef[],
): ManagedFieldsEntry[] | undefined {
  const entries = managedFieldsOf(live);
  const foreign = entries.filter(
    (e) => !(e.manager === manager && e.operation === 'Apply') && takeOver.some((ref) => matches(e, ref)),
  );
  if (foreign.length === 0) return undefined;
  const own = entries.find((e) => e.manager === manager && e.operation === 'Apply' && !e.subresource);
  let fields = own?.fieldsV1;
  for (const e of foreign) fields = mergeFields(fields, e.fieldsV1);
  const merged: ManagedFieldsEntry = {
    manager,
    operation: 'Apply',
    apiVersion: own?.apiVersion ?? foreign[0]!.apiVersion,
    time: own?.time ?? foreign[0]!.time,
    fieldsType: 'FieldsV1',
    fieldsV1: fields,
  };
  const out: ManagedFieldsEntry[] = [];
  let placed = false;
  for (const e of entries) {
    if (e === own || foreign.includes(e)) {
      if (!placed) out.push(merged);
      placed = true;
    } else {
      out.push(e);
    }
  }
  return out;
}
