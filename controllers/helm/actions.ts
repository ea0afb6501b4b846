// The Helm actions of a HelmRelease and the status they leave: install and upgrade (with
// post-rendering and the helm CLI's fields adopted first), test, rollback and uninstall
// remediations, unlock, drift detection and correction, and the history of releases observed.
// The state machine (reconciler.ts, state.ts) decides which runs; each runs one helper op.
import { HelmReleaseKind, type HelmReleaseSpec, type HelmReleaseStatus } from '../api/helm/helmrelease.ts';
import { errorMessage } from '../runtime/api-errors.ts';
import { removeCondition, rfc3339, setCondition } from '../runtime/conditions.ts';
import { parseDuration } from '../runtime/duration.ts';
import { failed } from '../runtime/outcome.ts';
import { Reason } from '../runtime/reasons.ts';
import { ChartLoadError } from './chart-store.ts';
import { NAME_LABEL, NAMESPACE_LABEL } from './chart-template.ts';
import { HelmHelperError, type HelmTarget, type PostRender, type ReleaseInfo } from './client.ts';
import {
  adoptHelmFields,
  correctDrift,
  detectDrift,
  manifestInventory,
  manifestObjects,
  summarizeDrift,
  type DriftEntry,
} from './drift.ts';
import { fullReleaseName, ignoresTestFailures, previousRelease, releaseWithChart } from './state.ts';
import type { Ctx, HelmReleaseDeps, Run } from './reconciler.ts';

type Snapshot = NonNullable<HelmReleaseStatus['history']>[number];

export class ReleaseActions {
  private readonly deps: HelmReleaseDeps;

  constructor(deps: HelmReleaseDeps) {
    this.deps = deps;
  }

  /** strategy.retryInterval (default 5m) when the last release action's strategy is RetryOnFailure. */
  retryOnFailureMs(run: Run): number | undefined {
    const spec = run.checked!.spec;
    const action = run.ctx.status.lastAttemptedReleaseAction;
    const strategy = action === 'upgrade' ? spec.upgrade?.strategy : spec.install?.strategy;
    if (strategy?.name !== 'RetryOnFailure') return undefined;
    return parseDuration(strategy.retryInterval ?? '5m');
  }

  ignoringTestFailures(run: Run): boolean {
    const spec = run.checked!.spec;
    const desired = { testIgnoreFailures: spec.test?.ignoreFailures ?? false };
    const action = run.ctx.status.lastAttemptedReleaseAction;
    const remediation = action === 'upgrade' ? spec.upgrade?.remediation : spec.install?.remediation;
    return ignoresTestFailures(remediation ?? {}, desired);
  }

  timeoutOf(action: string, spec: HelmReleaseSpec): number {
    const specific: Record<string, string | undefined> = {
      install: spec.install?.timeout,
      upgrade: spec.upgrade?.timeout,
      test: spec.test?.timeout,
      rollback: spec.rollback?.timeout,
      uninstall: spec.uninstall?.timeout,
    };
    return parseDuration(specific[action] ?? spec.timeout ?? '5m');
  }

  postRender(run: Run): PostRender {
    const { spec } = run.checked!;
    const obj = run.obj;
    return {
      kustomize: (spec.postRenderers ?? []).flatMap((p) => (p.kustomize ? [p.kustomize] : [])),
      commonLabels: {
        ...spec.commonMetadata?.labels,
        [NAME_LABEL]: obj.metadata!.name!,
        [NAMESPACE_LABEL]: obj.metadata!.namespace!,
      },
      ...(spec.commonMetadata?.annotations ? { commonAnnotations: spec.commonMetadata.annotations } : {}),
    };
  }

