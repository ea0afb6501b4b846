// Deciding what to do with each object of a set, without writing: discovery, normalisation, and
// per object one GET and one server-side dry-run apply.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Action } from './changeset.ts';
import type { ApiClient, LiveObject, ManagedFieldsEntry } from './client.ts';
import type { ResourceType } from '../resource.ts';
import { mapLimit } from './concurrency.ts';
import { contentDiffers, ownershipDiffers, takeOverManagedFields, type FieldManagerRef } from './drift.ts';
import { isImmutableError, reasonOf, type ObjectFailure } from './errors.ts';
import { formatId, refOf, subjectOf, type ObjectRef } from './inventory.ts';
import { compareRefs, isCRD, stageOf } from './order.ts';
import { withIgnoredFromLive, type IgnoreRules } from './ignore.ts';
import { applyPolicy } from './policy.ts';

export interface Planner {
  client: ApiClient;
  fieldManager: string;
  force: boolean;
  takeOver: readonly FieldManagerRef[];
  annotationDomain: string;
  concurrency: number;
  /** Drift ignore rules: paths applied with their live values once an object exists. */
  ignore?: IgnoreRules;
}

export interface Item {
  obj: KubernetesObject;
  ref: ObjectRef;
  id: string;
  subject: string;
  stage: number;
  /** Undefined until the API server serves the kind (a CRD of this same set). */
  res: ResourceType | undefined;
  /** Served by a CRD of this set: its validation may change once that CRD is applied. */
  definedBySet: boolean;
}

export interface Plan {
  item: Item;
  action: Action;
  /** What is sent: item.obj, with ignored paths taken from the live object. */
  applied?: KubernetesObject;
  live?: LiveObject;
  /** The server's dry-run answer: the object as the apply would leave it. */
  dryRun?: LiveObject;
  recreate?: boolean;
  takeOver?: ManagedFieldsEntry[];
}

export type Outcome = { plan: Plan } | { failure: ObjectFailure; live?: LiveObject };

// Server-owned metadata a manifest may carry (copied from `kubectl get -o yaml`); sent in an
// apply, resourceVersion would act as a precondition and the rest would be rejected or ignored.
const SERVER_METADATA = [
  'resourceVersion',
  'uid',
  'creationTimestamp',
  'generation',
  'managedFields',
  'selfLink',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];

function sanitize(obj: KubernetesObject, namespaced: boolean): KubernetesObject {
  const copy = structuredClone(obj) as KubernetesObject & { metadata: Record<string, unknown> };
  for (const key of SERVER_METADATA) delete copy.metadata[key];
  // kubectl ignores a namespace on a cluster-scoped object; the API server would reject it.
  if (!namespaced) delete copy.metadata.namespace;
  return copy;
}

/** group/kind → scope, for the CRDs in the set. */
function crdsOf(objects: readonly KubernetesObject[]): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const o of objects) {
    if (!isCRD(refOf(o))) continue;
    const spec = (o as { spec?: { group?: string; names?: { kind?: string }; scope?: string } }).spec;
    if (spec?.group && spec.names?.kind) out.set(`${spec.group}/${spec.names.kind}`, spec.scope !== 'Cluster');
  }
  return out;
}

/**
 * Resolves every object's kind, normalises it and sorts the set into apply order. Objects that can
 * never be applied (unknown kind, missing namespace, duplicates) come back as failures.
 */
