import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { KustomizationStatus } from '../api/kustomize/kustomization.ts';
import { findCondition } from '../runtime/conditions.ts';
import type { Outcome } from '../runtime/outcome.ts';
import type { Informer } from '../runtime/informer.ts';
import type { Kustomization, Source } from './dependencies.ts';
import {
  KustomizationReconciler,
  type InventoryEntry,
  type KustomizationDeps,
  type KustomizeSteps,
  type StepsTarget,
} from './reconciler.ts';
import { testContext } from '../runtime/test-context.ts';

const REV = 'main@sha1:0123456789012345678901234567890123456789';

function kustomization(spec: Partial<Kustomization['spec']> = {}, status: KustomizationStatus = {}): Kustomization {
  return {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    // The finalizer is already there, so no API call is needed.
    metadata: { name: 'app', namespace: 'ns', generation: 1, finalizers: ['finalizers.fluxcd.io'] },
    spec: {
      interval: '5m',
      prune: true,
      sourceRef: { kind: 'GitRepository', name: 'repo' },
      path: './deploy',
      ...spec,
    },
    status,
  };
}

const cm = (name: string): KubernetesObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'ns' },
});

/** Records which steps ran; a step named in `failing` throws. */
function fakeSteps(objects: KubernetesObject[], failing?: keyof KustomizeSteps) {
  const calls: string[] = [];
  const pruned: InventoryEntry[][] = [];
  const leases = { taken: 0, released: 0 };
  const run = <T>(name: keyof KustomizeSteps, value: T): T => {
    calls.push(name);
    if (name === failing) throw new Error(`${name} exploded`);
    return value;
  };
  const steps: KustomizeSteps = {
    fetch: async () => {
      const lease = run('fetch', { dir: '/unpacked', release: () => leases.released++ });
      leases.taken++;
      return lease;
    },
    build: async () => run('build', objects),
    apply: async (objs) =>
      run('apply', {
        changes: objs.map((o) => ({ id: `ConfigMap/ns/${o.metadata!.name}`, action: 'created' as const })),
        inventory: objs.map((o) => ({ id: `ns_${o.metadata!.name}__ConfigMap`, v: 'v1' })),
      }),
    prune: async (stale) => {
      pruned.push(stale);
      return run(
        'prune',
        stale.map((s) => s.id),
      );
    },
    waitForHealth: async () => run('waitForHealth', undefined),
    waitForTermination: async () => run('waitForTermination', undefined),
  };
  return { steps, calls, pruned, leases };
}

const OCI_REV = `latest@sha256:${'ab'.repeat(32)}`;
const ociSource: Source = {
  metadata: { name: 'oci', namespace: 'ns' },
  status: {
    artifact: { revision: OCI_REV, url: 'http://x/o.tar.gz', path: 'o', lastUpdateTime: 't', digest: 'sha256:01' },
  },
};

function informer<T>(objects: Record<string, T>): Informer<T & KubernetesObject> {
  return { get: (key: string) => objects[key] } as unknown as Informer<T & KubernetesObject>;
}

function reconciler(
  steps: KustomizeSteps,
  others: Record<string, Kustomization> = {},
  source?: Source,
  stepsFor: KustomizationDeps['stepsFor'] = async () => steps,
  lockdown: Pick<KustomizationDeps, 'noCrossNamespaceRefs' | 'defaultServiceAccount'> = {},
) {
  const src: Source = source ?? {
    metadata: { name: 'repo', namespace: 'ns' },
    status: {
      artifact: { revision: REV, url: 'http://x/a.tar.gz', path: 'a', lastUpdateTime: 't', digest: 'sha256:00' },
    },
  };
  return new KustomizationReconciler({
    kubeConfig: {} as KubeConfig,
    kustomizations: informer(others),
    sources: { GitRepository: informer({ 'ns/repo': src }), OCIRepository: informer({ 'ns/oci': ociSource }) },
    stepsFor,
    requeueDependencyMs: 30_000,
    ...lockdown,
  });
}

