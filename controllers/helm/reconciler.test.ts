import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { HelmReleaseStatus } from '../api/helm/helmrelease.ts';
import { findCondition } from '../runtime/conditions.ts';
import type { Informer } from '../runtime/informer.ts';
import { queueDecision } from '../runtime/outcome.ts';
import { testContext } from '../runtime/test-context.ts';
import { HelmHelperError, type ReleaseInfo } from './client.ts';
import {
  type ChartSource,
  type HelmRelease,
  type HelmReleaseDeps,
  HelmReleaseReconciler,
  type ReleaseClient,
} from './reconciler.ts';
import { valuesDigest } from './values.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');

/** Helm storage in memory: what the helper would read and write, with failures on demand. */
class FakeHelm implements ReleaseClient {
  releases: ReleaseInfo[] = [];
  calls: string[] = [];
  failNext: HelmHelperError | undefined;

  record(status: ReleaseInfo['status'], extra: Partial<ReleaseInfo> = {}): ReleaseInfo {
    const version = (this.releases[0]?.version ?? 0) + 1;
    const info: ReleaseInfo = {
      name: 'app',
      namespace: 'ns',
      version,
      status,
      chartName: 'app',
      chartVersion: '1.0.0',
      appVersion: '',
      configDigest: 'sha256:unset',
      digest: `sha256:${version}${status}`,
      description: '',
      hasTests: false,
      lastDeployed: new Date(NOW).toISOString(),
      ...extra,
    };
    this.releases.unshift(info);
    return info;
  }

  async history() {
    return { releases: this.releases };
  }
  private deploy(op: string, p: { values: Record<string, unknown> }, failure: string): ReleaseInfo {
    this.calls.push(op);
    const err = this.failNext;
    this.failNext = undefined;
    if (err?.code === 'RenderFailed') throw err;
    const digest = valuesDigest(p.values);
    if (this.releases[0]?.status === 'deployed') this.releases[0] = { ...this.releases[0], status: 'superseded' };
    if (err) {
      this.record('failed', { configDigest: digest });
      throw new HelmHelperError(failure, err.message);
    }
    return this.record('deployed', { configDigest: digest });
  }
  async install(p: { values: Record<string, unknown> }) {
    return this.deploy('install', p, 'InstallFailed');
  }
  async upgrade(p: { values: Record<string, unknown> }) {
    return this.deploy('upgrade', p, 'UpgradeFailed');
  }
  async test(): Promise<ReleaseInfo> {
    throw new Error('not used');
  }
  async rollback(): Promise<ReleaseInfo> {
    throw new Error('not used');
  }
  async uninstall() {
    this.calls.push('uninstall');
    this.releases = [];
    return {};
  }
  async unlock() {
    this.calls.push('unlock');
    this.releases[0] = { ...this.releases[0]!, status: 'failed', digest: 'sha256:unlocked' };
    return this.releases[0];
  }
  async manifest() {
    return { manifest: '', namespace: 'ns' };
  }
}

function informer<T>(objects: Record<string, T>): Informer<T & ChartSource> {
  return { get: (key: string) => objects[key] } as unknown as Informer<T & ChartSource>;
}

const chart: ChartSource = {
  metadata: { name: 'app-chart', namespace: 'ns', generation: 1 },
  status: { observedGeneration: 1, artifact: { url: 'http://x/app-1.0.0.tgz', revision: '1.0.0', digest: 'sha256:c' } },
};

function helmRelease(spec: Partial<HelmRelease['spec']> = {}, status: HelmReleaseStatus = {}): HelmRelease {
  return {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name: 'app', namespace: 'ns', generation: 1, finalizers: ['finalizers.fluxcd.io'] },
    spec: { interval: '10m', chartRef: { kind: 'HelmChart', name: 'app-chart' }, values: { a: 1 }, ...spec },
    status,
  };
}

function reconciler(helm: FakeHelm): HelmReleaseReconciler {
  const deps: HelmReleaseDeps = {
    kubeConfig: {} as KubeConfig,
    releases: informer({}) as unknown as HelmReleaseDeps['releases'],
    sources: { HelmChart: informer({ 'ns/app-chart': chart }), OCIRepository: informer({}) },
    helm,
    charts: {
      meta: async () => ({ name: 'app', version: '1.0.0' }),
      acquire: async () => ({ name: 'app', version: '1.0.0', path: '/charts/app.tgz', release: () => {} }),
    },
    targetFor: async () => ({ helm: { kubeconfig: '/k', storageNamespace: 'ns' }, kc: {} as KubeConfig }),
    readValues: () => async () => undefined,
    requeueDependencyMs: 5000,
  };
  return new HelmReleaseReconciler(deps);
}

