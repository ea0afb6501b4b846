// HelmRelease on the local control plane: charts from an HTTP chart repository (Helm 4 CLI-packaged)
// and from the CNCF distribution registry, released through tide-helm into real Helm storage, read
// back and acted on with the real `helm` CLI.
import { CoreV1Api, type KubeConfig, type KubernetesObject, type V1Pod, Watch } from '@kubernetes/client-node';
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelmReleaseKind, type HelmReleaseSpec } from '../../controllers/api/helm/helmrelease.ts';
import { resourceTypeOf } from '../../controllers/api/kind.ts';
import { HelmRepositoryKind } from '../../controllers/api/source/helmrepository.ts';
import type { HelmRelease } from '../../controllers/helm/reconciler.ts';
import { apiClientFor } from '../../controllers/runtime/apply/client.ts';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import type { Manager } from '../../controllers/runtime/manager.ts';
import {
  helm,
  packageChart,
  startChartRepo,
  writeChart,
  type ChartRepo,
  type TestChart,
} from '../support/chartrepo.ts';
import { kubeConfig, testCluster } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { startController } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { startHelmManager } from '../support/helm-manager.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { freePort } from '../support/net.ts';
import { helmPush, startRegistry, type TestRegistry } from '../support/registry.ts';
import { startSourceManager } from '../support/source-manager.ts';

const LABEL = 'tide.test/suite';
const SELECTOR = `${LABEL}=helmrelease`;
const labels = { [LABEL]: 'helmrelease' };

const CONFIGMAP = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  message: {{ required "message is required" .Values.message | quote }}
  replicas: {{ .Values.replicas | quote }}
`;
const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  ports:
    - port: 80
`;
// A value the API server refuses (an invalid name): Helm records the release as failed.
const BROKEN = `{{- if .Values.broken }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: Broken_Name
{{- end }}
`;
const TEST_HOOK = `{{- if .Values.tests }}
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
    - name: test
      image: busybox
{{- end }}
`;

