// The release state machine's decisions, as helm-controller's atomic release takes them: what state
// the newest release in Helm storage is in compared with the HelmRelease, and the one action to take
// next. Pure: the reconciler reads storage and the cluster and runs the action.

/** One release as Helm storage has it (the helper's ReleaseInfo) or as status.history records it. */
export interface ReleaseRecord {
  name: string;
  namespace: string;
  version: number;
  status: string;
  chartName: string;
  chartVersion: string;
  configDigest: string;
  digest: string;
  firstDeployed?: string | undefined;
  lastDeployed?: string | undefined;
  deleted?: string | undefined;
  appVersion?: string | undefined;
  testHooks?:
    | Record<
        string,
        { lastStarted?: string | undefined; lastCompleted?: string | undefined; phase?: string | undefined }
      >
    | undefined;
}

export type ReleaseAction = 'install' | 'upgrade';

export interface Remediation {
  retries?: number | undefined;
  ignoreTestFailures?: boolean | undefined;
  remediateLastFailure?: boolean | undefined;
  strategy?: string | undefined;
}

/** What the decision reads of the HelmRelease. */
export interface Desired {
  chartName: string;
  chartVersion: string;
  configDigest: string;
  /** Digests of spec.postRenderers and spec.commonMetadata, and those of the last release made. */
  renderDigest: { post: string; common: string };
  observedRenderDigest: { post?: string | undefined; common?: string | undefined };
  testEnabled: boolean;
  testIgnoreFailures: boolean;
  installRemediation: Remediation;
  upgradeRemediation: Remediation;
  /** install/upgrade .strategy.name: RetryOnFailure retries the action itself and never remediates. */
  installStrategy: 'RemediateOnFailure' | 'RetryOnFailure';
  upgradeStrategy: 'RemediateOnFailure' | 'RetryOnFailure';
  driftMode: 'enabled' | 'warn' | 'disabled';
  forceRequested: boolean;
}

/** What the decision reads of status. */
export interface Observed {
  history: ReleaseRecord[];
  lastAttemptedReleaseAction?: ReleaseAction | undefined;
  installFailures: number;
  upgradeFailures: number;
}

export type StateName = 'Absent' | 'Locked' | 'Unmanaged' | 'Failed' | 'OutOfSync' | 'Untested' | 'Drifted' | 'InSync';

export interface State {
  name: StateName;
  reason: string;
}

export type NextAction =
  | { type: 'install' | 'upgrade' | 'test' | 'unlock' | 'rollback' | 'uninstall' | 'correct-drift'; reason: string }
  | { type: 'none'; reason: string }
  /** Retries are used up: Stalled RetriesExceeded until something changes. */
  | { type: 'exhausted'; reason: string }
  /** A rollback is due but the release to roll back to is not in storage any more. */
  | { type: 'no-rollback-target'; reason: string };

const PENDING = new Set(['pending-install', 'pending-upgrade', 'pending-rollback']);

export function isPending(status: string): boolean {
  return PENDING.has(status);
}

/** "<namespace>/<name>.v<version>", as Flux names a release in messages. */
export function fullReleaseName(r: Pick<ReleaseRecord, 'namespace' | 'name' | 'version'>): string {
  return `${r.namespace}/${r.name}.v${r.version}`;
}

/** "<chart>@<version>" */
export function versionedChart(r: Pick<ReleaseRecord, 'chartName' | 'chartVersion'>): string {
  return `${r.chartName}@${r.chartVersion}`;
}

/**
 * The state of `latest` (the newest release in storage, if any). `drifted` is asked only for a
 * deployed release in sync with drift detection on; it returns a summary of the drift or undefined.
 */