  /** install or upgrade (also of an unmanaged or failed release, and forced ones). */
  async releaseAction(run: Run, action: 'install' | 'upgrade'): Promise<void> {
    const { ctx, checked, obj } = run;
    const { spec } = checked!;
    const timeoutMs = this.timeoutOf(action, spec);
    ctx.status.lastAttemptedReleaseAction = action;
    const chart = await this.deps.charts.acquire(run.artifact!, timeoutMs, ctx.signal).catch((err: unknown) => {
      if (err instanceof ChartLoadError) throw failed(Reason.ArtifactFailed, err.message);
      throw err;
    });
    if (action === 'upgrade') await this.adoptFields(run);
    const chartName = `${run.chart!.name}@${run.chart!.version}`;
    const release = `${run.targetNamespace}/${run.releaseName}`;
    const common = {
      target: run.target!.helm,
      chart: chart.path,
      name: run.releaseName!,
      namespace: run.targetNamespace!,
      values: run.values!,
      timeoutMs,
      postRender: this.postRender(run),
      description: `${action} by ${HelmReleaseKind.kind} ${obj.metadata!.namespace}/${obj.metadata!.name}`,
      ...(run.versionOverride ? { chartVersion: run.versionOverride } : {}),
      // The HelmRelease owns its objects' fields, as a Kustomization does: fields another manager
      // took (the helm CLI that installed a release taken over, a kubectl edit) are taken back.
      forceConflicts: true,
      legacyWait: spec.waitStrategy?.name === 'legacy',
      ...(spec.postRenderStrategy ? { postRenderStrategy: spec.postRenderStrategy } : {}),
    };
    let info: ReleaseInfo;
    try {
      if (action === 'install') {
        const o = spec.install ?? {};
        info = await this.deps.helm.install(
          {
            ...common,
            wait: !o.disableWait,
            waitForJobs: !o.disableWaitForJobs,
            disableHooks: o.disableHooks ?? false,
            disableOpenAPIValidation: o.disableOpenAPIValidation ?? false,
            disableSchemaValidation: o.disableSchemaValidation ?? false,
            replace: o.replace ?? false,
            createNamespace: o.createNamespace ?? false,
            crds: o.crds ?? (o.skipCRDs ? 'Skip' : 'Create'),
            force: false,
            takeOwnership: !o.disableTakeOwnership,
            serverSideApply: o.serverSideApply ?? true,
          },
          { signal: ctx.signal },
        );
      } else {
        const o = spec.upgrade ?? {};
        info = await this.deps.helm.upgrade(
          {
            ...common,
            wait: !o.disableWait,
            waitForJobs: !o.disableWaitForJobs,
            disableHooks: o.disableHooks ?? false,
            disableOpenAPIValidation: o.disableOpenAPIValidation ?? false,
            disableSchemaValidation: o.disableSchemaValidation ?? false,
            crds: o.crds ?? 'Skip',
            force: o.force ?? false,
            takeOwnership: !o.disableTakeOwnership,
            serverSideApply: SSA_MODES[o.serverSideApply ?? 'auto'] ?? 'auto',
            preserveValues: o.preserveValues ?? false,
            cleanupOnFail: o.cleanupOnFail ?? false,
            maxHistory: spec.maxHistory ?? 5,
          },
          { signal: ctx.signal },
        );
      }
    } catch (err) {
      if (!(err instanceof HelmHelperError) || !ACTION_FAILURES.has(err.code)) throw err;
      // Only a failure that wrote a release counts against the retries (as in Flux): a chart that
      // does not render changed nothing and is retried with backoff.
      const wrote = await this.observeNewest(run);
      this.countFailure(run, action, wrote);
      const reason = action === 'install' ? Reason.InstallFailed : Reason.UpgradeFailed;
      const message = `Helm ${action} failed for release ${release} with chart ${chartName}: ${err.message}`;
      this.mark(ctx, 'Released', 'False', reason, message);
      ctx.event('Warning', reason, message);
      run.final = { type: 'error', reason, message };
      return;
    } finally {
      chart.release();
    }
    this.observe(run, info);
    const reason = action === 'install' ? Reason.InstallSucceeded : Reason.UpgradeSucceeded;
    const message = `Helm ${action} succeeded for ${releaseWithChart(info)}`;
    this.mark(ctx, 'Released', 'True', reason, message);
    ctx.status.conditions = removeCondition(removeCondition(ctx.status.conditions, 'Remediated'), 'TestSuccess');
    if (spec.test?.enable) {
      const awaiting = `Helm ${releaseWithChart(info)} is awaiting tests`;
      ctx.status.conditions = setCondition(
        ctx.status.conditions,
        { type: 'TestSuccess', status: 'Unknown', reason: Reason.Pending, message: awaiting },
        ctx.now(),
      );
    }
    ctx.status.observedPostRenderersDigest = run.renderDigest!.post;
    ctx.status.observedCommonMetadataDigest = run.renderDigest!.common;
    ctx.event('Normal', reason, message);
    await this.recordInventory(run, info);
  }

