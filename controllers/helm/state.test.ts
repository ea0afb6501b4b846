import { expect } from 'chai';
import {
  determineState,
  nextAction,
  previousRelease,
  type Desired,
  type Observed,
  type ReleaseRecord,
} from './state.ts';

function release(version: number, status: string, extra: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    name: 'app',
    namespace: 'ns',
    version,
    status,
    chartName: 'podinfo',
    chartVersion: '6.0.0',
    configDigest: 'sha256:v',
    digest: `sha256:r${version}${status}`,
    ...extra,
  };
}

function desired(extra: Partial<Desired> = {}): Desired {
  return {
    chartName: 'podinfo',
    chartVersion: '6.0.0',
    configDigest: 'sha256:v',
    renderDigest: { post: 'p', common: 'c' },
    observedRenderDigest: { post: 'p', common: 'c' },
    testEnabled: false,
    testIgnoreFailures: false,
    installRemediation: {},
    upgradeRemediation: {},
    installStrategy: 'RemediateOnFailure',
    upgradeStrategy: 'RemediateOnFailure',
    driftMode: 'disabled',
    forceRequested: false,
    ...extra,
  };
}

function observed(history: ReleaseRecord[], extra: Partial<Observed> = {}): Observed {
  return { history, installFailures: 0, upgradeFailures: 0, ...extra };
}

const noDrift = async () => undefined;

