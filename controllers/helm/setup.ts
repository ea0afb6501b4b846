// The helm controller: HelmRelease, fed by HelmChart and OCIRepository artifacts, acting through
// the Helm helper (tide-helm) on real Helm storage.
import { CoreV1Api } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter } from 'prom-client';
import { HelmReleaseKind } from '../api/helm/helmrelease.ts';
import { resourceTypeOf } from '../api/kind.ts';
import { HelmChartKind } from '../api/source/helmchart.ts';
import { OCIRepositoryKind } from '../api/source/ocirepository.ts';
import { unlessNotFound } from '../runtime/api-errors.ts';
import { isTrue } from '../runtime/conditions.ts';
import { impersonating } from '../runtime/kubeconfig.ts';
import { flag, type Options } from '../runtime/options.ts';
import { RemoteClusters } from '../runtime/remote-clusters.ts';
import { keyOf } from '../runtime/resource.ts';
import { requeueOnConfigChange } from '../runtime/watch-configs.ts';
import { defineController, reconcilesRules, sharedFlags, type SetupContext } from '../runtime/setup.ts';
import { ChartStore } from './chart-store.ts';
import { templateChartRef } from './chart-template.ts';
import { HelmHelper } from './client.ts';
import { FIELD_MANAGER } from './drift.ts';
import { type ChartSource, type HelmRelease, HelmReleaseReconciler, type ReleaseTarget } from './reconciler.ts';
import { helmTarget, KubeconfigFiles } from './targets.ts';
import type { ReadValuesSource } from './values.ts';

const SOURCE_INDEX = 'chart.source';
const DEPENDS_INDEX = 'spec.dependsOn';

export const helmFlags = {
  'requeue-dependency': sharedFlags['requeue-dependency'],
  'no-cross-namespace-refs': sharedFlags['no-cross-namespace-refs'],
  'default-service-account': sharedFlags['default-service-account'],
  'watch-configs-label-selector': sharedFlags['watch-configs-label-selector'],
  'helm-helper-path': sharedFlags['helm-helper-path'],
  'helm-release-chart-max-size': flag.bytes({
    default: 64 * 1024 ** 2,
    help: 'Bytes a chart artifact a HelmRelease downloads may have.',
  }),
};

export type HelmOptions = Options<typeof helmFlags>;

export const helm = defineController({
  name: 'helm',
  flags: helmFlags,
  setup: setupHelm,
  rbac: {
    rules: [
      ...reconcilesRules('helm.toolkit.fluxcd.io', ['helmreleases']),
      // The HelmCharts of spec.chart templates are the controller's to create, update and delete.
      {
        apiGroups: ['source.toolkit.fluxcd.io'],
        resources: ['helmcharts'],
        verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
      },
      { apiGroups: ['source.toolkit.fluxcd.io'], resources: ['ocirepositories'], verbs: ['get', 'list', 'watch'] },
      // valuesFrom and remote kubeconfigs; labelled ones are watched.
      { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['impersonate'] },
    ],
    appliesAnyObject: true,
  },
});

/** Index value: the chart source a HelmRelease reads, "Kind/namespace/name". */
function sourceKeys(hr: HelmRelease): string[] {
  const ns = hr.metadata?.namespace ?? '';
  const spec = hr.spec;
  if (spec?.chartRef) return [`${spec.chartRef.kind}/${spec.chartRef.namespace ?? ns}/${spec.chartRef.name}`];
  if (spec?.chart?.spec?.sourceRef) {
    const ref = templateChartRef(hr, spec.chart);
    return [`HelmChart/${ref.namespace}/${ref.name}`];
  }
  return [];
}

function dependencyKeys(hr: HelmRelease): string[] {
  return (hr.spec?.dependsOn ?? []).map((d) => `${d.namespace ?? hr.metadata?.namespace}/${d.name}`);
}

function configKeys(hr: HelmRelease): string[] {
  const ns = hr.metadata?.namespace;
  const keys = (hr.spec?.valuesFrom ?? []).map((v) => `${v.kind}/${ns}/${v.name}`);
  const secret = hr.spec?.kubeConfig?.secretRef?.name;
  if (secret) keys.push(`Secret/${ns}/${secret}`);
  return keys;
}