  /** Before an upgrade: fields of the newest release's objects held by the helm CLI become ours (best effort). */
  async adoptFields(run: Run): Promise<void> {
    try {
      const { manifest, namespace } = await this.deps.helm.manifest({
        target: run.target!.helm,
        name: run.releaseName!,
      });
      const objects = manifestObjects(manifest, { name: run.releaseName!, namespace });
      const adopted = await adoptHelmFields(run.target!.kc, objects);
      if (adopted > 0) run.ctx.logger.info('took over fields of the helm CLI', { objects: adopted });
    } catch (err) {
      if (err instanceof HelmHelperError && err.code === 'ReleaseNotFound') return;
      run.ctx.logger.debug('could not take over the fields of the helm CLI', { error: errorMessage(err) });
    }
  }

  /** status.inventory: the objects of the release's manifest (best effort: a failure leaves the old one). */
  async recordInventory(run: Run, info: ReleaseInfo): Promise<void> {
    try {
      const { manifest } = await this.deps.helm.manifest({ target: run.target!.helm, name: run.releaseName! });
      const objects = manifestObjects(manifest, { name: info.name, namespace: info.namespace });
      run.ctx.status.inventory = { entries: await manifestInventory(run.target!.kc, objects) };
    } catch (err) {
      run.ctx.logger.debug('could not record the inventory of the release', { error: errorMessage(err) });
    }
  }

  async test(run: Run): Promise<void> {
    const { ctx, checked } = run;
    const { spec } = checked!;
    const cur = ctx.status.history![0]!;
    const filters: Record<string, string[]> = {};
    for (const f of spec.test?.filters ?? []) {
      const key = f.exclude ? '!name' : 'name';
      filters[key] = [...(filters[key] ?? []), f.name];
    }
    try {
      const info = await this.deps.helm.test({
        target: run.target!.helm,
        name: run.releaseName!,
        timeoutMs: this.timeoutOf('test', spec),
        ...(Object.keys(filters).length > 0 ? { filters } : {}),
      });
      this.observe(run, info);
      const hooks = Object.keys(info.testHooks ?? {}).length;
      const message =
        `Helm test succeeded for ${releaseWithChart(info)}: ` +
        (hooks > 0 ? `${hooks} test hook(s) completed successfully` : 'no test hooks');
      this.mark(ctx, 'TestSuccess', 'True', Reason.TestSucceeded, message);
      ctx.event('Normal', Reason.TestSucceeded, message);
    } catch (err) {
      if (!(err instanceof HelmHelperError) || !ACTION_FAILURES.has(err.code)) throw err;
      await this.observeNewest(run);
      const message = `Helm test failed for ${releaseWithChart(cur)}: ${err.message}`;
      this.mark(ctx, 'TestSuccess', 'False', Reason.TestFailed, message);
      ctx.event('Warning', Reason.TestFailed, message);
      ctx.status.failures = (ctx.status.failures ?? 0) + 1;
      if (!this.ignoringTestFailures(run)) {
        const action = ctx.status.lastAttemptedReleaseAction;
        if (action === 'install') ctx.status.installFailures = (ctx.status.installFailures ?? 0) + 1;
        if (action === 'upgrade') ctx.status.upgradeFailures = (ctx.status.upgradeFailures ?? 0) + 1;
        run.final = { type: 'error', reason: Reason.TestFailed, message };
      }
    }
  }