describe('HelmReleaseReconciler', () => {
  it('installs an absent release, says so before, and is Ready with Flux’s message', async () => {
    const helm = new FakeHelm();
    const obj = helmRelease();
    const ctx = testContext(obj);
    const outcome = await reconciler(helm).reconcile(obj, ctx);
    expect(outcome).to.deep.include({
      type: 'success',
      reason: 'InstallSucceeded',
      message: 'Helm install succeeded for release ns/app.v1 with chart app@1.0.0',
      requeueAfterMs: 600_000,
    });
    expect(ctx.progressed).to.deep.equal(["Running 'install' action with timeout of 5m0s"]);
    expect(helm.calls).to.deep.equal(['install']);
    expect(ctx.status.history?.[0]).to.include({ version: 1, status: 'deployed', chartVersion: '1.0.0' });
    expect(ctx.status).to.include({ lastAttemptedRevision: '1.0.0', lastAttemptedReleaseAction: 'install' });

    // In sync: nothing runs, nothing is written before the end.
    const again = helmRelease({}, ctx.status);
    const ctx2 = testContext(again);
    expect((await reconciler(helm).reconcile(again, ctx2)).reason).to.equal('InstallSucceeded');
    expect(ctx2.progressed).to.deep.equal([]);
    expect(helm.calls).to.deep.equal(['install']);
  });

  it('stalls a failed install out of retries, to be looked at again after the interval', async () => {
    const helm = new FakeHelm();
    helm.failNext = new HelmHelperError('InstallFailed', 'ConfigMap "Bad_Name" is invalid');
    const obj = helmRelease();
    const ctx = testContext(obj);
    const outcome = await reconciler(helm).reconcile(obj, ctx);
    expect(outcome).to.deep.include({ type: 'stalled', reason: 'RetriesExceeded' });
    expect(outcome.message).to.equal(
      'Failed to install after 1 attempt(s): Helm install failed for release ns/app with chart app@1.0.0: ' +
        'ConfigMap "Bad_Name" is invalid',
    );
    expect(queueDecision(outcome)).to.deep.equal({ action: 'requeue-after', afterMs: 600_000 });
    expect(ctx.status).to.include({ failures: 1, installFailures: 1 });
    expect(findCondition(ctx.status.conditions, 'Released')).to.include({ status: 'False', reason: 'InstallFailed' });
  });

  it('does not count a chart that does not render against the retries; storage stays as it was', async () => {
    const helm = new FakeHelm();
    helm.failNext = new HelmHelperError('RenderFailed', 'template: app/templates/cm.yaml: message is required');
    const obj = helmRelease();
    const ctx = testContext(obj);
    const outcome = await reconciler(helm).reconcile(obj, ctx);
    expect(outcome).to.deep.include({ type: 'error', reason: 'InstallFailed' });
    expect(outcome.message).to.contain('message is required');
    expect(ctx.status).to.include({ failures: 1, installFailures: 0 });
    expect(helm.releases).to.deep.equal([]);
  });

  it('waits for a young pending release and unlocks a stale one, then upgrades it', async () => {
    const helm = new FakeHelm();
    helm.record('pending-install', { lastDeployed: new Date(NOW - 60_000).toISOString() });
    const obj = helmRelease();
    const young = await reconciler(helm).reconcile(obj, testContext(obj));
    expect(young).to.deep.include({ type: 'waiting', reason: 'PendingRelease', requeueAfterMs: 241_000 });
    expect(helm.calls).to.deep.equal([]);

    const stale = helmRelease({ timeout: '30s' });
    const ctx = testContext(stale);
    const outcome = await reconciler(helm).reconcile(stale, ctx);
    expect(helm.calls).to.deep.equal(['unlock', 'upgrade']);
    expect(outcome).to.deep.include({ type: 'success', reason: 'UpgradeSucceeded' });
    expect(ctx.events).to.include(
      'PendingRelease: Unlocked Helm release ns/app.v1 with chart app@1.0.0 in pending-install state',
    );
  });

  it('refuses a spec with both chart and chartRef, and verify, naming them', async () => {
    const both = helmRelease({
      chart: { spec: { chart: 'app', sourceRef: { kind: 'HelmRepository', name: 'r' } } },
    });
    const o1 = await reconciler(new FakeHelm()).reconcile(both, testContext(both));
    expect(o1).to.deep.include({ type: 'stalled', reason: 'InvalidSpec' });
    const verify = helmRelease({
      chartRef: undefined,
      chart: {
        spec: { chart: 'app', sourceRef: { kind: 'HelmRepository', name: 'r' }, verify: { provider: 'cosign' } },
      },
    });
    const o2 = await reconciler(new FakeHelm()).reconcile(verify, testContext(verify));
    expect(o2).to.deep.include({ type: 'stalled', reason: 'UnsupportedFeature' });
    expect(o2.message).to.contain('spec.chart.spec.verify');
  });
});