export async function determineState(
  latest: ReleaseRecord | undefined,
  desired: Desired,
  observed: Observed,
  drifted: () => Promise<string | undefined>,
): Promise<State> {
  if (!latest) return { name: 'Absent', reason: 'no release in storage for object' };
  if (isPending(latest.status)) return { name: 'Locked', reason: `release with status '${latest.status}'` };
  const cur = observed.history[0];
  if (!cur) {
    if (latest.status === 'uninstalled') return { name: 'Absent', reason: 'found uninstalled release in storage' };
    return { name: 'Unmanaged', reason: 'found existing release in storage' };
  }
  const mismatch = verifyObserved(cur, latest);
  if (mismatch) return { name: 'Unmanaged', reason: mismatch };
  switch (latest.status) {
    case 'failed':
      return { name: 'Failed', reason: 'release is in a failed state' };
    case 'uninstalled':
      return { name: 'Absent', reason: 'found uninstalled release in storage' };
    case 'deployed': {
      if (latest.chartName !== desired.chartName || latest.chartVersion !== desired.chartVersion) {
        return {
          name: 'OutOfSync',
          reason: `release chart ${versionedChart(latest)} differs from ${desired.chartName}@${desired.chartVersion}`,
        };
      }
      if (latest.configDigest !== desired.configDigest) {
        return { name: 'OutOfSync', reason: 'release config values changed' };
      }
      // Unknown (a release observed before these were recorded) counts as unchanged.
      const seen = desired.observedRenderDigest;
      if (seen.post !== undefined && seen.post !== desired.renderDigest.post) {
        return { name: 'OutOfSync', reason: 'post-renderers changed' };
      }
      if (seen.common !== undefined && seen.common !== desired.renderDigest.common) {
        return { name: 'OutOfSync', reason: 'common metadata changed' };
      }
      if (desired.testEnabled) {
        if (!hasBeenTested(cur)) return { name: 'Untested', reason: 'release has not been tested' };
        const remediation = activeRemediation(desired, observed);
        if (remediation && !ignoresTestFailures(remediation, desired) && hasFailedTest(cur)) {
          return { name: 'Failed', reason: 'release has test in failed phase' };
        }
      }
      if (desired.driftMode !== 'disabled') {
        const drift = await drifted();
        if (drift) return { name: 'Drifted', reason: drift };
      }
      return { name: 'InSync', reason: 'release in sync with desired state' };
    }
    default:
      return { name: 'Unmanaged', reason: `release with unexpected status '${latest.status}'` };
  }
}

/** Why the release in storage is not the one status.history last observed, or undefined. */
function verifyObserved(cur: ReleaseRecord, latest: ReleaseRecord): string | undefined {
  if (cur.name !== latest.name || cur.namespace !== latest.namespace || cur.version !== latest.version) {
    return `release ${fullReleaseName(latest)} was not made or observed by this HelmRelease`;
  }
  if (cur.digest && cur.digest !== latest.digest) {
    return `release ${fullReleaseName(latest)} was changed outside this HelmRelease`;
  }
  return undefined;
}

export function hasBeenTested(r: ReleaseRecord): boolean {
  return Object.values(r.testHooks ?? {}).some((h) => !!h.lastStarted);
}

export function hasFailedTest(r: ReleaseRecord): boolean {
  return Object.values(r.testHooks ?? {}).some((h) => h.phase === 'Failed');
}

/** The remediation of the last release action attempted (install or upgrade), as in Flux. */
export function activeRemediation(
  desired: Desired,
  observed: Observed,
): (Remediation & { action: ReleaseAction; failures: number }) | undefined {
  switch (observed.lastAttemptedReleaseAction) {
    case 'install':
      return { ...desired.installRemediation, action: 'install', failures: observed.installFailures };
    case 'upgrade':
      return { ...desired.upgradeRemediation, action: 'upgrade', failures: observed.upgradeFailures };
    default:
      return undefined;
  }
}

export function retriesExhausted(r: Remediation & { failures: number }): boolean {
  const retries = r.retries ?? 0;
  return retries >= 0 && r.failures > retries;
}

/** remediateLastFailure defaults to true when retries are configured. */
export function remediatesLastFailure(r: Remediation): boolean {
  return r.remediateLastFailure ?? (r.retries ?? 0) > 0;
}