  async rollback(run: Run): Promise<void> {
    const { ctx, checked } = run;
    const { spec } = checked!;
    const prev = previousRelease(ctx.status.history ?? [], this.ignoringTestFailures(run))!;
    const o = spec.rollback ?? {};
    const what = `Helm rollback to previous ${releaseWithChart(prev)}`;
    try {
      const info = await this.deps.helm.rollback({
        target: run.target!.helm,
        name: run.releaseName!,
        version: prev.version,
        timeoutMs: this.timeoutOf('rollback', spec),
        wait: !o.disableWait,
        waitForJobs: !o.disableWaitForJobs,
        disableHooks: o.disableHooks ?? false,
        force: o.force ?? false,
        forceConflicts: true,
        legacyWait: spec.waitStrategy?.name === 'legacy',
        cleanupOnFail: o.cleanupOnFail ?? false,
        maxHistory: spec.maxHistory ?? 5,
      });
      this.observe(run, info);
      const message = `${what} succeeded`;
      this.mark(ctx, 'Remediated', 'True', Reason.RollbackSucceeded, message);
      ctx.event('Normal', Reason.RollbackSucceeded, message);
      await this.recordInventory(run, info);
    } catch (err) {
      if (!(err instanceof HelmHelperError) || !ACTION_FAILURES.has(err.code)) throw err;
      await this.observeNewest(run);
      const message = `${what} failed: ${err.message}`;
      this.mark(ctx, 'Remediated', 'False', Reason.RollbackFailed, message);
      ctx.event('Warning', Reason.RollbackFailed, message);
    }
  }

  async uninstallRemediation(run: Run, latest: ReleaseInfo): Promise<void> {
    const { ctx, checked } = run;
    const { spec } = checked!;
    const what = `Helm uninstall remediation for ${releaseWithChart(latest)}`;
    try {
      const res = await this.uninstall(run.target!.helm, run.releaseName!, spec);
      if (res.info) this.observe(run, res.info);
      delete ctx.status.inventory;
      const message = `${what} succeeded`;
      this.mark(ctx, 'Remediated', 'True', Reason.UninstallSucceeded, message);
      ctx.event('Normal', Reason.UninstallSucceeded, message);
    } catch (err) {
      if (!(err instanceof HelmHelperError) || !ACTION_FAILURES.has(err.code)) throw err;
      const message = `${what} failed: ${err.message}`;
      this.mark(ctx, 'Remediated', 'False', Reason.UninstallFailed, message);
      ctx.event('Warning', Reason.UninstallFailed, message);
    }
  }

  uninstall(target: HelmTarget, name: string, spec: HelmReleaseSpec | undefined) {
    const o = spec?.uninstall ?? {};
    return this.deps.helm.uninstall({
      target,
      name,
      timeoutMs: parseDuration(o.timeout ?? spec?.timeout ?? '5m'),
      wait: !o.disableWait,
      disableHooks: o.disableHooks ?? false,
      keepHistory: o.keepHistory ?? false,
      deletionPropagation: o.deletionPropagation ?? 'background',
    });
  }

  async unlock(run: Run, latest: ReleaseInfo): Promise<void> {
    const { ctx } = run;
    const info = await this.deps.helm.unlock({ target: run.target!.helm, name: run.releaseName! });
    this.observe(run, info);
    const message = `Unlocked Helm ${releaseWithChart(info)} in ${latest.status} state`;
    this.mark(ctx, 'Released', 'False', Reason.PendingRelease, message);
    ctx.event('Normal', Reason.PendingRelease, message);
  }

  async detectDrift(run: Run, latest: ReleaseInfo): Promise<DriftEntry[]> {
    const { manifest } = await this.deps.helm.manifest({ target: run.target!.helm, name: run.releaseName! });
    const objects = manifestObjects(manifest, { name: latest.name, namespace: latest.namespace });
    return detectDrift(run.target!.kc, objects, run.checked!.ignore);
  }

  reportDrift(run: Run, latest: ReleaseInfo, drift: DriftEntry[]): void {
    const { ctx } = run;
    const summary = summarizeDrift(drift);
    const release = fullReleaseName(latest);
    const message = `Cluster state of release ${release} has drifted from the desired state: ${summary}`;
    this.mark(ctx, 'Drifted', 'True', Reason.DriftDetected, message);
    ctx.event('Warning', Reason.DriftDetected, message);
    this.deps.onDrift?.(run.obj, drift);
  }

