// Drift of a release: the objects of its manifest (as Helm storage has it) compared with the
// cluster through a server-side dry-run apply, as the field manager Helm writes with. Correction
// applies them for real, taking back fields kubectl changed.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { applyAll } from '../runtime/apply/apply.ts';
import { apiClientFor } from '../runtime/apply/client.ts';
import { DEFAULT_CONCURRENCY, mapLimit } from '../runtime/apply/concurrency.ts';
import { changedPaths, KUBECTL_MANAGERS, takeOverManagedFields, type FieldManagerRef } from '../runtime/apply/drift.ts';
import type { IgnoreRules } from '../runtime/apply/ignore.ts';
import { plan, prepare, type Planner } from '../runtime/apply/plan.ts';
import { DEFAULT_ANNOTATION_DOMAIN } from '../runtime/apply/policy.ts';

/** The field manager Helm's writes carry (the helper sets it), and drift correction uses. */
export const FIELD_MANAGER = 'helm-controller';

/** An object labelled or annotated with this key set to `disabled` is left out of drift detection. */
export const DRIFT_ANNOTATION = 'helm.toolkit.fluxcd.io/driftDetection';

export interface DriftEntry {
  /** Kind/namespace/name */
  subject: string;
  change: 'deleted' | 'modified';
  /** JSON pointers of the fields that differ (modified only). */
  fields: string[];
}

/**
 * The objects of a release manifest as Helm applied them: namespaced ones without a namespace get
 * the release's, and each carries the ownership label and annotations Helm adds when it writes
 * (an apply without them would remove them, which is no drift).
 */
export function manifestObjects(manifest: string, release: { name: string; namespace: string }): KubernetesObject[] {
  const out: KubernetesObject[] = [];
  for (const doc of parseAllDocuments(manifest)) {
    const obj = doc.toJS() as KubernetesObject | null;
    if (!obj || typeof obj !== 'object' || !obj.kind) continue;
    const metadata = obj.metadata ?? {};
    out.push({
      ...obj,
      metadata: {
        namespace: release.namespace,
        ...metadata,
        labels: { ...metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' },
        annotations: {
          ...metadata.annotations,
          'meta.helm.sh/release-name': release.name,
          'meta.helm.sh/release-namespace': release.namespace,
        },
      },
    });
  }
  return out;
}

function planner(kc: KubeConfig, ignore?: IgnoreRules): Planner {
  return {
    client: apiClientFor(kc),
    fieldManager: FIELD_MANAGER,
    force: false,
    takeOver: KUBECTL_MANAGERS,
    annotationDomain: DEFAULT_ANNOTATION_DOMAIN,
    concurrency: DEFAULT_CONCURRENCY,
    ...(ignore ? { ignore } : {}),
  };
}

/** The inventory of a release: its manifest's objects, scoped by discovery (cluster-scoped ones have no namespace). */
export async function manifestInventory(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
): Promise<{ id: string; v: string }[]> {
  const { items } = await prepare(planner(kc), objects);
  return items.map((i) => ({ id: i.id, v: i.ref.version }));
}

/** What differs between the manifest's objects and the cluster; objects that cannot be checked throw. */
export async function detectDrift(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
  ignore?: IgnoreRules,
): Promise<DriftEntry[]> {
  const p = planner(kc, ignore);
  const checked = objects.filter(
    (o) =>
      o.metadata?.labels?.[DRIFT_ANNOTATION] !== 'disabled' &&
      o.metadata?.annotations?.[DRIFT_ANNOTATION] !== 'disabled',
  );
  const { items, failures } = await prepare(p, checked);
  if (failures.length > 0) throw new Error(failures.map((f) => `${f.subject}: ${f.reason}`).join('; '));
  const outcomes = await mapLimit(items, p.concurrency, (item) => plan(p, item));
  const drift: DriftEntry[] = [];
  for (const o of outcomes) {
    if ('failure' in o) throw new Error(`${o.failure.subject}: ${o.failure.reason}`);
    const { item, action, live, dryRun } = o.plan;
    if (action === 'created') drift.push({ subject: item.subject, change: 'deleted', fields: [] });
    else if (action === 'configured' && live && dryRun) {
      const fields = changedPaths(live, dryRun, 5);
      // Only a change of field ownership (kubectl took a field over without changing its value) is no drift to show.
      if (fields.length > 0) drift.push({ subject: item.subject, change: 'modified', fields });
    }
  }
  return drift;
}

/** Applies the manifest's objects again; returns what changed, one "Kind/ns/name action" per line. */
export async function correctDrift(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
  ignore?: IgnoreRules,
): Promise<string[]> {
  const changes = await applyAll(kc, objects, { fieldManager: FIELD_MANAGER, ...(ignore ? { ignore } : {}) });
  return changes
    .filter((c) => c.action === 'created' || c.action === 'configured')
    .map((c) => `${c.subject} ${c.action}`);
}

/** The field manager the helm CLI writes with (server-side apply in Helm 4, updates in Helm 3). */
const HELM_CLI: readonly FieldManagerRef[] = [
  { name: 'helm', operation: 'Apply', exact: true },
  { name: 'helm', operation: 'Update', exact: true },
];

/**
 * Makes the fields the helm CLI owns on the release's objects ours, before an upgrade: a field the
 * new manifest drops is then removed by the apply, as it would be for a release Tide installed
 * (without this, a field set by `helm install` outlives its removal from the chart).
 */
export async function adoptHelmFields(kc: KubeConfig, objects: readonly KubernetesObject[]): Promise<number> {
  const p = planner(kc);
  const { items } = await prepare(p, objects);
  const adopted = await mapLimit(items, p.concurrency, async (item) => {
    if (!item.res) return 0;
    const live = await p.client.get(item.res, item.ref);
    const fields = live && takeOverManagedFields(live, FIELD_MANAGER, HELM_CLI);
    if (!fields) return 0;
    const ops = [{ op: 'replace' as const, path: '/metadata/managedFields', value: fields }];
    await p.client.jsonPatch(item.res, item.ref, ops, FIELD_MANAGER);
    return 1;
  });
  return adopted.reduce((a: number, b: number) => a + b, 0);
}

/** "Deployment/ns/app modified (/spec/replicas), Service/ns/app deleted" */
export function summarizeDrift(drift: readonly DriftEntry[], limit = 10): string {
  const parts = drift
    .slice(0, limit)
    .map((d) => (d.change === 'deleted' ? `${d.subject} deleted` : `${d.subject} modified (${d.fields.join(', ')})`));
  if (drift.length > limit) parts.push(`and ${drift.length - limit} more`);
  return parts.join(', ');
}