describe('Kustomization reconciler', () => {
  it('applies, records the inventory and the revision, and prunes what left the source', async () => {
    const obj = kustomization(
      {},
      {
        inventory: {
          entries: [
            { id: 'ns_a__ConfigMap', v: 'v1' },
            { id: 'ns_gone__ConfigMap', v: 'v1' },
          ],
        },
      },
    );
    const { steps, calls, pruned } = fakeSteps([cm('a'), cm('b')]);
    const c = testContext(obj);
    const outcome = await reconciler(steps).reconcile(obj, c);
    expect(outcome).to.deep.include({
      type: 'success',
      reason: 'ReconciliationSucceeded',
      message: `Applied revision: ${REV}`,
      requeueAfterMs: 300_000,
    });
    expect(calls).to.deep.equal(['fetch', 'build', 'apply', 'prune']);
    expect(pruned).to.deep.equal([[{ id: 'ns_gone__ConfigMap', v: 'v1' }]]);
    expect(c.status.inventory?.entries.map((e) => e.id)).to.deep.equal(['ns_a__ConfigMap', 'ns_b__ConfigMap']);
    expect(c.status).to.include({ lastAppliedRevision: REV, lastAttemptedRevision: REV });
    expect(c.events.join('\n')).to.include('ns_gone__ConfigMap deleted');
    expect(c.status.history).to.have.length(1);
    expect(c.status.history![0]).to.deep.include({
      lastReconciledStatus: 'ReconciliationSucceeded',
      totalReconciliations: 1,
      metadata: { revision: REV },
    });
    expect(c.status.history![0]!.digest).to.match(/^sha256:[0-9a-f]{64}$/);
  });

  it('labels every object with its owner', async () => {
    const objects = [cm('a')];
    const { steps } = fakeSteps(objects);
    await reconciler(steps).reconcile(kustomization(), testContext(kustomization()));
    expect(objects[0]!.metadata?.labels).to.deep.equal({
      'kustomize.toolkit.fluxcd.io/name': 'app',
      'kustomize.toolkit.fluxcd.io/namespace': 'ns',
    });
  });

  for (const [failing, reason] of [
    ['fetch', 'ArtifactFailed'],
    ['build', 'BuildFailed'],
    ['apply', 'ReconciliationFailed'],
  ] as const) {
    it(`a failing ${failing} ends in ${reason} with nothing applied after it and nothing pruned`, async () => {
      const obj = kustomization(
        {},
        { inventory: { entries: [{ id: 'ns_old__ConfigMap', v: 'v1' }] }, lastAppliedRevision: 'old' },
      );
      const { steps, calls, leases } = fakeSteps([cm('a')], failing);
      const c = testContext(obj);
      const err = await reconciler(steps).reconcile(obj, c);
      expect(err).to.include({ type: 'error', reason, message: `${failing} exploded`, step: failing });
      expect(leases.released, 'the unpacked artifact is released').to.equal(leases.taken);
      expect(calls.at(-1)).to.equal(failing);
      expect(calls).to.not.include('prune');
      expect(
        c.status.inventory?.entries.map((e) => e.id),
        'inventory untouched',
      ).to.deep.equal(['ns_old__ConfigMap']);
      expect(c.status.lastAppliedRevision).to.equal('old');
      expect(c.status.lastAttemptedRevision).to.equal(REV);
      expect(err?.requeueAfterMs, 'retried no later than spec.interval').to.equal(300_000);
      // History records what built manifests gave; without manifests there is nothing to record.
      expect(c.status.history?.map((h) => h.lastReconciledStatus)).to.deep.equal(
        failing === 'apply' ? ['ReconciliationFailed'] : undefined,
      );
    });
  }

  it('acts on the cluster and as the account the spec names; a bad kubeconfig fails before applying', async () => {
    const obj = kustomization(
      { serviceAccountName: 'deployer', kubeConfig: { secretRef: { name: 'remote' } } },
      { inventory: { entries: [{ id: 'ns_old__ConfigMap', v: 'v1' }] } },
    );
    const { steps, calls } = fakeSteps([cm('a')]);
    const targets: StepsTarget[] = [];
    await reconciler(steps, {}, undefined, async (t) => {
      targets.push(t);
      return steps;
    }).reconcile(obj, testContext(obj));
    expect(targets).to.deep.equal([
      { namespace: 'ns', serviceAccountName: 'deployer', kubeConfig: { secretRef: { name: 'remote' } } },
    ]);
    expect(calls).to.include('apply');

    const broken = fakeSteps([cm('a')]);
    const c = testContext(obj);
    const err = await reconciler(broken.steps, {}, undefined, async () => {
      throw new Error("kubeconfig Secret 'ns/remote' not found");
    }).reconcile(obj, c);
    expect(err).to.include({
      type: 'error',
      reason: 'ReconciliationFailed',
      message: "kubeconfig Secret 'ns/remote' not found",
    });
    expect(broken.calls).to.deep.equal([]);
    expect(c.status.inventory?.entries.map((e) => e.id)).to.deep.equal(['ns_old__ConfigMap']);
  });

  it('with --no-cross-namespace-refs, a source or dependency in another namespace stalls: AccessDenied', async () => {
    const lockdown = { noCrossNamespaceRefs: true };
    for (const spec of [
      { sourceRef: { kind: 'GitRepository' as const, name: 'repo', namespace: 'other' } },
      { dependsOn: [{ name: 'infra', namespace: 'other' }] },
    ]) {
      const obj = kustomization(spec);
      const { steps, calls } = fakeSteps([cm('a')]);
      const err = await reconciler(steps, {}, undefined, undefined, lockdown).reconcile(obj, testContext(obj));
      expect(err).to.include({ type: 'stalled', reason: 'AccessDenied' });
      expect(err?.message).to.match(/other.*cross-namespace references are not allowed/);
      expect(calls).to.deep.equal([]);
    }
    // The same namespace, spelled out, is fine.
    const same = kustomization({ sourceRef: { kind: 'GitRepository', name: 'repo', namespace: 'ns' } });
    const { steps } = fakeSteps([cm('a')]);
    expect(
      (await reconciler(steps, {}, undefined, undefined, lockdown).reconcile(same, testContext(same))).type,
    ).to.equal('success');
  });

  it('impersonates --default-service-account when the spec names no account', async () => {
    const targets: StepsTarget[] = [];
    const { steps } = fakeSteps([cm('a')]);
    const record: KustomizationDeps['stepsFor'] = async (t) => {
      targets.push(t);
      return steps;
    };
    for (const obj of [kustomization(), kustomization({ serviceAccountName: 'own' })]) {
      await reconciler(steps, {}, undefined, record, { defaultServiceAccount: 'restricted' }).reconcile(
        obj,
        testContext(obj),
      );
    }
    expect(targets.map((t) => t.serviceAccountName)).to.deep.equal(['restricted', 'own']);
  });

  it('answers a kubeConfig without secretRef (cloud provider authentication) with UnsupportedFeature', async () => {
    const obj = kustomization({ kubeConfig: { configMapRef: { name: 'aws' } } });
    const err = await reconciler(fakeSteps([]).steps).reconcile(obj, testContext(obj));
    expect(err).to.include({ type: 'stalled', reason: 'UnsupportedFeature' });
  });

  it('retries a failure no later than spec.retryInterval', async () => {
    const obj = kustomization({ retryInterval: '45s' });
    const { steps } = fakeSteps([cm('a')], 'build');
    const err = await reconciler(steps).reconcile(obj, testContext(obj));
    expect(err).to.include({ type: 'error', reason: 'BuildFailed', requeueAfterMs: 45_000 });
  });

  it('does not prune with prune: false, but still records the new inventory', async () => {
    const obj = kustomization({ prune: false }, { inventory: { entries: [{ id: 'ns_gone__ConfigMap', v: 'v1' }] } });
    const { steps, calls } = fakeSteps([cm('a')]);
    const c = testContext(obj);
    await reconciler(steps).reconcile(obj, c);
    expect(calls).to.not.include('prune');
    expect(c.status.inventory?.entries.map((e) => e.id)).to.deep.equal(['ns_a__ConfigMap']);
  });

  it('waits for dependencies that are not ready, for the requeue-dependency interval', async () => {
    const obj = kustomization({ dependsOn: [{ name: 'infra' }] });
    const { steps, calls } = fakeSteps([cm('a')]);
    const infra = kustomization(
      {},
      {
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'BuildFailed',
            message: 'x',
            lastTransitionTime: 't',
            observedGeneration: 1,
          },
        ],
      },
    );
    const err = await reconciler(steps, { 'ns/infra': infra }).reconcile(obj, testContext(obj));
    expect(err).to.include({ type: 'waiting', reason: 'DependencyNotReady', requeueAfterMs: 30_000 });
    expect(err?.message).to.equal("dependency 'ns/infra' is not ready");
    expect(calls).to.deep.equal([]);
    const missing = await reconciler(steps).reconcile(obj, testContext(obj));
    expect(missing?.message).to.equal("dependency 'ns/infra' not found");
  });

  it('proceeds once the dependency is ready and has applied its source revision', async () => {
    const obj = kustomization({ dependsOn: [{ name: 'infra' }] });
    const readyInfra = kustomization(
      {},
      {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'ReconciliationSucceeded',
            message: 'ok',
            lastTransitionTime: 't',
            observedGeneration: 1,
          },
        ],
        lastAppliedRevision: REV,
      },
    );
    const { steps } = fakeSteps([cm('a')]);
    expect((await reconciler(steps, { 'ns/infra': readyInfra }).reconcile(obj, testContext(obj))).type).to.equal(
      'success',
    );
  });

  it('replaces the built-in dependency check with readyExpr, given dep and self', async () => {
    const expr = "dep.metadata.labels['version'] == self.metadata.labels['version']";
    const obj = kustomization({ dependsOn: [{ name: 'infra', readyExpr: expr }] });
    obj.metadata!.labels = { version: '2' };
    // Not Ready at all: the expression alone decides.
    const infra = (version: string) => ({
      ...kustomization({}, {}),
      metadata: { name: 'infra', namespace: 'ns', generation: 1, labels: { version } },
    });
    const { steps } = fakeSteps([cm('a')]);
    const err = await reconciler(steps, { 'ns/infra': infra('1') }).reconcile(obj, testContext(obj));
    expect(err).to.include({
      type: 'waiting',
      reason: 'DependencyNotReady',
      message: "dependency 'ns/infra' is not ready: readyExpr is false",
    });
    expect((await reconciler(steps, { 'ns/infra': infra('2') }).reconcile(obj, testContext(obj))).type).to.equal(
      'success',
    );
  });

  it('passes drift ignore rules to apply, and stalls with InvalidSpec on one that does not parse', async () => {
    const obj = kustomization({ driftIgnoreRules: [{ paths: ['/spec/replicas'], target: { kind: 'Deployment' } }] });
    const { steps } = fakeSteps([cm('a')]);
    let ignored: string[][] | undefined;
    const apply = steps.apply;
    steps.apply = async (objects, opts) => {
      ignored = opts.ignore?.({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } });
      return apply(objects, opts);
    };
    await reconciler(steps).reconcile(obj, testContext(obj));
    expect(ignored).to.deep.equal([['spec', 'replicas']]);
    const bad = kustomization({ driftIgnoreRules: [{ paths: ['spec/replicas'] }] });
    const err = await reconciler(fakeSteps([]).steps).reconcile(bad, testContext(bad));
    expect(err).to.include({ type: 'stalled', reason: 'InvalidSpec' });
    expect(err?.message).to.match(/^spec\.driftIgnoreRules\[0\]\.paths\[0\]: 'spec\/replicas' is not a JSON pointer/);
  });

  it('stalls with InvalidCELExpression on an expression that does not parse', async () => {
    for (const spec of [
      { dependsOn: [{ name: 'infra', readyExpr: 'dep.(' }] },
      { healthCheckExprs: [{ apiVersion: 'a/v1', kind: 'A', current: '&&' }] },
    ]) {
      const obj = kustomization(spec);
      const err = await reconciler(fakeSteps([]).steps).reconcile(obj, testContext(obj));
      expect(err).to.include({ type: 'stalled', reason: 'InvalidCELExpression' });
      expect(err?.message).to.match(
        /^spec\.(dependsOn\[0\]\.readyExpr|healthCheckExprs\[0\]\.current): invalid CEL expression/,
      );
    }
  });

  it('fails with HealthCheckFailed and Healthy=False when wait times out', async () => {
    const obj = kustomization({ wait: true, timeout: '1m' }, { lastAppliedRevision: 'old' });
    const { steps } = fakeSteps([cm('a')], 'waitForHealth');
    const c = testContext(obj);
    const err = await reconciler(steps).reconcile(obj, c);
    expect(err).to.include({ reason: 'HealthCheckFailed' });
    expect(c.status.lastAppliedRevision, 'an unhealthy revision is not recorded as applied').to.equal('old');
    expect(findCondition(c.status.conditions, 'Healthy')).to.include({ status: 'False', reason: 'HealthCheckFailed' });
  });

  it('stalls on source kinds it does not support, and names them', async () => {
    const obj = kustomization({ sourceRef: { kind: 'Bucket', name: 'x' } });
    const err = await reconciler(fakeSteps([]).steps).reconcile(obj, testContext(obj));
    expect(err).to.include({ type: 'stalled', reason: 'UnsupportedFeature' });
    expect(err?.message).to.include('Bucket');
  });

  it('reads an OCIRepository source as it reads a GitRepository: its artifact and revision', async () => {
    const obj = kustomization({ sourceRef: { kind: 'OCIRepository', name: 'oci' } });
    const fetched: (string | undefined)[] = [];
    const { steps, calls } = fakeSteps([cm('a')]);
    const withFetch = {
      ...steps,
      fetch: (url: string, digest: string | undefined, t: number) => {
        fetched.push(url, digest);
        return steps.fetch(url, digest, t);
      },
    };
    const c = testContext(obj);
    const outcome = await reconciler(withFetch).reconcile(obj, c);
    expect(outcome).to.include({ type: 'success', message: `Applied revision: ${OCI_REV}` });
    expect(fetched).to.deep.equal(['http://x/o.tar.gz', 'sha256:01']);
    expect(calls).to.include('apply');
    expect(c.status).to.include({ lastAppliedRevision: OCI_REV, lastAttemptedRevision: OCI_REV });

    const missing = kustomization({ sourceRef: { kind: 'OCIRepository', name: 'nope' } });
    const waiting = await reconciler(steps).reconcile(missing, testContext(missing));
    expect(waiting).to.include({ type: 'waiting', message: "source 'OCIRepository/ns/nope' not found" });
  });

  it('waits for a source without an artifact, and for a missing one, like for a dependency', async () => {
    const obj = kustomization();
    const err = await reconciler(fakeSteps([]).steps, {}, { metadata: { name: 'repo' }, status: {} }).reconcile(
      obj,
      testContext(obj),
    );
    expect(err).to.include({
      type: 'waiting',
      reason: 'ArtifactFailed',
      message: "source 'GitRepository/ns/repo' is not ready: it has no artifact yet",
      requeueAfterMs: 30_000,
    });
    const other = kustomization({ sourceRef: { kind: 'GitRepository', name: 'elsewhere' } });
    const missing = await reconciler(fakeSteps([]).steps).reconcile(other, testContext(other));
    expect(missing).to.include({
      type: 'waiting',
      reason: 'ArtifactFailed',
      message: "source 'GitRepository/ns/elsewhere' not found",
    });
  });

  it('shows progress once per new revision or generation; not on a resync or a same-revision retry', async () => {
    const fresh = kustomization();
    const c = testContext(fresh);
    await reconciler(fakeSteps([cm('a')]).steps).reconcile(fresh, c);
    expect(c.progressed).to.deep.equal([`Fetching manifests for revision ${REV} with a timeout of 5m`]);

    for (const status of [
      { observedGeneration: 1, lastAttemptedRevision: REV, lastAppliedRevision: REV },
      { observedGeneration: 1, lastAttemptedRevision: REV, lastAppliedRevision: 'older' },
    ]) {
      const resync = kustomization({}, status);
      const quiet = testContext(resync);
      await reconciler(fakeSteps([cm('a')]).steps).reconcile(resync, quiet);
      expect(quiet.progressed).to.deep.equal([]);
    }
    const newGeneration = kustomization({}, { observedGeneration: 0, lastAttemptedRevision: REV });
    const again = testContext(newGeneration);
    await reconciler(fakeSteps([cm('a')]).steps).reconcile(newGeneration, again);
    expect(again.progressed).to.have.length(1);
  });

  it('says so when the health check really waits, and a newer request cancels the wait', async () => {
    const obj = kustomization({ wait: true });
    const { steps } = fakeSteps([cm('a')]);
    steps.waitForHealth = async (_entries, _timeout, opts) => {
      await opts.onWaiting?.('Deployment/ns/web: Available: 0/1 replicas');
      await new Promise((_resolve, reject) => {
        opts.signal?.addEventListener('abort', () => reject(opts.signal?.reason));
      });
    };
    const abort = new AbortController();
    const c = testContext(obj, abort);
    const pending = reconciler(steps).reconcile(obj, c);
    await new Promise((r) => setImmediate(r));
    expect(c.progressed.at(-1)).to.equal(
      `Health check in progress for revision ${REV}: waiting for Deployment/ns/web: Available: 0/1 replicas`,
    );
    abort.abort('GitRepository/ns/repo');
    const outcome = await pending;
    expect(outcome).to.include({
      type: 'superseded',
      reason: 'HealthCheckCanceled',
      message: 'New reconciliation triggered by GitRepository/ns/repo',
      step: 'health',
    });
    expect(c.events).to.include(
      'HealthCheckCanceled: Health checks canceled due to new reconciliation triggered by GitRepository/ns/repo',
    );
    expect(c.status.history?.[0]?.lastReconciledStatus).to.equal('HealthCheckCanceled');
  });

  it("runs the steps in their order and ends a step that throws anything with that step's reason", async () => {
    const r = reconciler(fakeSteps([cm('a')]).steps);
    expect(r.recipe.steps.map((s) => s.name)).to.deep.equal([
      'finalizer',
      'validate',
      'dependencies',
      'source',
      'target',
      'fetch',
      'build',
      'apply',
      'prune',
      'health',
    ]);
    const { steps } = fakeSteps([cm('a')]);
    steps.prune = async () => {
      throw 'not an Error at all';
    };
    const obj = kustomization({}, { inventory: { entries: [{ id: 'ns_gone__ConfigMap', v: 'v1' }] } });
    const outcome: Outcome = await reconciler(steps).reconcile(obj, testContext(obj));
    expect(outcome).to.include({ type: 'error', reason: 'PruneFailed', message: 'not an Error at all', step: 'prune' });
  });
});