  async correct(run: Run, latest: ReleaseInfo): Promise<void> {
    const { ctx } = run;
    const { manifest } = await this.deps.helm.manifest({ target: run.target!.helm, name: run.releaseName! });
    const objects = manifestObjects(manifest, { name: latest.name, namespace: latest.namespace });
    try {
      const changes = await correctDrift(run.target!.kc, objects, run.checked!.ignore);
      const message = `Cluster state of release ${fullReleaseName(latest)} has been corrected: ${changes.join(', ')}`;
      this.mark(ctx, 'Drifted', 'False', Reason.DriftCorrected, message);
      ctx.event('Normal', Reason.DriftCorrected, message);
    } catch (err) {
      const message = `Failed to correct cluster state of release ${fullReleaseName(latest)}: ${errorMessage(err)}`;
      this.mark(ctx, 'Drifted', 'True', Reason.DriftCorrectionFailed, message);
      throw failed(Reason.DriftCorrectionFailed, message);
    }
  }

  mark(ctx: Ctx, type: string, status: 'True' | 'False', reason: string, message: string): void {
    ctx.status.conditions = setCondition(ctx.status.conditions, { type, status, reason, message }, ctx.now());
  }

  countFailure(run: Run, action: 'install' | 'upgrade', wrote: boolean): void {
    const s = run.ctx.status;
    s.failures = (s.failures ?? 0) + 1;
    if (!wrote) return;
    if (action === 'install') s.installFailures = (s.installFailures ?? 0) + 1;
    else s.upgradeFailures = (s.upgradeFailures ?? 0) + 1;
  }

  /** After a failed action: the release it left in storage joins the history; true when it made a new one. */
  async observeNewest(run: Run): Promise<boolean> {
    const { releases } = await this.deps.helm.history({ target: run.target!.helm, name: run.releaseName!, max: 1 });
    const newest = releases[0];
    const cur = run.ctx.status.history?.[0];
    if (!newest || (cur && newest.version < cur.version)) return false;
    // A new record, or a new one under an old number (versions restart at 1 after an uninstall).
    const fresh = !cur || newest.version !== cur.version || newest.digest !== cur.digest;
    this.observe(run, newest);
    return fresh;
  }

  /** Records a release our action made or changed into status.history, newest first. */
  observe(run: Run, info: ReleaseInfo): void {
    const status = run.ctx.status;
    const rest = (status.history ?? []).filter((s) => s.version !== info.version);
    status.history = [snapshotOf(info, run.ociDigest), ...rest].sort((a, b) => b.version - a.version).slice(0, 5);
  }
}

/** upgrade.serverSideApply as the helper takes it. */
const SSA_MODES: Record<string, 'true' | 'false' | 'auto'> = { enabled: 'true', disabled: 'false', auto: 'auto' };

/** Helper error codes that mean "the Helm action failed" (counted, remediated), not "the helper failed". */
const ACTION_FAILURES = new Set([
  'InstallFailed',
  'UpgradeFailed',
  'TestFailed',
  'RollbackFailed',
  'UninstallFailed',
  'RenderFailed',
  'PostRenderFailed',
  'InvalidChart',
  'Timeout',
]);

function snapshotOf(info: ReleaseInfo, ociDigest: string | undefined): Snapshot {
  return {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    digest: info.digest,
    name: info.name,
    namespace: info.namespace,
    version: info.version,
    status: info.status,
    chartName: info.chartName,
    chartVersion: info.chartVersion,
    ...(info.appVersion ? { appVersion: info.appVersion } : {}),
    configDigest: info.configDigest,
    firstDeployed: info.firstDeployed ?? info.lastDeployed ?? rfc3339(new Date()),
    lastDeployed: info.lastDeployed ?? info.firstDeployed ?? rfc3339(new Date()),
    ...(info.deleted ? { deleted: info.deleted } : {}),
    ...(info.testHooks ? { testHooks: info.testHooks } : {}),
    ...(ociDigest ? { ociDigest } : {}),
  } as Snapshot;
}