export function ignoresTestFailures(r: Remediation, desired: Pick<Desired, 'testIgnoreFailures'>): boolean {
  return r.ignoreTestFailures ?? desired.testIgnoreFailures;
}

/** The one action for `state`. `rollbackTarget` says whether the previous release is still in storage. */
export function nextAction(
  state: State,
  desired: Desired,
  observed: Observed,
  rollbackTarget: () => boolean,
): NextAction {
  const force = desired.forceRequested;
  switch (state.name) {
    case 'InSync':
      return force ? { type: 'upgrade', reason: 'force requested through annotation' } : { type: 'none', reason: '' };
    case 'Locked':
      return { type: 'unlock', reason: state.reason };
    case 'Absent': {
      const r = { ...desired.installRemediation, failures: observed.installFailures };
      const budget = desired.installStrategy === 'RemediateOnFailure';
      if (budget && !force && observed.lastAttemptedReleaseAction === 'install' && retriesExhausted(r)) {
        return { type: 'exhausted', reason: 'cannot install release' };
      }
      return { type: 'install', reason: state.reason };
    }
    case 'Unmanaged':
      return { type: 'upgrade', reason: state.reason };
    case 'OutOfSync': {
      const r = { ...desired.upgradeRemediation, failures: observed.upgradeFailures };
      const budget = desired.upgradeStrategy === 'RemediateOnFailure';
      if (budget && !force && observed.lastAttemptedReleaseAction === 'upgrade' && retriesExhausted(r)) {
        return { type: 'exhausted', reason: 'cannot upgrade release' };
      }
      return { type: 'upgrade', reason: state.reason };
    }
    case 'Drifted':
      return desired.driftMode === 'enabled'
        ? { type: 'correct-drift', reason: state.reason }
        : { type: 'none', reason: state.reason };
    case 'Untested':
      return { type: 'test', reason: state.reason };
    case 'Failed': {
      const remediation = activeRemediation(desired, observed);
      if (!remediation) return { type: 'upgrade', reason: 'no active remediation strategy' };
      if (remediation.failures <= 0)
        return { type: 'upgrade', reason: 'release conditions have changed since last failure' };
      if (force) return { type: 'upgrade', reason: 'force requested through annotation' };
      // RetryOnFailure: no remediation and no retry budget; the release is attempted again (a
      // failed install as an upgrade) at each retry, never Stalled.
      const strategy = remediation.action === 'install' ? desired.installStrategy : desired.upgradeStrategy;
      if (strategy === 'RetryOnFailure')
        return { type: 'upgrade', reason: 'retrying the failed release (RetryOnFailure)' };
      if (retriesExhausted(remediation) && !remediatesLastFailure(remediation)) {
        return { type: 'exhausted', reason: 'cannot remediate failed release' };
      }
      if (remediation.action === 'install' || remediation.strategy === 'uninstall') {
        return { type: 'uninstall', reason: state.reason };
      }
      return rollbackTarget()
        ? { type: 'rollback', reason: state.reason }
        : {
            type: 'no-rollback-target',
            reason: 'missing target release for rollback: cannot remediate failed release',
          };
    }
  }
}

/** The release to roll back to: the newest in history before the failed one that was deployed (or superseded). */
export function previousRelease(history: ReleaseRecord[], ignoreTestFailures: boolean): ReleaseRecord | undefined {
  const [, ...older] = history;
  return older.find(
    (r) => (r.status === 'deployed' || r.status === 'superseded') && (ignoreTestFailures || !hasFailedTest(r)),
  );
}

/** "release <ns>/<name>.v<N> with chart <chart>@<version>", as Flux's messages name a release. */
export function releaseWithChart(
  r: Parameters<typeof fullReleaseName>[0] & Parameters<typeof versionedChart>[0],
): string {
  return `release ${fullReleaseName(r)} with chart ${versionedChart(r)}`;
}
