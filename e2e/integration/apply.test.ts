// The server-side apply engine against a real API server: staging, no-op detection, ssa policies,
// immutable fields, validation, prune and health.
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  KubeConfig,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { applyAll, type ApplyOptions } from '../../controllers/runtime/apply/apply.ts';
import type { ChangeSet } from '../../controllers/runtime/apply/changeset.ts';
import { ApplyError, ValidationError } from '../../controllers/runtime/apply/errors.ts';
import { HealthError, waitForHealth } from '../../controllers/runtime/apply/health.ts';
import { compileIgnoreRules } from '../../controllers/runtime/apply/ignore.ts';
import { entryOf, refOf, type InventoryEntry } from '../../controllers/runtime/apply/inventory.ts';
import { prune } from '../../controllers/runtime/apply/prune.ts';
import { kubeConfig } from '../support/cluster.ts';
import { widgetCRD } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';

const fieldManager = 'tide-apply-test';
const opts: ApplyOptions = { fieldManager };

type Obj = KubernetesObject & Record<string, unknown>;

function configMap(
  namespace: string,
  name: string,
  data: Record<string, string>,
  meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): Obj {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, ...meta }, data };
}

function deployment(
  namespace: string,
  name: string,
  spec: { image?: string; nodeSelector?: Record<string, string>; progressDeadlineSeconds?: number } = {},
): Obj {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      ...(spec.progressDeadlineSeconds ? { progressDeadlineSeconds: spec.progressDeadlineSeconds } : {}),
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [{ name: 'app', image: spec.image ?? 'example.invalid/app:1' }],
          ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
        },
      },
    },
  };
}

function job(
  namespace: string,
  name: string,
  image: string,
  extra: {
    annotations?: Record<string, string>;
    activeDeadlineSeconds?: number;
    nodeSelector?: Record<string, string>;
  } = {},
): Obj {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      backoffLimit: 0,
      ...(extra.activeDeadlineSeconds ? { activeDeadlineSeconds: extra.activeDeadlineSeconds } : {}),
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'job', image }],
          ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
        },
      },
    },
  };
}

/** The Widget schema: spec.size is an integer. */
const widgetSchema = {
  type: 'object',
  properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
};

function actions(cs: ChangeSet): Record<string, string> {
  return Object.fromEntries(cs.map((e) => [e.subject, e.action]));
}