describe('HelmRelease state machine', () => {
  it('installs what is absent, upgrades what is not ours, unlocks what is pending', async () => {
    expect((await determineState(undefined, desired(), observed([]), noDrift)).name).to.equal('Absent');
    const handmade = release(1, 'deployed');
    const unmanaged = await determineState(handmade, desired(), observed([]), noDrift);
    expect(unmanaged.name).to.equal('Unmanaged');
    expect(nextAction(unmanaged, desired(), observed([]), () => false).type).to.equal('upgrade');
    const locked = await determineState(
      release(2, 'pending-upgrade'),
      desired(),
      observed([release(1, 'deployed')]),
      noDrift,
    );
    expect(locked).to.deep.include({ name: 'Locked', reason: "release with status 'pending-upgrade'" });
    expect(nextAction(locked, desired(), observed([]), () => false).type).to.equal('unlock');
  });

  it('sees a release changed behind its back as unmanaged', async () => {
    const ours = release(2, 'deployed');
    const changed = { ...ours, digest: 'sha256:other' };
    expect((await determineState(changed, desired(), observed([ours]), noDrift)).name).to.equal('Unmanaged');
    const newer = release(3, 'deployed');
    expect((await determineState(newer, desired(), observed([ours]), noDrift)).name).to.equal('Unmanaged');
  });

  it('upgrades on a new chart version, new values or new post-renderers', async () => {
    const cur = release(1, 'deployed');
    const h = observed([cur]);
    expect((await determineState(cur, desired({ chartVersion: '6.1.0' }), h, noDrift)).name).to.equal('OutOfSync');
    expect((await determineState(cur, desired({ configDigest: 'sha256:w' }), h, noDrift)).name).to.equal('OutOfSync');
    const post = desired({ renderDigest: { post: 'q', common: 'c' } });
    expect((await determineState(cur, post, h, noDrift)).name).to.equal('OutOfSync');
    const unknown = desired({ renderDigest: { post: 'q', common: 'c' }, observedRenderDigest: {} });
    expect((await determineState(cur, unknown, h, noDrift)).name).to.equal('InSync');
  });

  it('tests an untested release and treats a failed test as a failure unless ignored', async () => {
    const untested = release(1, 'deployed');
    const d = desired({ testEnabled: true });
    expect((await determineState(untested, d, observed([untested]), noDrift)).name).to.equal('Untested');
    const failedTest = release(1, 'deployed', { testHooks: { t: { phase: 'Failed', lastStarted: 'x' } } });
    const o = observed([failedTest], { lastAttemptedReleaseAction: 'install' });
    expect((await determineState(failedTest, d, o, noDrift)).name).to.equal('Failed');
    const ignoring = desired({ testEnabled: true, testIgnoreFailures: true });
    expect((await determineState(failedTest, ignoring, o, noDrift)).name).to.equal('InSync');
  });

  it('checks drift only for a deployed release in sync, and corrects it only when enabled', async () => {
    const cur = release(1, 'deployed');
    let asked = 0;
    const drifted = async () => {
      asked++;
      return 'ConfigMap/ns/app deleted';
    };
    const enabled = desired({ driftMode: 'enabled' });
    const state = await determineState(cur, enabled, observed([cur]), drifted);
    expect(state).to.deep.equal({ name: 'Drifted', reason: 'ConfigMap/ns/app deleted' });
    expect(nextAction(state, enabled, observed([cur]), () => false).type).to.equal('correct-drift');
    expect(nextAction(state, desired({ driftMode: 'warn' }), observed([cur]), () => false).type).to.equal('none');
    await determineState(cur, desired({ driftMode: 'enabled', chartVersion: '7.0.0' }), observed([cur]), drifted);
    await determineState(cur, desired(), observed([cur]), drifted);
    expect(asked).to.equal(1);
  });

  it('remediates a failed upgrade by rollback, a failed install by uninstall, within the retries', async () => {
    const prev = release(1, 'superseded');
    const failedUpgrade = release(2, 'failed');
    const d = desired({ upgradeRemediation: { retries: 2 } });
    const o = observed([failedUpgrade, prev], { lastAttemptedReleaseAction: 'upgrade', upgradeFailures: 1 });
    const state = await determineState(failedUpgrade, d, o, noDrift);
    expect(state.name).to.equal('Failed');
    expect(nextAction(state, d, o, () => true).type).to.equal('rollback');
    expect(nextAction(state, d, o, () => false).type).to.equal('no-rollback-target');
    const byUninstall = desired({ upgradeRemediation: { retries: 2, strategy: 'uninstall' } });
    expect(nextAction(state, byUninstall, o, () => true).type).to.equal('uninstall');
    const failedInstall = release(1, 'failed');
    const oi = observed([failedInstall], { lastAttemptedReleaseAction: 'install', installFailures: 1 });
    const di = desired({ installRemediation: { retries: 1 } });
    expect(nextAction({ name: 'Failed', reason: '' }, di, oi, () => false).type).to.equal('uninstall');
  });

  it('stops when the retries are used up, unless the last failure is to be remediated or forced', () => {
    const failedState = { name: 'Failed' as const, reason: '' };
    const o = observed([release(1, 'failed')], { lastAttemptedReleaseAction: 'install', installFailures: 1 });
    expect(nextAction(failedState, desired(), o, () => false).type).to.equal('exhausted');
    const last = desired({ installRemediation: { retries: 0, remediateLastFailure: true } });
    expect(nextAction(failedState, last, o, () => false).type).to.equal('uninstall');
    expect(nextAction(failedState, desired({ forceRequested: true }), o, () => false).type).to.equal('upgrade');
    const absent = { name: 'Absent' as const, reason: '' };
    expect(nextAction(absent, desired(), o, () => false).type).to.equal('exhausted');
    expect(nextAction(absent, desired({ installRemediation: { retries: -1 } }), o, () => false).type).to.equal(
      'install',
    );
    // Failures reset (a new generation, chart or values): the failed release is upgraded.
    expect(nextAction(failedState, desired(), { ...o, installFailures: 0 }, () => false).type).to.equal('upgrade');
  });

  it('RetryOnFailure never remediates and never runs out of retries', () => {
    const o = observed([release(1, 'failed')], { lastAttemptedReleaseAction: 'install', installFailures: 5 });
    const d = desired({ installStrategy: 'RetryOnFailure' });
    expect(nextAction({ name: 'Failed', reason: '' }, d, o, () => false).type).to.equal('upgrade');
    expect(nextAction({ name: 'Absent', reason: '' }, d, o, () => false).type).to.equal('install');
  });

  it('rolls back to the newest earlier release that was deployed and whose tests did not fail', () => {
    const history = [
      release(4, 'failed'),
      release(3, 'superseded', { testHooks: { t: { phase: 'Failed' } } }),
      release(2, 'superseded'),
      release(1, 'superseded'),
    ];
    expect(previousRelease(history, false)?.version).to.equal(2);
    expect(previousRelease(history, true)?.version).to.equal(3);
    expect(previousRelease([release(1, 'failed')], false)).to.equal(undefined);
  });
});