export async function prepare(
  planner: Planner,
  objects: readonly KubernetesObject[],
): Promise<{ items: Item[]; failures: ObjectFailure[] }> {
  const setCRDs = crdsOf(objects);
  const failures: ObjectFailure[] = [];
  const seen = new Set<string>();
  const items: Item[] = [];
  // One lookup per kind: a kind that is not served yet would refetch discovery for every object.
  const kinds = new Map<string, Promise<ResourceType | undefined>>();
  const lookup = (apiVersion: string, kind: string) => {
    const key = `${apiVersion}/${kind}`;
    if (!kinds.has(key)) kinds.set(key, planner.client.resourceFor(apiVersion, kind));
    return kinds.get(key)!;
  };
  const resolved = await mapLimit(objects, planner.concurrency, async (obj) => {
    const ref = refOf(obj);
    if (!obj.apiVersion || !obj.kind || !ref.name)
      return { ref, error: 'apiVersion, kind and metadata.name are required' };
    try {
      return { ref, res: await lookup(obj.apiVersion, ref.kind) };
    } catch (err) {
      return { ref, error: `discovery of ${obj.apiVersion} failed: ${reasonOf(err)}` };
    }
  });
  for (const [i, r] of resolved.entries()) {
    const obj = objects[i]!;
    if ('error' in r) {
      failures.push({ subject: subjectOf(r.ref), reason: r.error! });
      continue;
    }
    const setScope = setCRDs.get(`${r.ref.group}/${r.ref.kind}`);
    if (!r.res && setScope === undefined) {
      failures.push({
        subject: subjectOf(r.ref),
        reason:
          `no matches for kind "${r.ref.kind}" in version "${obj.apiVersion}": ` +
          'install its CustomResourceDefinition first',
      });
      continue;
    }
    const namespaced = r.res ? r.res.namespaced : setScope!;
    const clean = sanitize(obj, namespaced);
    const ref = refOf(clean);
    if (namespaced && !ref.namespace) {
      failures.push({ subject: subjectOf(ref), reason: `${ref.kind} is namespaced but metadata.namespace is not set` });
      continue;
    }
    const id = formatId(ref);
    if (seen.has(id)) {
      failures.push({ subject: subjectOf(ref), reason: 'appears more than once in the set' });
      continue;
    }
    seen.add(id);
    items.push({
      obj: clean,
      ref,
      id,
      subject: subjectOf(ref),
      stage: stageOf(ref),
      res: r.res,
      definedBySet: setScope !== undefined,
    });
  }
  return { items: items.sort((a, b) => a.stage - b.stage || compareRefs(a.ref, b.ref)), failures };
}

/** Reads the live object and dry-runs the apply; decides the action without writing. */
export async function plan(planner: Planner, item: Item): Promise<Outcome> {
  const { client } = planner;
  let live: LiveObject | undefined;
  try {
    item.res ??= await client.resourceFor(item.obj.apiVersion!, item.ref.kind);
    if (!item.res)
      return {
        failure: {
          subject: item.subject,
          reason: `no matches for kind "${item.ref.kind}" in version "${item.obj.apiVersion}"`,
        },
      };
    live = await client.get(item.res, item.ref);
  } catch (err) {
    return { failure: { subject: item.subject, reason: `read failed: ${reasonOf(err)}` } };
  }
  const res = item.res;
  const policy = applyPolicy(item.obj, live, planner.annotationDomain);
  if (policy.skip || (policy.ifNotPresent && live)) return { plan: { item, action: 'skipped', live } };
  const applied = planner.ignore
    ? withIgnoredFromLive(item.obj, live, planner.ignore(item.obj), planner.fieldManager)
    : item.obj;
  let dryRun: LiveObject;
  try {
    dryRun = await client.apply(res, applied, { fieldManager: planner.fieldManager, force: true, dryRun: true });
  } catch (err) {
    // A recreated object starts over: declared as it is, ignored paths included.
    if (live && (planner.force || policy.force) && isImmutableError(err))
      return { plan: { item, action: 'created', live, recreate: true } };
    return { failure: { subject: item.subject, reason: reasonOf(err) }, live };
  }
  if (!live) return { plan: { item, action: 'created', dryRun } };
  const takeOver = policy.merge ? undefined : takeOverManagedFields(live, planner.fieldManager, planner.takeOver);
  const changed =
    takeOver !== undefined || contentDiffers(live, dryRun) || ownershipDiffers(live, dryRun, planner.fieldManager);
  return { plan: { item, action: changed ? 'configured' : 'unchanged', live, dryRun, takeOver, applied } };
}
