// spec.chart: the HelmChart a HelmRelease owns, `<namespace>-<name>` in its source's namespace,
// kept in step with the template (server-side apply, only when it differs) and deleted with the
// release or when the release stops using it.
import type { KubeConfig } from '@kubernetes/client-node';
import { resourceTypeOf } from '../api/kind.ts';
import { HelmChartKind } from '../api/source/helmchart.ts';
import type { HelmReleaseSpec } from '../api/helm/helmrelease.ts';
import { apiClientFor } from '../runtime/apply/client.ts';
import type { ManagedObject } from '../runtime/controller.ts';
import { FIELD_MANAGER } from './drift.ts';

export const NAME_LABEL = 'helm.toolkit.fluxcd.io/name';
export const NAMESPACE_LABEL = 'helm.toolkit.fluxcd.io/namespace';

type Template = NonNullable<HelmReleaseSpec['chart']>;

export interface ChartObject extends ManagedObject {
  spec?: Record<string, unknown>;
}

/** Namespace and name of the HelmChart of a template. */
export function templateChartRef(hr: { metadata?: { name?: string; namespace?: string } }, template: Template) {
  const ns = hr.metadata!.namespace!;
  return { namespace: template.spec.sourceRef.namespace ?? ns, name: `${ns}-${hr.metadata!.name}` };
}

/** The HelmChart a template asks for, every defaulted field spelled out so that it compares with the live one. */
export function desiredChart(
  hr: { metadata?: { name?: string; namespace?: string } },
  template: Template,
  interval: string,
): ChartObject {
  const { namespace, name } = templateChartRef(hr, template);
  const t = template.spec;
  const spec: Record<string, unknown> = {
    chart: t.chart,
    version: t.version ?? '*',
    sourceRef: { kind: t.sourceRef.kind, name: t.sourceRef.name },
    interval: t.interval ?? interval,
    reconcileStrategy: t.reconcileStrategy ?? 'ChartVersion',
  };
  if (t.valuesFiles?.length) spec.valuesFiles = t.valuesFiles;
  if (t.ignoreMissingValuesFiles) spec.ignoreMissingValuesFiles = true;
  if (t.verify) spec.verify = t.verify;
  return {
    apiVersion: `${HelmChartKind.group}/${HelmChartKind.version}`,
    kind: HelmChartKind.kind,
    metadata: {
      name,
      namespace,
      labels: {
        ...template.metadata?.labels,
        [NAME_LABEL]: hr.metadata!.name!,
        [NAMESPACE_LABEL]: hr.metadata!.namespace!,
      },
      ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
    },
    spec,
  };
}

/** True when the live HelmChart already has what `desired` asks for. */
export function chartMatches(live: ChartObject | undefined, desired: ChartObject): boolean {
  if (!live) return false;
  const spec = live.spec ?? {};
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const wanted = desired.spec!;
  for (const [k, v] of Object.entries(wanted)) {
    if (k === 'sourceRef') {
      const ref = (spec.sourceRef ?? {}) as { kind?: string; name?: string };
      const want = v as { kind: string; name: string };
      if (ref.kind !== want.kind || ref.name !== want.name) return false;
    } else if (!same(spec[k], v)) return false;
  }
  for (const k of ['valuesFiles', 'ignoreMissingValuesFiles', 'verify']) {
    if (!(k in wanted) && spec[k] !== undefined && !(k === 'ignoreMissingValuesFiles' && spec[k] === false))
      return false;
  }
  const labels = live.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(desired.metadata?.labels ?? {})) if (labels[k] !== v) return false;
  const annotations = live.metadata?.annotations ?? {};
  for (const [k, v] of Object.entries(desired.metadata?.annotations ?? {})) if (annotations[k] !== v) return false;
  return true;
}

export async function applyChart(kc: KubeConfig, desired: ChartObject): Promise<void> {
  await apiClientFor(kc).apply(resourceTypeOf(HelmChartKind), desired, { fieldManager: FIELD_MANAGER, force: true });
}

export async function deleteChart(kc: KubeConfig, ref: { namespace: string; name: string }): Promise<void> {
  await apiClientFor(kc).delete(resourceTypeOf(HelmChartKind), ref, undefined);
}