describe('apply engine', function () {
  this.timeout(120_000);
  let kc: KubeConfig;
  let api: KubernetesObjectApi;
  let namespace: string;
  const cleanup: Array<() => Promise<unknown>> = [];

  async function read(obj: KubernetesObject): Promise<Obj | undefined> {
    try {
      return (await api.read({
        apiVersion: obj.apiVersion!,
        kind: obj.kind!,
        metadata: { name: obj.metadata!.name!, namespace: obj.metadata?.namespace },
      })) as Obj;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  before(() => {
    kc = kubeConfig();
    api = KubernetesObjectApi.makeApiClient(kc);
  });

  beforeEach(async function () {
    namespace = await createTestNamespace(kc, `apply-${this.currentTest?.title.slice(0, 20) ?? 'test'}`);
  });

  afterEach(async () => {
    for (const fn of cleanup.splice(0)) await fn().catch(() => {});
    await deleteNamespace(kc, namespace);
  });

  it('applies CRDs and Namespaces first; a re-apply writes nothing; one change configures one object', async () => {
    const group = `${namespace}.tide.test`;
    const extraNs = `${namespace}-x`;
    cleanup.push(() =>
      kc.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: `widgets.${group}` }),
    );
    cleanup.push(() => deleteNamespace(kc, extraNs));
    const objects: Obj[] = [
      deployment(namespace, 'web'),
      { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1', namespace }, spec: { size: 3 } },
      configMap(extraNs, 'settings', { a: '1' }),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace },
        spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
      },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: extraNs } },
      widgetCRD(group, widgetSchema),
    ];

    const first = await applyAll(kc, objects, opts);
    expect(first.map((e) => `${e.subject} ${e.action}`)).to.deep.equal([
      `CustomResourceDefinition/widgets.${group} created`,
      `Namespace/${extraNs} created`,
      `ConfigMap/${extraNs}/settings created`,
      `Service/${namespace}/web created`,
      `Deployment/${namespace}/web created`,
      `Widget/${namespace}/w1 created`,
    ]);
    expect(first.find((e) => e.subject.startsWith('Widget/'))!.id).to.equal(`${namespace}_w1_${group}_Widget`);
    expect(first.find((e) => e.subject.startsWith('Namespace/'))!.id).to.equal(`_${extraNs}__Namespace`);
    expect(((await read(objects[1]!)) as { spec?: { size?: number } }).spec?.size).to.equal(3);

    // Steady state first, so controllers' own status writes cannot move a resourceVersion.
    await waitForHealth(
      kc,
      first.map((e) => ({ id: e.id, v: e.version })),
      60_000,
      500,
    );
    const before = await Promise.all(objects.map(async (o) => (await read(o))!.metadata!.resourceVersion));

    const again = await applyAll(kc, objects, opts);
    expect(new Set(again.map((e) => e.action))).to.deep.equal(new Set(['unchanged']));
    const after = await Promise.all(objects.map(async (o) => (await read(o))!.metadata!.resourceVersion));
    expect(after).to.deep.equal(before);

    objects[2] = configMap(extraNs, 'settings', { a: '2' });
    const changed = await applyAll(kc, objects, opts);
    expect(changed.filter((e) => e.action !== 'unchanged').map((e) => `${e.subject} ${e.action}`)).to.deep.equal([
      `ConfigMap/${extraNs}/settings configured`,
    ]);
    expect(((await read(objects[2]!)) as { data?: Record<string, string> }).data).to.deep.equal({ a: '2' });
  });

  it('reverts kubectl edits under Override and keeps them under Merge', async () => {
    const override = configMap(namespace, 'override', { a: '1' });
    const merge = configMap(
      namespace,
      'merge',
      { a: '1' },
      { annotations: { 'kustomize.toolkit.fluxcd.io/ssa': 'Merge' } },
    );
    await applyAll(kc, [override, merge], opts);
    for (const name of ['override', 'merge']) {
      // What `kubectl edit` sends: an update under the kubectl-edit manager.
      await api.patch(
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels: { edited: 'true' } } },
        undefined,
        undefined,
        'kubectl-edit',
        undefined,
        PatchStrategy.MergePatch,
      );
    }

    const cs = await applyAll(kc, [override, merge], opts);
    expect(actions(cs)).to.deep.equal({
      [`ConfigMap/${namespace}/override`]: 'configured',
      [`ConfigMap/${namespace}/merge`]: 'unchanged',
    });
    expect((await read(override))!.metadata!.labels ?? {}).to.not.have.property('edited');
    expect((await read(merge))!.metadata!.labels).to.have.property('edited', 'true');
    expect(actions(await applyAll(kc, [override, merge], opts))).to.deep.equal({
      [`ConfigMap/${namespace}/override`]: 'unchanged',
      [`ConfigMap/${namespace}/merge`]: 'unchanged',
    });
  });

  it('adopts objects created by other tools: takes over kubectl fields, owns the declared ones', async () => {
    await api.create(
      configMap(namespace, 'by-kubectl', { a: '1' }, { labels: { extra: 'x' } }),
      undefined,
      undefined,
      'kubectl-create',
    );
    await api.create(configMap(namespace, 'by-other', { a: '1' }), undefined, undefined, 'some-operator');
    const manifests = [configMap(namespace, 'by-kubectl', { a: '1' }), configMap(namespace, 'by-other', { a: '1' })];

    expect(actions(await applyAll(kc, manifests, opts))).to.deep.equal({
      [`ConfigMap/${namespace}/by-kubectl`]: 'configured',
      [`ConfigMap/${namespace}/by-other`]: 'configured',
    });
    expect((await read(manifests[0]!))!.metadata!.labels ?? {}).to.not.have.property('extra');
    const managers = ((await read(manifests[1]!))!.metadata!.managedFields ?? []).map(
      (e) => `${e.manager}/${e.operation}`,
    );
    expect(managers).to.include(`${fieldManager}/Apply`);
    expect(new Set((await applyAll(kc, manifests, opts)).map((e) => e.action))).to.deep.equal(new Set(['unchanged']));
  });

  it('validates objects that need a CRD of the same set once it is established', async () => {
    const group = `${namespace}.tide.test`;
    cleanup.push(() =>
      kc.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: `widgets.${group}` }),
    );
    const cm = configMap(namespace, 'with-widget', { a: '1' });
    const widget = {
      apiVersion: `${group}/v1`,
      kind: 'Widget',
      metadata: { name: 'w1', namespace },
      spec: { size: 'big' },
    };
    const err = await applyAll(kc, [widgetCRD(group, widgetSchema), cm, widget], opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as Error).message)
      .to.contain(`Widget/${namespace}/w1 dry-run failed: `)
      .and.to.contain('spec.size');
    expect((err as ValidationError).changeSet.map((e) => `${e.subject} ${e.action}`)).to.deep.equal([
      `CustomResourceDefinition/widgets.${group} created`,
    ]);
    expect(await read(cm)).to.equal(undefined);
  });

  it('honours IfNotPresent, Ignore and reconcile: disabled', async () => {
    const once = (data: Record<string, string>) =>
      configMap(namespace, 'once', data, { annotations: { 'kustomize.toolkit.fluxcd.io/ssa': 'IfNotPresent' } });
    const ignored = configMap(
      namespace,
      'ignored',
      { a: '1' },
      { annotations: { 'kustomize.toolkit.fluxcd.io/ssa': 'Ignore' } },
    );
    const disabled = configMap(
      namespace,
      'disabled',
      { a: '1' },
      { annotations: { 'kustomize.toolkit.fluxcd.io/reconcile': 'disabled' } },
    );

    expect(actions(await applyAll(kc, [once({ a: '1' }), ignored, disabled], opts))).to.deep.equal({
      [`ConfigMap/${namespace}/once`]: 'created',
      [`ConfigMap/${namespace}/ignored`]: 'skipped',
      [`ConfigMap/${namespace}/disabled`]: 'skipped',
    });
    expect(await read(ignored)).to.equal(undefined);
    expect(await read(disabled)).to.equal(undefined);

    expect(actions(await applyAll(kc, [once({ a: '2' })], opts))).to.deep.equal({
      [`ConfigMap/${namespace}/once`]: 'skipped',
    });
    expect((await read(once({})))!.data).to.deep.equal({ a: '1' });

    // A live object annotated in the cluster is left alone even when the manifest is not.
    const pinned = configMap(namespace, 'pinned', { a: '1' });
    await applyAll(kc, [pinned], opts);
    await api.patch(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'pinned', namespace, annotations: { 'kustomize.toolkit.fluxcd.io/reconcile': 'disabled' } },
      },
      undefined,
      undefined,
      'kubectl-annotate',
      undefined,
      PatchStrategy.MergePatch,
    );
    expect(actions(await applyAll(kc, [configMap(namespace, 'pinned', { a: '2' })], opts))).to.deep.equal({
      [`ConfigMap/${namespace}/pinned`]: 'skipped',
    });
    expect((await read(pinned))!.data).to.deep.equal({ a: '1' });
  });

  it('recreates an object whose immutable field changed only when forced', async () => {
    const pinned = { nodeSelector: { 'tide.test/nowhere': 'true' } };
    await applyAll(
      kc,
      [
        job(namespace, 'migrate', 'example.invalid/m:1', pinned),
        job(namespace, 'annotated', 'example.invalid/m:1', pinned),
      ],
      opts,
    );
    const uid1 = (await read(job(namespace, 'migrate', '')))!.metadata!.uid;
    const uid2 = (await read(job(namespace, 'annotated', '')))!.metadata!.uid;

    const changed = job(namespace, 'migrate', 'example.invalid/m:2', pinned);
    const err = await applyAll(kc, [changed], opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as Error).message)
      .to.contain(`Job/${namespace}/migrate`)
      .and.to.match(/immutable/);
    expect((await read(changed))!.metadata!.uid).to.equal(uid1);

    expect(actions(await applyAll(kc, [changed], { ...opts, force: true }))).to.deep.equal({
      [`Job/${namespace}/migrate`]: 'created',
    });
    const recreated = (await read(changed)) as {
      metadata: { uid: string };
      spec: { template: { spec: { containers: Array<{ image: string }> } } };
    };
    expect(recreated.metadata.uid).to.not.equal(uid1);
    expect(recreated.spec.template.spec.containers[0]!.image).to.equal('example.invalid/m:2');

    const annotated = job(namespace, 'annotated', 'example.invalid/m:2', {
      ...pinned,
      annotations: { 'kustomize.toolkit.fluxcd.io/force': 'enabled' },
    });
    expect(actions(await applyAll(kc, [annotated], opts))).to.deep.equal({ [`Job/${namespace}/annotated`]: 'created' });
    expect((await read(annotated))!.metadata!.uid).to.not.equal(uid2);
  });

  it('recreates a Service whose cluster IP changed only when forced', async () => {
    const service = (clusterIP?: string): Obj => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'db', namespace },
      spec: { selector: { app: 'db' }, ports: [{ port: 5432 }], ...(clusterIP ? { clusterIP } : {}) },
    });
    await applyAll(kc, [service()], opts);
    const before = (await read(service())) as { metadata: { uid: string }; spec: { clusterIP: string } };
    expect(before.spec.clusterIP).to.match(/^\d+\.\d+\.\d+\.\d+$/);

    const err = await applyAll(kc, [service('None')], opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message)
      .to.contain(`Service/${namespace}/db dry-run failed`)
      .and.to.match(/may not change once set|immutable/);

    expect(actions(await applyAll(kc, [service('None')], { ...opts, force: true }))).to.deep.equal({
      [`Service/${namespace}/db`]: 'created',
    });
    const after = (await read(service())) as { metadata: { uid: string }; spec: { clusterIP: string } };
    expect(after.metadata.uid).to.not.equal(before.metadata.uid);
    expect(after.spec.clusterIP).to.equal('None');
  });

  it('applies nothing when any object is invalid, and names each one', async () => {
    const good = configMap(namespace, 'good', { a: '1' });
    const bad = {
      ...deployment(namespace, 'bad'),
      spec: { ...(deployment(namespace, 'bad').spec as object), replicas: -1 },
    };
    const unknown = { apiVersion: 'nowhere.tide.test/v1', kind: 'Gadget', metadata: { name: 'g', namespace } };
    const err = await applyAll(kc, [good, bad, unknown], opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ValidationError);
    const message = (err as Error).message;
    expect(message).to.contain(`Gadget/${namespace}/g dry-run failed: no matches for kind "Gadget"`);
    expect(message).to.contain(`Deployment/${namespace}/bad dry-run failed: Invalid:`).and.to.contain('spec.replicas');
    expect((err as ValidationError).failures).to.have.length(2);
    expect(await read(good)).to.equal(undefined);
    expect(await read(bad)).to.equal(undefined);
  });

  it('writes nothing in dry-run mode but reports what it would do', async () => {
    const cm = configMap(namespace, 'dry', { a: '1' });
    expect(actions(await applyAll(kc, [cm], { ...opts, dryRun: true }))).to.deep.equal({
      [`ConfigMap/${namespace}/dry`]: 'created',
    });
    expect(await read(cm)).to.equal(undefined);
    await applyAll(kc, [cm], opts);
    expect(
      actions(await applyAll(kc, [configMap(namespace, 'dry', { a: '2' })], { ...opts, dryRun: true })),
    ).to.deep.equal({ [`ConfigMap/${namespace}/dry`]: 'configured' });
    expect((await read(cm))!.data).to.deep.equal({ a: '1' });
  });

  it('prunes stale objects it owns, keeps prune: disabled and other owners, Namespaces last', async () => {
    const owner = { 'kustomize.toolkit.fluxcd.io/name': 'app', 'kustomize.toolkit.fluxcd.io/namespace': namespace };
    const extraNs = `${namespace}-p`;
    cleanup.push(() => deleteNamespace(kc, extraNs));
    const objects = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: extraNs, labels: owner } },
      configMap(namespace, 'stale', { a: '1' }, { labels: owner }),
      configMap(
        namespace,
        'kept',
        { a: '1' },
        { labels: owner, annotations: { 'kustomize.toolkit.fluxcd.io/prune': 'disabled' } },
      ),
      configMap(
        namespace,
        'foreign',
        { a: '1' },
        { labels: { ...owner, 'kustomize.toolkit.fluxcd.io/name': 'other' } },
      ),
      configMap(namespace, 'unlabelled', { a: '1' }),
    ];
    await applyAll(kc, objects, opts);
    const gone: InventoryEntry = entryOf({ ...refOf(configMap(namespace, 'never-existed', {})) });
    const stale = [...objects.map((o) => entryOf(refOf(o))), gone];

    const cs = await prune(kc, stale, { ownerLabels: owner });
    expect(cs.map((e) => `${e.subject} ${e.action}`)).to.deep.equal([
      `ConfigMap/${namespace}/stale deleted`,
      `ConfigMap/${namespace}/kept skipped`,
      `ConfigMap/${namespace}/foreign skipped`,
      `ConfigMap/${namespace}/unlabelled skipped`,
      `Namespace/${extraNs} deleted`,
    ]);
    expect(await read(objects[1]!)).to.equal(undefined);
    for (const o of objects.slice(2)) expect(await read(o), o.metadata!.name).to.not.equal(undefined);
    const ns = await kc
      .makeApiClient(CoreV1Api)
      .readNamespace({ name: extraNs })
      .catch(() => undefined);
    expect(ns === undefined || ns.metadata?.deletionTimestamp !== undefined).to.equal(true);

    // Already gone or going: nothing more to report.
    expect(await prune(kc, stale.slice(0, 2), { ownerLabels: owner })).to.deep.equal([]);
  });

  it('waits for a Deployment to become Available and names what is not healthy', async () => {
    const nowhere = { 'tide.test/nowhere': 'true' };
    const healthy = await applyAll(kc, [deployment(namespace, 'web')], opts);
    await waitForHealth(
      kc,
      healthy.map((e) => ({ id: e.id, v: e.version })),
      60_000,
      500,
    );

    // A re-apply returns the live objects; health read from them needs no request at all (this
    // KubeConfig points at a closed port).
    const again = await applyAll(kc, [deployment(namespace, 'web')], opts);
    expect(again.map((e) => e.action)).to.deep.equal(['unchanged']);
    const observed = new Map(again.map((e) => [e.id, e.object!]));
    const unreachable = new KubeConfig();
    unreachable.loadFromClusterAndUser(
      { name: 'closed', server: 'https://127.0.0.1:9', skipTLSVerify: true },
      { name: 'nobody' },
    );
    await waitForHealth(
      unreachable,
      again.map((e) => ({ id: e.id, v: e.version })),
      2_000,
      100,
      { observed },
    );

    const stuck = await applyAll(kc, [deployment(namespace, 'stuck', { nodeSelector: nowhere })], opts);
    const err = await waitForHealth(
      kc,
      stuck.map((e) => ({ id: e.id, v: e.version })),
      3_000,
      500,
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(HealthError);
    expect((err as Error).message).to.match(new RegExp(`Deployment/${namespace}/stuck: 0/1 replicas available`));

    const failing = await applyAll(
      kc,
      [
        job(namespace, 'doomed', 'example.invalid/j:1', { activeDeadlineSeconds: 1, nodeSelector: nowhere }),
        deployment(namespace, 'late', { nodeSelector: nowhere, progressDeadlineSeconds: 1 }),
      ],
      opts,
    );
    for (const [kind, reason] of [
      ['Job', /job failed: DeadlineExceeded/],
      ['Deployment', /progress deadline exceeded: ProgressDeadlineExceeded/],
    ] as const) {
      const entries = failing.filter((e) => e.subject.startsWith(`${kind}/`)).map((e) => ({ id: e.id, v: e.version }));
      const failed = (await waitForHealth(kc, entries, 60_000, 500, { failFast: true }).then(
        () => undefined,
        (e: unknown) => e,
      )) as HealthError;
      expect(failed).to.be.instanceOf(HealthError);
      expect(failed.report.failed).to.have.length(1);
      expect(failed.report.failed[0]).to.match(reason);
      expect(failed.message).to.contain(`${kind}/${namespace}/`);
    }
  });

  it('leaves fields under drift ignore rules to whoever changes them, and reconciles the rest', async () => {
    const ignore = compileIgnoreRules([{ paths: ['/spec/replicas'], target: { kind: 'Deployment', name: 'scaled' } }]);
    await applyAll(kc, [deployment(namespace, 'scaled')], { ...opts, ignore });
    const apps = kc.makeApiClient(AppsV1Api);
    const replicas = async () => (await apps.readNamespacedDeployment({ name: 'scaled', namespace })).spec?.replicas;
    expect(await replicas(), 'created as declared').to.equal(1);
    // The deployment controller annotates a new Deployment with its revision; a re-apply racing
    // that write would see it as a change of its own, so wait for it first.
    await eventually(async () => {
      const live = await apps.readNamespacedDeployment({ name: 'scaled', namespace });
      expect(live.metadata?.annotations).to.have.property('deployment.kubernetes.io/revision');
    });
    // An autoscaler's write, through the scale subresource.
    await apps.patchNamespacedDeploymentScale(
      { name: 'scaled', namespace, body: { spec: { replicas: 4 } }, fieldManager: 'hpa-sim' },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const again = await applyAll(kc, [deployment(namespace, 'scaled')], { ...opts, ignore });
    expect(again.map((e) => e.action)).to.deep.equal(['unchanged']);
    expect(await replicas()).to.equal(4);
    const newImage = await applyAll(kc, [deployment(namespace, 'scaled', { image: 'example.invalid/app:2' })], {
      ...opts,
      ignore,
    });
    expect(newImage.map((e) => e.action)).to.deep.equal(['configured']);
    const live = await apps.readNamespacedDeployment({ name: 'scaled', namespace });
    expect(live.spec?.template.spec?.containers[0]?.image).to.equal('example.invalid/app:2');
    expect(live.spec?.replicas, 'the ignored field kept its live value').to.equal(4);
    // Without the rule, the declared value wins again.
    expect(
      (await applyAll(kc, [deployment(namespace, 'scaled', { image: 'example.invalid/app:2' })], opts)).map(
        (e) => e.action,
      ),
    ).to.deep.equal(['configured']);
    expect(await replicas()).to.equal(1);
  });

  it('reports a write that fails part way with what was written before it', async () => {
    // The namespace already holds kube-root-ca.crt: a quota of two ConfigMaps passes the dry-run
    // of each object alone, and rejects the second create.
    const quota = {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'q', namespace },
      spec: { hard: { 'count/configmaps': '2' } },
    };
    // kube-controller-manager publishes kube-root-ca.crt into a new namespace, and counts it for
    // the quota, on its own time: wait for both rather than assume them.
    const rootCA = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kube-root-ca.crt', namespace } };
    await eventually(async () => expect(await read(rootCA)).to.not.equal(undefined), { timeoutMs: 60_000 });
    await applyAll(kc, [quota], opts);
    await eventually(
      async () => {
        const used = ((await read(quota)) as { status?: { used?: Record<string, string> } }).status?.used;
        expect(used?.['count/configmaps']).to.equal('1');
      },
      { timeoutMs: 60_000 },
    );
    const err = await applyAll(kc, [configMap(namespace, 'a', {}), configMap(namespace, 'b', {})], opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ApplyError);
    // The two are written concurrently: either may be the one the quota refuses.
    const refused = /^ConfigMap\/[^/]+\/(a|b) apply failed: Forbidden: .*exceeded quota/.exec(
      (err as ApplyError).message,
    )?.[1];
    expect(refused, (err as ApplyError).message).to.be.oneOf(['a', 'b']);
    const written = refused === 'a' ? 'b' : 'a';
    expect((err as ApplyError).changeSet.map((e) => `${e.subject} ${e.action}`)).to.deep.equal([
      `ConfigMap/${namespace}/${written} created`,
    ]);
    expect(await read(configMap(namespace, written, {}))).to.not.equal(undefined);
    expect(await read(configMap(namespace, refused!, {}))).to.equal(undefined);
  });
});