export async function setupHelm({ manager, options }: SetupContext<HelmOptions>): Promise<void> {
  const local = manager.kubeConfig;
  // GOGC=50: the helper's heap grows to 1.5× what is live instead of 2×; measured at 100
  // HelmReleases, 139 → 110 MiB peak with the same time (25 saved 4 MiB more and cost 18% time).
  const helper = new HelmHelper({ path: options.helmHelperPath, logger: manager.logger, env: { GOGC: '50' } });
  const work = mkdtempSync(join(tmpdir(), 'tide-helm-release-'));
  const charts = new ChartStore({ dir: join(work, 'charts'), helper, maxBytes: options.helmReleaseChartMaxSize });
  const kubeconfigs = new KubeconfigFiles(join(work, 'kubeconfigs'));
  // Runs after the controllers stopped taking work: closing the helper waits for the Helm actions
  // still in flight to answer, so none is left pending by a shutdown.
  manager.onStop(async () => {
    await helper.close();
    rmSync(work, { recursive: true, force: true });
  });
  const remotes = new RemoteClusters(local);
  const core = local.makeApiClient(CoreV1Api);
  const readValues =
    (namespace: string): ReadValuesSource =>
    async (kind, name) => {
      if (kind === 'ConfigMap') {
        const cm = await unlessNotFound(core.readNamespacedConfigMap({ name, namespace }));
        return cm && { ...cm.data, ...decodeAll(cm.binaryData) };
      }
      const secret = await unlessNotFound(core.readNamespacedSecret({ name, namespace }));
      return secret && decodeAll(secret.data);
    };
  const targetFor = async (hr: HelmRelease, storageNamespace: string): Promise<ReleaseTarget> => {
    const namespace = hr.metadata!.namespace!;
    const name = hr.spec?.serviceAccountName || options.defaultServiceAccount || undefined;
    const sa = name ? { namespace, name } : undefined;
    const ref = hr.spec?.kubeConfig?.secretRef;
    const base = ref ? await remotes.kubeConfigFor(namespace, ref) : local;
    const persistent = hr.spec?.persistentClient ?? true;
    return {
      helm: helmTarget(kubeconfigs, base, { storageNamespace, persistent, ...(sa ? { serviceAccount: sa } : {}) }),
      kc: sa ? impersonating(base, sa) : base,
    };
  };
  const driftTotal = new Counter({
    name: 'gotk_helmrelease_drift_total',
    help: 'Objects found drifted from their Helm release, by HelmRelease.',
    labelNames: ['name', 'namespace'],
    registers: [manager.metrics.registry],
  });

  const releases = manager.informer<HelmRelease>(resourceTypeOf(HelmReleaseKind));
  const sources = {
    HelmChart: manager.informer<ChartSource>(resourceTypeOf(HelmChartKind)),
    OCIRepository: manager.informer<ChartSource>(resourceTypeOf(OCIRepositoryKind)),
  };
  releases.addIndex(SOURCE_INDEX, sourceKeys);
  releases.addIndex(DEPENDS_INDEX, dependencyKeys);
  const reconciler = new HelmReleaseReconciler({
    kubeConfig: local,
    releases,
    sources,
    helm: helper,
    charts,
    targetFor,
    readValues,
    requeueDependencyMs: options.requeueDependency,
    noCrossNamespaceRefs: options.noCrossNamespaceRefs,
    onDrift: (hr, drift) =>
      driftTotal.inc({ name: hr.metadata!.name!, namespace: hr.metadata!.namespace! }, drift.length),
  });
  const controller = manager.addController<HelmRelease>({
    name: 'helmrelease',
    resource: resourceTypeOf(HelmReleaseKind),
    fieldManager: FIELD_MANAGER,
    reconciler,
    isSuspended: (o) => o.spec?.suspend === true,
    // The deployed release's chart version, as Flux's kube-state-metrics configuration reads it.
    revision: (o) => o.status?.history?.[0]?.chartVersion,
  });
  // A new chart artifact reaches its releases at once, not at their next interval.
  for (const [kind, informer] of Object.entries(sources)) {
    informer.on({
      add: (s) => enqueueForSource(kind, s),
      update: (o, n) => {
        if (o.status?.artifact?.revision !== n.status?.artifact?.revision) enqueueForSource(kind, n);
        else if (o.status?.artifact?.digest !== n.status?.artifact?.digest) enqueueForSource(kind, n);
      },
    });
  }
  function enqueueForSource(kind: string, s: ChartSource): void {
    if (!s.status?.artifact) return;
    const key = `${kind}/${keyOf(s)}`;
    for (const hr of releases.byIndex(SOURCE_INDEX, key))
      controller.enqueue(keyOf(hr), key, s.status.artifact.revision);
  }
  // A release becoming Ready releases the ones that wait for it; any change may satisfy a readyExpr.
  releases.on({
    update: (o, n) => {
      const ready = (r: HelmRelease) => isTrue(r.status?.conditions, 'Ready');
      const released = ready(n) && (!ready(o) || o.status?.observedGeneration !== n.status?.observedGeneration);
      for (const dependent of releases.byIndex(DEPENDS_INDEX, keyOf(n))) {
        if (released || dependent.spec?.dependsOn?.some((d) => d.readyExpr)) controller.enqueue(keyOf(dependent));
      }
    },
  });
  // Labelled ConfigMaps and Secrets they read re-queue them when their data changes.
  const selector = options.watchConfigsLabelSelector;
  if (selector) requeueOnConfigChange(manager, selector, releases, configKeys, controller);
}

function decodeAll(data: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}