// A Deployment: never scheduled when stuck (no node has the label), Ready minReadySeconds after it runs.
const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  minReadySeconds: {{ .Values.minReadySeconds }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      {{- if .Values.stuck }}
      nodeSelector: {tide.test/none: "true"}
      {{- end }}
      containers: [{name: app, image: registry.example/app:1.0.0}]
`;

const slowChart: TestChart = {
  name: 'slow',
  version: '1.0.0',
  values: { stuck: false, minReadySeconds: 0 },
  templates: { 'deployment.yaml': DEPLOYMENT },
};

function appChart(version: string, extra: Partial<TestChart> = {}): TestChart {
  return {
    name: 'app',
    version,
    values: { message: 'hello', replicas: 1, broken: false, tests: false },
    templates: { 'configmap.yaml': CONFIGMAP, 'service.yaml': SERVICE, 'broken.yaml': BROKEN, 'test.yaml': TEST_HOOK },
    ...extra,
  };
}

describe('HelmRelease', function () {
  this.timeout(240_000);
  let kc: KubeConfig;
  let core: CoreV1Api;
  let ns: string;
  let repo: ChartRepo;
  let registry: TestRegistry;
  let sources: Manager;
  let releases: Manager;
  const hrType = resourceTypeOf(HelmReleaseKind);

  before(async () => {
    kc = kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installCRDs(kc);
    [repo, registry] = await Promise.all([startChartRepo(), startRegistry()]);
    await repo.publish(appChart('1.0.0'));
    await repo.publish(slowChart);
    const out = mkdtempSync(join(tmpdir(), 'tide-hr-oci-'));
    const tgz = await packageChart(writeChart(mkdtempSync(join(out, 'c-')), appChart('2.0.0')), out);
    await helmPush(tgz, `${registry.url}/charts`);
    ns = await createTestNamespace(kc, 'hr');
    await apply({
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: HelmRepositoryKind.kind,
      metadata: { name: 'charts', namespace: ns, labels },
      spec: { url: repo.url, interval: '1h' },
    });
    sources = await startSourceManager(kc, SELECTOR);
    releases = await startHelmManager(kc, SELECTOR);
  });

  after(async () => {
    await releases?.stop();
    await sources?.stop();
    await deleteNamespace(kc, ns);
    await Promise.all([repo?.close(), registry?.stop()]);
  });

  /** Server-side applies any object (a HelmRelease, a Secret with stringData, …). */
  async function apply(value: object): Promise<void> {
    const obj = value as KubernetesObject;
    const client = apiClientFor(kc);
    const res = await client.resourceFor(obj.apiVersion!, obj.kind!);
    await client.apply(res!, obj, { fieldManager: 'tide-test', force: true });
  }

  function release(name: string, spec: Partial<HelmReleaseSpec>): KubernetesObject & { spec: unknown } {
    return {
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
      kind: 'HelmRelease',
      metadata: { name, namespace: ns, labels },
      spec: {
        interval: '1h',
        timeout: '30s',
        chart: {
          metadata: { labels },
          spec: { chart: 'app', version: '1.0.0', sourceRef: { kind: 'HelmRepository', name: 'charts' } },
        },
        ...spec,
      },
    };
  }

  async function get(name: string): Promise<HelmRelease> {
    const obj = await apiClientFor(kc).get(hrType, { namespace: ns, name });
    if (!obj) throw new Error(`HelmRelease ${name} not found`);
    return obj as unknown as HelmRelease;
  }

  /** Waits until Ready has `status` (and `reason`) for the current generation. */
  async function waitReady(name: string, status: 'True' | 'False', reason?: string): Promise<HelmRelease> {
    return eventually(
      async () => {
        const hr = await get(name);
        const ready = findCondition(hr.status?.conditions, 'Ready');
        const shown = `${ready?.status} ${ready?.reason}: ${ready?.message}`;
        if (ready?.status !== status || (reason && ready.reason !== reason)) throw new Error(`Ready is ${shown}`);
        if (status === 'True' && hr.status?.observedGeneration !== hr.metadata?.generation) {
          throw new Error('generation not observed yet');
        }
        return hr;
      },
      { timeoutMs: 120_000, message: `HelmRelease ${name} Ready=${status} ${reason ?? ''}` },
    );
  }

  function template(version: string) {
    return {
      metadata: { labels },
      spec: { chart: 'app', version, sourceRef: { kind: 'HelmRepository' as const, name: 'charts' } },
    };
  }

  function kubeconfigPath(): string {
    return testCluster().kubeconfigPath;
  }

  async function requestReconcile(plural: string, name: string): Promise<void> {
    const group = plural === 'helmreleases' ? 'helm.toolkit.fluxcd.io' : 'source.toolkit.fluxcd.io';
    const version = plural === 'helmreleases' ? 'v2' : 'v1';
    const res = { group, version, kind: '', plural, namespaced: true };
    const value = new Date().toISOString();
    await apiClientFor(kc).jsonPatch(
      res,
      { namespace: ns, name },
      [{ op: 'add', path: '/metadata/annotations', value: { 'reconcile.fluxcd.io/requestedAt': value } }],
      'tide-test',
    );
  }

  async function annotate(name: string, annotations: Record<string, string>): Promise<void> {
    await apiClientFor(kc).jsonPatch(
      hrType,
      { namespace: ns, name },
      [{ op: 'add', path: '/metadata/annotations', value: annotations }],
      'tide-test',
    );
  }

  async function helmHistory(name: string): Promise<{ revision: number; status: string; description: string }[]> {
    try {
      return JSON.parse(await helm(['history', name, '-n', ns, '-o', 'json', '--kubeconfig', kubeconfigPath()]));
    } catch (err) {
      if (String(err).includes('release: not found')) return [];
      throw err;
    }
  }

  /**
   * Plays the kubelet for test hook Pods (kwok only runs them): a Pod of a release whose message
   * is "fail-test" fails, any other succeeds.
   */
  function completeTestPods(): { stop(): void } {
    let stopped = false;
    let current: { abort(): void } | undefined;
    const finish = async (pod: V1Pod) => {
      if (pod.metadata?.annotations?.['helm.sh/hook'] !== 'test') return;
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
      const release = pod.metadata.name!.replace(/-test$/, '');
      const cm = await configData(`${release}-config`);
      const phase = cm?.message === 'fail-test' ? 'Failed' : 'Succeeded';
      await core
        .patchNamespacedPodStatus({
          name: pod.metadata.name!,
          namespace: ns,
          body: [{ op: 'add', path: '/status/phase', value: phase }],
        })
        .catch(() => undefined);
    };
    // Every pod event (the kubelet's, kwok's, ours) is a chance to finish a hook Pod; a watch the
    // server closes is opened again.
    const open = () => {
      if (stopped) return;
      void new Watch(kc)
        .watch(
          `/api/v1/namespaces/${ns}/pods`,
          {},
          (type: string, pod: V1Pod) => {
            if (type === 'ADDED' || type === 'MODIFIED') void finish(pod);
          },
          () => open(),
        )
        .then((req) => {
          current = req;
          if (stopped) req.abort();
        });
    };
    open();
    return {
      stop: () => {
        stopped = true;
        current?.abort();
      },
    };
  }

  /** Waits until condition `type` has `status` and `reason`; the message names all conditions when it does not. */
  async function waitCondition(name: string, type: string, status: string, reason: string): Promise<HelmRelease> {
    return eventually(
      async () => {
        const hr = await get(name);
        const c = findCondition(hr.status?.conditions, type);
        if (c?.status !== status || c.reason !== reason) {
          const all = (hr.status?.conditions ?? []).map((x) => `${x.type}=${x.status} ${x.reason}: ${x.message}`);
          throw new Error(`${type} is not ${status} ${reason}; conditions: ${all.join(' | ')}`);
        }
        return hr;
      },
      { timeoutMs: 120_000, message: `HelmRelease ${name} ${type}=${status} ${reason}` },
    );
  }

  async function configData(name: string): Promise<Record<string, string> | undefined> {
    const cm = await core.readNamespacedConfigMap({ name, namespace: ns }).catch(() => undefined);
    return cm?.data;
  }

  it('installs from a HelmRepository into Helm storage the helm CLI reads, and upgrades on new values', async () => {
    await apply(release('basic', { values: { message: 'from-tide' } }));
    let hr = await waitReady('basic', 'True', 'InstallSucceeded');
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.equal(
      `Helm install succeeded for release ${ns}/basic.v1 with chart app@1.0.0`,
    );
    expect(hr.status?.helmChart).to.equal(`${ns}/${ns}-basic`);
    expect(hr.status?.history?.[0]).to.include({
      version: 1,
      status: 'deployed',
      chartName: 'app',
      chartVersion: '1.0.0',
    });
    expect(hr.status?.lastAttemptedRevision).to.equal('1.0.0');
    expect(hr.status?.inventory?.entries.map((e) => e.id)).to.have.members([
      `${ns}_basic-config__ConfigMap`,
      `${ns}_basic__Service`,
    ]);
    expect(await configData('basic-config')).to.deep.include({ message: 'from-tide' });
    const cm = await core.readNamespacedConfigMap({ name: 'basic-config', namespace: ns });
    expect(cm.metadata?.labels).to.include({
      'helm.toolkit.fluxcd.io/name': 'basic',
      'app.kubernetes.io/managed-by': 'Helm',
    });

    const list = JSON.parse(await helm(['list', '-n', ns, '-o', 'json', '--kubeconfig', kubeconfigPath()]));
    expect(list.map((r: { name: string; status: string }) => [r.name, r.status])).to.deep.include([
      'basic',
      'deployed',
    ]);
    const values = JSON.parse(
      await helm(['get', 'values', 'basic', '-n', ns, '-o', 'json', '--kubeconfig', kubeconfigPath()]),
    );
    expect(values).to.deep.equal({ message: 'from-tide' });

    await apply(release('basic', { values: { message: 'changed' } }));
    hr = await waitReady('basic', 'True', 'UpgradeSucceeded');
    expect(hr.status?.history?.[0]).to.include({ version: 2, status: 'deployed' });
    expect(await configData('basic-config')).to.deep.include({ message: 'changed' });
    const history = JSON.parse(
      await helm(['history', 'basic', '-n', ns, '-o', 'json', '--kubeconfig', kubeconfigPath()]),
    );
    expect(history.map((h: { revision: number; status: string }) => [h.revision, h.status])).to.deep.equal([
      [1, 'superseded'],
      [2, 'deployed'],
    ]);
  });

  it('upgrades to a new chart version published in the repository', async () => {
    await apply(release('versions', { chart: template('1.x') }));
    await waitReady('versions', 'True', 'InstallSucceeded');
    await repo.publish(appChart('1.1.0', { values: { message: 'one-one', replicas: 1 } }));
    await requestReconcile(HelmRepositoryKind.plural, 'charts');
    const hr = await waitReady('versions', 'True', 'UpgradeSucceeded');
    expect(hr.status?.history?.[0]).to.include({ version: 2, chartVersion: '1.1.0' });
    expect(await configData('versions-config')).to.deep.include({ message: 'one-one' });
  });

  it('re-applies when a watched valuesFrom Secret changes; its values never reach status or events', async () => {
    const secret = (message: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'app-values', namespace: ns, labels: { 'reconcile.fluxcd.io/watch': 'Enabled' } },
      stringData: { 'values.yaml': `message: ${message}\n` },
    });
    await apply(secret('t0p-s3cret-1'));
    await apply(release('fromsecret', { valuesFrom: [{ kind: 'Secret', name: 'app-values' }] }));
    await waitReady('fromsecret', 'True', 'InstallSucceeded');
    expect(await configData('fromsecret-config')).to.deep.include({ message: 't0p-s3cret-1' });
    await apply(secret('t0p-s3cret-2'));
    await eventually(async () => {
      expect(await configData('fromsecret-config')).to.deep.include({ message: 't0p-s3cret-2' });
    });
    const hr = await waitReady('fromsecret', 'True', 'UpgradeSucceeded');
    const events = await core.listNamespacedEvent({ namespace: ns });
    expect(JSON.stringify(hr.status)).not.to.contain('s3cret');
    expect(JSON.stringify(events.items.map((e) => e.message))).not.to.contain('s3cret');
  });

  it('reports a missing valuesFrom source, and a chart that does not render, leaving storage untouched', async () => {
    await apply(release('novalues', { valuesFrom: [{ kind: 'ConfigMap', name: 'absent' }] }));
    let hr = await waitReady('novalues', 'False', 'ValuesError');
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.contain(
      `could not resolve ConfigMap chart values reference '${ns}/absent' with key 'values.yaml'`,
    );
    await apply(release('norender', { values: { message: null } }));
    hr = await waitReady('norender', 'False', 'InstallFailed');
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.contain('message is required');
    expect(hr.status?.installFailures ?? 0).to.equal(0);
    expect(await helmHistory('norender')).to.deep.equal([]);
    await apply(release('norender', { values: { message: 'fixed' } }));
    await waitReady('norender', 'True', 'InstallSucceeded');
  });

  it('remediates a failed install by uninstalling, stalls when out of retries, and recovers on a fix', async () => {
    const spec = { values: { broken: true }, install: { remediation: { retries: 1 } } };
    await apply(release('badinstall', spec));
    const hr = await waitCondition('badinstall', 'Stalled', 'True', 'RetriesExceeded');
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.match(/^Failed to install after 2 attempt\(s\)/);
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.contain('Broken_Name');
    expect(hr.status?.installFailures).to.equal(2);
    await apply(release('badinstall', { values: { broken: false }, install: { remediation: { retries: 1 } } }));
    const fixed = await waitReady('badinstall', 'True');
    expect(findCondition(fixed.status?.conditions, 'Stalled')).to.equal(undefined);
    expect(fixed.status?.history?.[0]).to.include({ status: 'deployed' });
  });

  it('rolls back a failed upgrade', async () => {
    const remediation = { upgrade: { remediation: { retries: 1 } } };
    await apply(release('rollback', { values: { message: 'good' }, ...remediation }));
    await waitReady('rollback', 'True', 'InstallSucceeded');
    await apply(release('rollback', { values: { message: 'bad', broken: true }, ...remediation }));
    const hr = await waitCondition('rollback', 'Remediated', 'True', 'RollbackSucceeded');
    expect(findCondition(hr.status?.conditions, 'Remediated')?.message).to.equal(
      `Helm rollback to previous release ${ns}/rollback.v1 with chart app@1.0.0 succeeded`,
    );
    expect(await configData('rollback-config')).to.deep.include({ message: 'good' });
    expect((await helmHistory('rollback')).map((h) => h.status)).to.deep.equal(['superseded', 'failed', 'deployed']);
  });

  it('runs test hooks after install: a pass makes it Ready, a failure is reported and remediated', async () => {
    const finish = completeTestPods();
    try {
      await apply(release('tested', { values: { tests: true }, test: { enable: true } }));
      const hr = await waitReady('tested', 'True', 'TestSucceeded');
      expect(findCondition(hr.status?.conditions, 'TestSuccess')?.message).to.match(
        /^Helm test succeeded for release .*tested\.v1 with chart app@1\.0\.0: 1 test hook\(s\) completed succ/,
      );
      expect(Object.values(hr.status?.history?.[0]?.testHooks ?? {})[0]).to.include({ phase: 'Succeeded' });
      await apply(release('failtest', { values: { tests: true, message: 'fail-test' }, test: { enable: true } }));
      const failed = await waitCondition('failtest', 'TestSuccess', 'False', 'TestFailed');
      expect(findCondition(failed.status?.conditions, 'Ready')?.status).to.equal('False');
    } finally {
      finish.stop();
    }
  });

  it('corrects drift when enabled, and only reports it in warn mode', async () => {
    await apply(release('drift', { driftDetection: { mode: 'enabled' } }));
    await waitReady('drift', 'True', 'InstallSucceeded');
    await core.deleteNamespacedConfigMap({ name: 'drift-config', namespace: ns });
    await requestReconcile(HelmReleaseKind.plural, 'drift');
    await eventually(async () => {
      expect(await configData('drift-config')).to.deep.include({ message: 'hello' });
    });
    await apply(release('warn', { driftDetection: { mode: 'warn' } }));
    await waitReady('warn', 'True', 'InstallSucceeded');
    await core.patchNamespacedConfigMap({
      name: 'warn-config',
      namespace: ns,
      body: [{ op: 'replace', path: '/data/message', value: 'edited' }],
    });
    await requestReconcile(HelmReleaseKind.plural, 'warn');
    const hr = await waitCondition('warn', 'Drifted', 'True', 'DriftDetected');
    expect(findCondition(hr.status?.conditions, 'Drifted')?.message).to.contain(
      `ConfigMap/${ns}/warn-config modified (/data/message)`,
    );
    expect(findCondition(hr.status?.conditions, 'Ready')?.status).to.equal('True');
    expect(await configData('warn-config')).to.deep.include({ message: 'edited' });
    const drift = await releases.metrics.registry.getSingleMetric('gotk_helmrelease_drift_total')?.get();
    const counted = drift?.values.find((v) => v.labels.name === 'warn' && v.labels.namespace === ns);
    expect(counted?.value).to.be.greaterThanOrEqual(1);
  });

  it('takes over a release installed by hand with helm install', async () => {
    const tgz = join(repo.dir, 'app-1.0.0.tgz');
    await helm(['install', 'byhand', tgz, '-n', ns, '--set', 'message=by-hand', '--kubeconfig', kubeconfigPath()]);
    await apply(release('byhand', { values: { message: 'by-tide' } }));
    const hr = await waitReady('byhand', 'True', 'UpgradeSucceeded');
    expect(hr.status?.history?.[0]).to.include({ version: 2 });
    expect(await configData('byhand-config')).to.deep.include({ message: 'by-tide' });
  });

  it('uninstalls on delete (keeping the history when asked) and deletes its HelmChart', async () => {
    await apply(release('gone', {}));
    await apply(release('kept', { uninstall: { keepHistory: true } }));
    await waitReady('gone', 'True');
    await waitReady('kept', 'True');
    const client = apiClientFor(kc);
    await client.delete(hrType, { namespace: ns, name: 'gone' }, undefined);
    await client.delete(hrType, { namespace: ns, name: 'kept' }, undefined);
    await eventually(async () => {
      expect(await client.get(hrType, { namespace: ns, name: 'gone' })).to.equal(undefined);
      expect(await client.get(hrType, { namespace: ns, name: 'kept' })).to.equal(undefined);
    });
    expect(await helmHistory('gone')).to.deep.equal([]);
    expect((await helmHistory('kept')).map((h) => h.status)).to.deep.equal(['uninstalled']);
    expect(await configData('gone-config')).to.equal(undefined);
    const chartType = {
      group: 'source.toolkit.fluxcd.io',
      version: 'v1',
      kind: 'HelmChart',
      plural: 'helmcharts',
      namespaced: true,
    };
    expect(await client.get(chartType, { namespace: ns, name: `${ns}-gone` })).to.equal(undefined);
  });

  it('waits for dependsOn', async () => {
    await apply(release('dependent', { dependsOn: [{ name: 'dependency' }] }));
    const waiting = await waitReady('dependent', 'False', 'DependencyNotReady');
    expect(findCondition(waiting.status?.conditions, 'Ready')?.message).to.equal(
      `dependency '${ns}/dependency' not found`,
    );
    await apply(release('dependency', {}));
    await waitReady('dependency', 'True');
    await waitReady('dependent', 'True', 'InstallSucceeded');
  });

  it('installs a chart from an OCIRepository, its version suffixed with the artifact digest', async () => {
    await apply({
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'OCIRepository',
      metadata: { name: 'oci-app', namespace: ns, labels },
      spec: {
        url: `${registry.url}/charts/app`,
        ref: { tag: '2.0.0' },
        insecure: true,
        interval: '1h',
        layerSelector: { mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', operation: 'copy' },
      },
    });
    const spec = { chartRef: { kind: 'OCIRepository' as const, name: 'oci-app' } };
    const obj = release('fromoci', spec);
    delete (obj.spec as { chart?: unknown }).chart;
    await apply(obj);
    const hr = await waitReady('fromoci', 'True', 'InstallSucceeded');
    expect(hr.status?.history?.[0]?.chartVersion).to.match(/^2\.0\.0\+[0-9a-f]{12}$/);
    expect(hr.status?.history?.[0]?.ociDigest).to.match(/^sha256:[0-9a-f]{64}$/);
  });

  it('post-renders with kustomize patches and common metadata, and upgrades when they change', async () => {
    const patch = (value: string) => ({
      kustomize: {
        patches: [
          {
            target: { kind: 'ConfigMap' },
            patch: `[{"op": "add", "path": "/data/patched", "value": "${value}"}]`,
          },
        ],
      },
    });
    const spec = { postRenderers: [patch('one')], commonMetadata: { labels: { team: 'platform' } } };
    await apply(release('rendered', spec));
    await waitReady('rendered', 'True', 'InstallSucceeded');
    expect(await configData('rendered-config')).to.deep.include({ patched: 'one' });
    const cm = await core.readNamespacedConfigMap({ name: 'rendered-config', namespace: ns });
    expect(cm.metadata?.labels).to.include({ team: 'platform' });
    await apply(release('rendered', { ...spec, postRenderers: [patch('two')] }));
    await waitReady('rendered', 'True', 'UpgradeSucceeded');
    expect(await configData('rendered-config')).to.deep.include({ patched: 'two' });
    const broken = {
      kustomize: {
        patches: [{ patch: '[{"op": "replace", "path": "/nope/x", "value": 1}]', target: { kind: 'ConfigMap' } }],
      },
    };
    await apply(release('rendered', { ...spec, postRenderers: [broken] }));
    const hr = await waitReady('rendered', 'False', 'UpgradeFailed');
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.match(/Helm upgrade failed .*\/nope/);
    expect(await configData('rendered-config')).to.deep.include({ patched: 'two' });
  });

  it('moves a release whose name changes: the old one is uninstalled', async () => {
    await apply(release('mover', { releaseName: 'mover-a' }));
    await waitReady('mover', 'True', 'InstallSucceeded');
    expect(await configData('mover-a-config')).to.not.equal(undefined);
    await apply(release('mover', { releaseName: 'mover-b' }));
    const hr = await waitReady('mover', 'True', 'InstallSucceeded');
    expect(hr.status?.history?.map((h) => h.name)).to.deep.equal(['mover-b']);
    expect(await helmHistory('mover-a')).to.deep.equal([]);
    expect(await configData('mover-a-config')).to.equal(undefined);
    expect(await configData('mover-b-config')).to.not.equal(undefined);
  });

  it('forceAt forces an upgrade, resetAt resets failure counters (flux reconcile --force/--reset)', async () => {
    await apply(release('forced', {}));
    await waitReady('forced', 'True', 'InstallSucceeded');
    await annotate('forced', { 'reconcile.fluxcd.io/requestedAt': 'f1', 'reconcile.fluxcd.io/forceAt': 'f1' });
    let hr = await waitReady('forced', 'True', 'UpgradeSucceeded');
    expect(hr.status?.lastHandledForceAt).to.equal('f1');
    expect(hr.status?.history?.[0]).to.include({ version: 2 });
    await apply(release('forced', { values: { broken: true } }));
    hr = await waitCondition('forced', 'Stalled', 'True', 'RetriesExceeded');
    expect(hr.status?.upgradeFailures).to.equal(1);
    await annotate('forced', { 'reconcile.fluxcd.io/requestedAt': 'r1', 'reconcile.fluxcd.io/resetAt': 'r1' });
    // The counters are reset, so the failed release gets one more upgrade (which fails again).
    await eventually(async () => {
      const o = await get('forced');
      expect(o.status?.lastHandledResetAt).to.equal('r1');
      expect(o.status?.history?.[0]?.version).to.equal(4);
    });
  });

  it("acts as spec.serviceAccountName: an account without rights fails with the API server's answer", async () => {
    await apply(release('norights', { serviceAccountName: 'nobody' }));
    const hr = await waitReady('norights', 'False');
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.match(
      new RegExp(`system:serviceaccount:${ns}:nobody.*forbidden|forbidden.*system:serviceaccount:${ns}:nobody`, 'i'),
    );
    expect(await helmHistory('norights')).to.deep.equal([]);
  });

  it('releases through spec.kubeConfig to the cluster it names; an unreachable one is a clear failure', async () => {
    const admin = readFileSync(kubeconfigPath(), 'utf8');
    const closed = admin.replace(/server: .*/, `server: https://127.0.0.1:${await freePort()}`);
    for (const [name, value] of [
      ['remote-admin', admin],
      ['remote-closed', closed],
    ] as const) {
      await apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, stringData: { value } });
    }
    await apply(release('remote', { kubeConfig: { secretRef: { name: 'remote-admin' } } }));
    await waitReady('remote', 'True', 'InstallSucceeded');
    expect(await configData('remote-config')).to.not.equal(undefined);
    await apply(release('unreachable', { kubeConfig: { secretRef: { name: 'remote-closed' } } }));
    const hr = await waitReady('unreachable', 'False');
    expect(findCondition(hr.status?.conditions, 'Ready')?.message).to.match(/127\.0\.0\.1:\d+.*(refused|connect)/);
  });

  it('unlocks a release left pending by a killed helm once it is older than the action timeout', async () => {
    const home = mkdtempSync(join(tmpdir(), 'tide-helm-cli-'));
    const env = { ...process.env, HELM_CONFIG_HOME: home, HELM_CACHE_HOME: home, HELM_DATA_HOME: home };
    const args = ['install', 'stuck', join(repo.dir, 'slow-1.0.0.tgz'), '-n', ns, '--set', 'stuck=true'];
    const cli = spawn(
      join(testCluster().binDir, 'helm'),
      [...args, '--wait', '--timeout=5m', '--kubeconfig', kubeconfigPath()],
      {
        env,
        stdio: 'ignore',
      },
    );
    try {
      await eventually(async () => {
        expect((await helmHistory('stuck')).map((h) => h.status)).to.deep.equal(['pending-install']);
      });
    } finally {
      cli.kill('SIGKILL');
    }
    // The pending install is unlocked once older than the install timeout; the upgrade has its own.
    const spec = {
      timeout: '3s',
      upgrade: { timeout: '90s' },
      chart: { ...template('1.0.0'), spec: { ...template('1.0.0').spec, chart: 'slow' } },
    };
    await apply(release('stuck', spec));
    const hr = await waitReady('stuck', 'True', 'UpgradeSucceeded');
    expect(hr.status?.history?.[0]).to.include({ version: 2, status: 'deployed' });
    const history = await helmHistory('stuck');
    expect(history.map((h) => h.status)).to.deep.equal(['superseded', 'deployed']);
    expect(history[0]?.description).to.equal('Release unlocked from stale state');
  });

  it('lets the Helm action in flight finish when tide-controller gets SIGTERM', async () => {
    const drain = { [LABEL]: 'helmrelease-drain' };
    await apply({
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: HelmRepositoryKind.kind,
      metadata: { name: 'charts-drain', namespace: ns, labels: drain },
      spec: { url: repo.url, interval: '1h' },
    });
    const controller = await startController([
      '--controllers=source,helm',
      `--watch-label-selector=${LABEL}=helmrelease-drain`,
    ]);
    try {
      const obj = release('drain', { values: { minReadySeconds: 6 } });
      obj.metadata = { ...obj.metadata, labels: drain };
      const spec = obj.spec as { chart: { metadata: unknown; spec: Record<string, unknown> } };
      spec.chart = {
        metadata: { labels: drain },
        spec: { ...spec.chart.spec, chart: 'slow', sourceRef: { kind: 'HelmRepository', name: 'charts-drain' } },
      };
      await apply(obj);
      await eventually(async () => {
        expect((await helmHistory('drain')).map((h) => h.status)).to.deep.equal(['pending-install']);
      });
    } finally {
      expect(await controller.stop()).to.equal(0);
    }
    expect((await helmHistory('drain')).map((h) => h.status)).to.deep.equal(['deployed']);
  });
});