describe('Kustomization reconciler: a new revision that builds to the same manifests', () => {
  const REV2 = 'main@sha1:1111111111111111111111111111111111111111';
  const secret = (value: string): KubernetesObject =>
    ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'ns' }, data: { k: value } }) as never;

  function setup(objects: KubernetesObject[], others: Record<string, Kustomization> = {}) {
    const source: Source = {
      metadata: { name: 'repo', namespace: 'ns' },
      status: {
        artifact: { revision: REV, url: 'http://x/a.tar.gz', path: 'a', lastUpdateTime: 't', digest: 'sha256:00' },
      },
    };
    const fake = fakeSteps(objects);
    const r = reconciler(fake.steps, others, source);
    let obj = kustomization({ dependsOn: others.dep ? [{ name: 'dep' }] : undefined });
    /** Reconciles the object as it is now (status from the last reconcile); `at` ms after the first. */
    const next = async (revision: string, at = 0, change: (o: Kustomization) => void = () => {}) => {
      source.status!.artifact!.revision = revision;
      change(obj);
      fake.calls.length = 0;
      const c = testContext(obj);
      c.now = () => new Date(Date.parse('2026-01-01T00:00:00Z') + at);
      const outcome = await r.reconcile(obj, c);
      obj = { ...obj, status: c.status };
      return { outcome, calls: [...fake.calls], c };
    };
    return { next, fake, objects };
  }

  it('records the revision with one status write: no apply, prune, health wait or progress', async () => {
    const { next } = setup([cm('a')]);
    expect((await next(REV)).calls).to.deep.equal(['fetch', 'build', 'apply']);
    const { outcome, calls, c } = await next(REV2, 60_000);
    expect(calls).to.deep.equal(['fetch', 'build']);
    expect(c.progressed).to.deep.equal([]);
    expect(c.events).to.deep.equal([]);
    expect(c.status).to.include({ lastAppliedRevision: REV2, lastAttemptedRevision: REV2 });
    expect(c.status.inventory?.entries.map((e) => e.id)).to.deep.equal(['ns_a__ConfigMap']);
    // Drift correction stays due an interval (5m) after the last full apply, not after this one.
    expect(outcome).to.deep.include({ type: 'success', message: `Applied revision: ${REV2}`, requeueAfterMs: 240_000 });
  });

  it('applies when the manifests, the generation, a Secret value or a dependency changed', async () => {
    const objects = [cm('a'), secret('c2VjcmV0')];
    const ready = { type: 'Ready', status: 'True' as const, reason: 'Succeeded', message: '', lastTransitionTime: '' };
    // Its source is not known here, so only its Ready condition is looked at.
    const dep = kustomization(
      { sourceRef: { kind: 'OCIRepository', name: 'elsewhere' } },
      { lastAppliedRevision: 'dep@sha1:1', conditions: [{ ...ready, observedGeneration: 1 }] },
    );
    const { next } = setup(objects, { 'ns/dep': dep, dep });
    await next(REV);
    objects.push(cm('b'));
    const changed = await next(REV2, 1000);
    expect(changed.calls).to.include('apply');
    expect(changed.c.progressed, 'progress shown once the build differs').to.have.length(1);
    expect((await next(REV, 2000)).calls, 'nothing changed since').to.deep.equal(['fetch', 'build']);
    (objects[1] as { data: unknown }).data = { k: 'b3RoZXI=' };
    expect((await next(REV2, 3000)).calls, 'a Secret value').to.include('apply');
    dep.status!.lastAppliedRevision = 'dep@sha1:2';
    expect((await next(REV, 4000)).calls, 'a dependency').to.include('apply');
    expect((await next(REV2, 5000)).calls, 'nothing changed').to.deep.equal(['fetch', 'build']);
    const generation = await next(REV, 6000, (o) => {
      o.metadata!.generation = 2;
    });
    expect(generation.calls, 'a new generation').to.include('apply');
  });

  it('applies on a reconcile request, after the interval, and after a failure', async () => {
    const { next, fake } = setup([cm('a')]);
    await next(REV);
    const requested = await next(REV2, 1000, (o) => {
      o.metadata!.annotations = { 'reconcile.fluxcd.io/requestedAt': 'now' };
    });
    expect(requested.calls, 'requested').to.include('apply');
    expect((await next(REV, 10 * 60_000)).calls, 'the interval passed').to.include('apply');
    fake.steps.waitForHealth = async () => {
      throw new Error('unhealthy');
    };
    const failed = await next(REV2, 10 * 60_000 + 1000, (o) => {
      o.spec!.wait = true;
    });
    expect(failed.outcome.type).to.equal('error');
    expect((await next(REV, 10 * 60_000 + 2000)).calls, 'after a failure').to.include('apply');
  });
});
