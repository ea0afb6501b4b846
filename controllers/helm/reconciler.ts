// HelmRelease: wait for dependencies, get the chart from its source (a HelmChart made from
// spec.chart, or spec.chartRef), compose the values, then run the release state machine: read the
// newest release in Helm storage, decide its state, take the one next action (install, upgrade,
// test, rollback, uninstall, unlock, drift correction), and again, until the release is in sync or
// a remediation ran. Helm runs in the helper; every decision and all status is made here.
import type { KubeConfig } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { HelmReleaseKind, type HelmReleaseSpec, type HelmReleaseStatus } from '../api/helm/helmrelease.ts';
import { checkSpec } from '../api/validate.ts';
import { errorMessage } from '../runtime/api-errors.ts';
import { compile, evaluateBool, ExpressionError, type Compiled } from '../runtime/apply/expressions.ts';
import { compileIgnoreRules, IgnoreRuleError, type IgnoreRules } from '../runtime/apply/ignore.ts';
import { findCondition, isTrue, removeCondition, rfc3339, type Condition } from '../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../runtime/controller.ts';
import { parseDuration } from '../runtime/duration.ts';
import { hasFinalizer, setFinalizer } from '../runtime/finalizers.ts';
import type { Informer } from '../runtime/informer.ts';
import { failed, stalled, waiting, type Outcome } from '../runtime/outcome.ts';
import { Reason } from '../runtime/reasons.ts';
import { runSteps, type Recipe } from '../runtime/steps.ts';
import type { ChartArtifact, ChartMeta } from './chart-store.ts';
import { ChartLoadError } from './chart-store.ts';
import {
  applyChart,
  chartMatches,
  deleteChart,
  desiredChart,
  templateChartRef,
  type ChartObject,
} from './chart-template.ts';
import {
  HelmHelperError,
  type HelmTarget,
  type InstallParams,
  type ReleaseInfo,
  type UpgradeParams,
} from './client.ts';
import { summarizeDrift, type DriftEntry } from './drift.ts';
import {
  activeRemediation,
  determineState,
  fullReleaseName,
  nextAction,
  previousRelease,
  releaseWithChart,
  retriesExhausted,
  type Desired,
  type NextAction,
  type Observed,
  type ReleaseRecord,
} from './state.ts';
import { ReleaseActions } from './actions.ts';
import { composeValues, ValuesReferenceError, valuesDigest, type ReadValuesSource, type Values } from './values.ts';

export type HelmRelease = ManagedObject<HelmReleaseStatus> & { spec: HelmReleaseSpec };
export type Ctx = ReconcileContext<HelmReleaseStatus>;

export interface ChartSource extends ManagedObject {
  spec?: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    artifact?: { url: string; revision: string; digest?: string };
  };
}

export const FORCE_AT_ANNOTATION = 'reconcile.fluxcd.io/forceAt';
export const RESET_AT_ANNOTATION = 'reconcile.fluxcd.io/resetAt';
const REQUESTED_AT_ANNOTATION = 'reconcile.fluxcd.io/requestedAt';

/** The Helm operations, as the helper runs them (controllers/helm/client.ts). */
export interface ReleaseClient {
  history(
    p: { target: HelmTarget; name: string; max?: number },
    o?: { signal?: AbortSignal },
  ): Promise<{
    releases: ReleaseInfo[];
  }>;
  install(p: InstallParams, o?: { signal?: AbortSignal }): Promise<ReleaseInfo>;
  upgrade(p: UpgradeParams, o?: { signal?: AbortSignal }): Promise<ReleaseInfo>;
  test(p: Parameters<import('./client.ts').HelmHelper['test']>[0]): Promise<ReleaseInfo>;
  rollback(p: Parameters<import('./client.ts').HelmHelper['rollback']>[0]): Promise<ReleaseInfo>;
  uninstall(p: Parameters<import('./client.ts').HelmHelper['uninstall']>[0]): Promise<{ info?: ReleaseInfo }>;
  unlock(p: { target: HelmTarget; name: string }): Promise<ReleaseInfo>;
  manifest(p: { target: HelmTarget; name: string; version?: number }): Promise<{ manifest: string; namespace: string }>;
}

/** Where a release is acted on: the helper's target, and the same cluster and account for drift. */
export interface ReleaseTarget {
  helm: HelmTarget;
  kc: KubeConfig;
}

export interface HelmReleaseDeps {
  kubeConfig: KubeConfig;
  releases: Informer<HelmRelease>;
  sources: { HelmChart: Informer<ChartSource>; OCIRepository: Informer<ChartSource> };
  helm: ReleaseClient;
  charts: {
    meta(a: ChartArtifact, timeoutMs: number, signal?: AbortSignal): Promise<ChartMeta>;
    acquire(
      a: ChartArtifact,
      timeoutMs: number,
      signal?: AbortSignal,
    ): Promise<ChartMeta & { path: string; release(): void }>;
  };
  /** The target for a release: spec.kubeConfig's cluster and the impersonated account; throws when unusable. */
  targetFor(obj: HelmRelease, storageNamespace: string): Promise<ReleaseTarget>;
  /** valuesFrom reader for a namespace (fresh reads, as Flux does). */
  readValues(namespace: string): ReadValuesSource;
  requeueDependencyMs: number;
  noCrossNamespaceRefs?: boolean;
  /** Counts drift found, by release (the gotk_helmrelease_drift_total metric). */
  onDrift?(obj: HelmRelease, drift: readonly DriftEntry[]): void;
}

export interface Checked {
  spec: HelmReleaseSpec;
  intervalMs: number;
  timeoutMs: number;
  readiness: (Compiled | undefined)[];
  ignore: IgnoreRules | undefined;
}

export interface Run {
  obj: HelmRelease;
  ctx: Ctx;
  checked?: Checked;
  releaseName?: string;
  targetNamespace?: string;
  storageNamespace?: string;
  artifact?: ChartArtifact;
  /** The chart the release must run: name and (for OCI sources, digest-suffixed) version. */
  chart?: ChartMeta;
  /** Version the helper sets on the chart when it differs from the packaged one (OCI sources). */
  versionOverride?: string;
  ociDigest?: string;
  values?: Values;
  configDigest?: string;
  renderDigest?: { post: string; common: string };
  target?: ReleaseTarget;
  forceRequested?: boolean;
  /** The result of the last release action: success outcome or the failure that ends the loop. */
  final?: Outcome;
}

export class HelmReleaseReconciler implements Reconciler<HelmRelease> {
  readonly failureReason = Reason.ReconciliationFailed;
  private readonly deps: HelmReleaseDeps;
  private readonly actions: ReleaseActions;
  readonly recipe: Recipe<Run>;

  constructor(deps: HelmReleaseDeps) {
    this.deps = deps;
    this.actions = new ReleaseActions(deps);
    this.recipe = {
      steps: [
        { name: 'finalizer', reason: Reason.ReconciliationFailed, run: (r) => this.ensureFinalizer(r) },
        { name: 'validate', reason: Reason.InvalidSpec, run: (r) => this.validate(r) },
        { name: 'dependencies', reason: Reason.DependencyNotReady, run: (r) => this.dependencies(r) },
        { name: 'chart', reason: Reason.ArtifactFailed, run: (r) => this.chart(r) },
        { name: 'values', reason: Reason.ValuesError, run: (r) => this.values(r) },
        { name: 'target', reason: Reason.InitFailed, run: (r) => this.target(r) },
        { name: 'release', reason: Reason.ReconciliationFailed, run: (r) => this.release(r) },
      ],
      success: (r) => r.final!,
    };
  }

  chartSourceOf = (obj: HelmRelease): ChartSource | undefined => {
    const ref = sourceRefOf(obj);
    return ref && this.deps.sources[ref.kind]?.get(`${ref.namespace}/${ref.name}`);
  };

  async reconcile(obj: HelmRelease, ctx: Ctx): Promise<Outcome> {
    if (obj.metadata?.deletionTimestamp) return this.finalize(obj, ctx);
    const run: Run = { obj, ctx };
    return runSteps(this.recipe, run, ctx, obj.metadata?.generation);
  }

  private async ensureFinalizer({ obj }: Run): Promise<void> {
    if (!hasFinalizer(obj)) await setFinalizer(this.deps.kubeConfig, obj, true);
  }

  private validate(run: Run): void {
    const { obj } = run;
    const { spec, errors } = checkSpec<HelmReleaseSpec>(HelmReleaseKind, obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    if (!spec.chart === !spec.chartRef) {
      throw stalled(Reason.InvalidSpec, 'invalid spec: exactly one of spec.chart and spec.chartRef must be set');
    }
    const unsupported: [unknown, string][] = [
      [spec.chart?.spec.verify, 'spec.chart.spec.verify (chart signature verification)'],
      [spec.chart?.spec.sourceRef.kind === 'Bucket', 'spec.chart.spec.sourceRef.kind Bucket'],
      [
        spec.chartRef && !['OCIRepository', 'HelmChart'].includes(spec.chartRef.kind),
        `spec.chartRef.kind ${spec.chartRef?.kind}`,
      ],
      [spec.kubeConfig && !spec.kubeConfig.secretRef, 'spec.kubeConfig.configMapRef (cloud provider authentication)'],
    ];
    for (const [value, field] of unsupported) {
      if (value) throw stalled(Reason.UnsupportedFeature, `${field} is not supported yet`);
    }
    if (this.deps.noCrossNamespaceRefs) {
      const ns = obj.metadata!.namespace!;
      const ref = sourceRefOf(obj);
      const dep = spec.dependsOn?.find((d) => d.namespace && d.namespace !== ns);
      const crossing =
        ref && ref.namespace !== ns
          ? `${ref.kind} '${ref.namespace}/${ref.name}'`
          : dep
            ? `dependency '${dep.namespace}/${dep.name}'`
            : '';
      if (crossing) {
        throw stalled(
          Reason.AccessDenied,
          `${crossing} is in another namespace, and cross-namespace references are not allowed on this controller`,
        );
      }
    }
    let readiness: (Compiled | undefined)[];
    let ignore: IgnoreRules | undefined;
    try {
      readiness = (spec.dependsOn ?? []).map((d, i) =>
        d.readyExpr ? compile(d.readyExpr, `spec.dependsOn[${i}].readyExpr`) : undefined,
      );
      const rules = spec.driftDetection?.ignore ?? [];
      ignore = rules.length > 0 ? compileIgnoreRules(rules, 'spec.driftDetection.ignore') : undefined;
    } catch (err) {
      if (err instanceof ExpressionError) throw stalled(Reason.InvalidCELExpression, err.message);
      if (err instanceof IgnoreRuleError) throw stalled(Reason.InvalidSpec, err.message);
      throw err;
    }
    const intervalMs = parseDuration(spec.interval);
    const timeoutMs = parseDuration(spec.timeout ?? '5m');
    run.checked = { spec, intervalMs, timeoutMs, readiness, ignore };
    const ns = obj.metadata!.namespace!;
    run.targetNamespace = spec.targetNamespace || ns;
    run.storageNamespace = spec.storageNamespace || ns;
    run.releaseName = releaseNameOf(obj.metadata!.name!, spec);
    run.ctx.status.storageNamespace = run.storageNamespace;
  }

  /** dependsOn: each HelmRelease Ready for its current generation, or its readyExpr true. */
  private dependencies({ obj, checked }: Run): void {
    for (const [i, dep] of (checked!.spec.dependsOn ?? []).entries()) {
      const key = `${dep.namespace ?? obj.metadata!.namespace}/${dep.name}`;
      const other = this.deps.releases.get(key);
      if (!other)
        throw waiting(Reason.DependencyNotReady, `dependency '${key}' not found`, this.deps.requeueDependencyMs);
      const expression = checked!.readiness[i];
      if (expression) {
        const result = evaluateBool(expression, { dep: other, self: obj });
        if (result === true) continue;
        const why = result === false ? 'is false' : `failed: ${result}`;
        throw waiting(
          Reason.DependencyNotReady,
          `dependency '${key}' is not ready: readyExpr ${why}`,
          this.deps.requeueDependencyMs,
        );
      }
      const ready = findCondition(other.status?.conditions, 'Ready');
      if (ready?.status !== 'True' || other.status?.observedGeneration !== other.metadata?.generation) {
        throw waiting(Reason.DependencyNotReady, `dependency '${key}' is not ready`, this.deps.requeueDependencyMs);
      }
    }
  }

  /**
   * The chart's artifact: spec.chart's HelmChart (created or brought in step first) or spec.chartRef's
   * source. A source that is not ready is waited for; its artifact re-queues this release at once.
   */
  private async chart(run: Run): Promise<void> {
    const { obj, ctx, checked } = run;
    const { spec } = checked!;
    const previous = obj.status?.helmChart;
    if (spec.chart) {
      const desired = desiredChart(obj, spec.chart, spec.interval);
      const ref = templateChartRef(obj, spec.chart);
      const key = `${ref.namespace}/${ref.name}`;
      if (previous && previous !== key) await this.deleteTemplateChart(previous);
      const live = this.deps.sources.HelmChart.get(key) as ChartObject | undefined;
      if (!chartMatches(live, desired)) await applyChart(this.deps.kubeConfig, desired);
      ctx.status.helmChart = key;
    } else if (previous) {
      await this.deleteTemplateChart(previous);
      delete ctx.status.helmChart;
    }
    const ref = sourceRefOf(obj)!;
    const name = `${ref.kind} '${ref.namespace}/${ref.name}'`;
    const source = this.chartSourceOf(obj);
    const wait = (why: string) => waiting(Reason.ArtifactFailed, `${name} ${why}`, this.deps.requeueDependencyMs);
    if (!source) throw wait('not found');
    if (source.metadata?.generation !== undefined && source.status?.observedGeneration !== source.metadata.generation) {
      throw wait('is not ready: its latest generation is not reconciled yet');
    }
    const artifact = source.status?.artifact;
    if (!artifact) {
      const ready = source.status?.conditions?.find((c) => c.type === 'Ready');
      throw wait(`is not ready: ${ready?.status === 'False' ? ready.message : 'it has no artifact yet'}`);
    }
    run.artifact = { url: artifact.url, revision: artifact.revision, digest: artifact.digest };
    let meta: ChartMeta;
    try {
      meta = await this.deps.charts.meta(run.artifact, checked!.timeoutMs, ctx.signal);
    } catch (err) {
      if (err instanceof ChartLoadError) throw failed(Reason.ArtifactFailed, err.message);
      throw err;
    }
    // A chart from an OCIRepository carries the artifact digest in its version, so that a new push
    // of the same version is a new release (as in Flux).
    const digest = ref.kind === 'OCIRepository' ? ociDigestOf(artifact.revision, artifact.digest) : undefined;
    if (digest) {
      run.ociDigest = digest;
      const hex = digest.split(':')[1]!.slice(0, 12);
      const version = meta.version.includes('+') ? `${meta.version}.${hex}` : `${meta.version}+${hex}`;
      run.versionOverride = version;
      run.chart = { name: meta.name, version };
    } else {
      run.chart = meta;
    }
  }

  /** Values from valuesFrom and spec.values; failures reset when what is attempted changed. */
  private async values(run: Run): Promise<void> {
    const { obj, ctx, checked } = run;
    const { spec } = checked!;
    try {
      run.values = await composeValues(
        obj.metadata!.namespace!,
        (spec.values ?? {}) as Values,
        spec.valuesFrom ?? [],
        this.deps.readValues(obj.metadata!.namespace!),
      );
    } catch (err) {
      if (err instanceof ValuesReferenceError) throw failed(Reason.ValuesError, err.message);
      throw err;
    }
    run.configDigest = valuesDigest(run.values);
    run.renderDigest = renderDigestOf(spec);
    const status = ctx.status;
    const annotations = obj.metadata?.annotations ?? {};
    const requested = annotations[REQUESTED_AT_ANNOTATION];
    const resetAt = annotations[RESET_AT_ANNOTATION];
    const resetRequested = !!resetAt && resetAt === requested && resetAt !== status.lastHandledResetAt;
    const forceAt = annotations[FORCE_AT_ANNOTATION];
    run.forceRequested = !!forceAt && forceAt === requested && forceAt !== status.lastHandledForceAt;
    const changed =
      status.lastAttemptedGeneration !== obj.metadata?.generation ||
      status.lastAttemptedRevision !== run.chart!.version ||
      status.lastAttemptedConfigDigest !== run.configDigest;
    if (changed || resetRequested) {
      status.failures = 0;
      status.installFailures = 0;
      status.upgradeFailures = 0;
    }
    if (resetRequested) status.lastHandledResetAt = resetAt;
    status.lastAttemptedGeneration = obj.metadata?.generation;
    status.lastAttemptedRevision = run.chart!.version;
    if (run.artifact!.digest) status.lastAttemptedRevisionDigest = run.artifact!.digest;
    status.lastAttemptedConfigDigest = run.configDigest;
  }

  private async target(run: Run): Promise<void> {
    try {
      run.target = await this.deps.targetFor(run.obj, run.storageNamespace!);
    } catch (err) {
      throw failed(Reason.InitFailed, errorMessage(err));
    }
    await this.retarget(run);
  }

  /**
   * A release that moved (a new releaseName, targetNamespace or storageNamespace) or whose chart is
   * another chart (unless upgrade.chartNameChangeStrategy is InPlaceUpdate) is uninstalled where
   * it was and installed anew, as Flux does: Helm cannot move a release.
   */
  private async retarget(run: Run): Promise<void> {
    const { obj, ctx, checked } = run;
    const cur = obj.status?.history?.[0];
    const oldStorage = obj.status?.storageNamespace;
    if (!cur) return;
    const moved =
      (oldStorage !== undefined && oldStorage !== run.storageNamespace) ||
      cur.name !== run.releaseName ||
      cur.namespace !== run.targetNamespace;
    const inPlace = checked!.spec.upgrade?.chartNameChangeStrategy === 'InPlaceUpdate';
    const renamed = !inPlace && cur.chartName !== run.chart!.name;
    if (!moved && !renamed) return;
    const storage = oldStorage ?? run.storageNamespace!;
    const old = moved && oldStorage !== run.storageNamespace ? await this.deps.targetFor(obj, storage) : run.target!;
    try {
      await this.actions.uninstall(old.helm, cur.name, checked!.spec);
      const why = moved
        ? 'its release target changed'
        : `its chart changed from ${cur.chartName} to ${run.chart!.name}`;
      ctx.event(
        'Normal',
        Reason.UninstallSucceeded,
        `Helm uninstall succeeded for release ${storage}/${cur.name}: ${why}`,
      );
    } catch (err) {
      if (!(err instanceof HelmHelperError && err.code === 'ReleaseNotFound')) {
        throw failed(
          Reason.UninstallFailed,
          `Helm uninstall failed for release ${storage}/${cur.name}: ${errorMessage(err)}`,
        );
      }
    }
    ctx.status.history = [];
    ctx.status.failures = 0;
    ctx.status.installFailures = 0;
    ctx.status.upgradeFailures = 0;
    delete ctx.status.inventory;
  }

  /** The state machine: one action at a time until in sync, out of moves, or a remediation ran. */
  private async release(run: Run): Promise<void> {
    const { ctx, checked } = run;
    const { spec } = checked!;
    const desired = this.desired(run);
    const done = new Set<string>();
    for (;;) {
      const { releases } = await this.deps.helm.history(
        { target: run.target!.helm, name: run.releaseName!, max: 20 },
        { signal: ctx.signal },
      );
      const latest = releases[0];
      const observed = observedOf(ctx.status);
      let drift: DriftEntry[] = [];
      const state = await determineState(latest, desired, observed, async () => {
        drift = await this.actions.detectDrift(run, latest!);
        return drift.length > 0 ? summarizeDrift(drift) : undefined;
      });
      if (state.name !== 'Drifted') {
        ctx.status.conditions = removeCondition(ctx.status.conditions, 'Drifted');
      } else {
        this.actions.reportDrift(run, latest!, drift);
      }
      if (state.name === 'Locked') this.checkLockAge(run, latest!);
      const next = nextAction(state, desired, observed, () => {
        const prev = previousRelease(ctx.status.history ?? [], this.actions.ignoringTestFailures(run));
        return !!prev && releases.some((r) => r.version === prev.version && r.digest === prev.digest);
      });
      if (next.type === 'none') return this.settle(run, state.name);
      if (next.type === 'exhausted') {
        throw this.exhausted(run, activeRemediation(desired, observed));
      }
      if (next.type === 'no-rollback-target') {
        throw stalled(
          Reason.MissingRollbackTarget,
          `Failed to perform remediation: ${next.reason}`,
          checked!.intervalMs,
        );
      }
      const kind = actionKind(next);
      if (done.has(kind)) {
        // Each kind of action runs once per reconcile; the next reconcile goes on, with backoff, or
        // after strategy.retryInterval for RetryOnFailure.
        const reason = this.readyReason(ctx);
        const message = this.readyMessage(ctx) ?? `release needs another ${next.type}`;
        const retryMs = this.actions.retryOnFailureMs(run);
        throw retryMs === undefined ? failed(reason, message) : waiting(reason, message, retryMs);
      }
      done.add(kind);
      if (run.forceRequested && (next.type === 'upgrade' || next.type === 'install')) {
        ctx.status.lastHandledForceAt = run.obj.metadata!.annotations![FORCE_AT_ANNOTATION];
        run.forceRequested = false;
        desired.forceRequested = false;
      }
      await ctx.progress(
        `Running '${next.type}' action with timeout of ${formatMs(this.actions.timeoutOf(next.type, spec))}`,
      );
      const stop = await this.act(run, next, latest);
      if (stop) {
        const r = activeRemediation(desired, observedOf(ctx.status));
        if (r && retriesExhausted(r)) throw this.exhausted(run, r);
        throw failed(this.readyReason(ctx), this.readyMessage(ctx) ?? 'release remediated');
      }
    }
  }

  /**
   * Out of retries: Stalled, and looked at again after the interval, when a change of values from
   * a ConfigMap or Secret (which resets the failures) lets it go on without a spec change.
   */
  private exhausted(run: Run, r: { action: string; failures: number } | undefined) {
    const { ctx } = run;
    const what = r?.action ?? ctx.status.lastAttemptedReleaseAction ?? 'install';
    const count = r?.failures ?? ctx.status.installFailures ?? 0;
    const last = ['Released', 'TestSuccess', 'Remediated']
      .map((type) => findCondition(ctx.status.conditions, type))
      .find((c) => c?.status === 'False')?.message;
    return stalled(
      Reason.RetriesExceeded,
      `Failed to ${what} after ${count} attempt(s)${last ? `: ${last}` : ''}`,
      run.checked!.intervalMs,
    );
  }

  /** Runs one action; true when the reconcile must stop after it (a remediation ran). */
  private async act(
    run: Run,
    next: Exclude<NextAction, { type: 'none' | 'exhausted' | 'no-rollback-target' }>,
    latest: ReleaseInfo | undefined,
  ): Promise<boolean> {
    switch (next.type) {
      case 'install':
      case 'upgrade':
        await this.actions.releaseAction(run, next.type);
        return false;
      case 'test':
        await this.actions.test(run);
        return false;
      case 'unlock':
        await this.actions.unlock(run, latest!);
        return false;
      case 'correct-drift':
        await this.actions.correct(run, latest!);
        return false;
      case 'rollback':
        await this.actions.rollback(run);
        return true;
      case 'uninstall':
        await this.actions.uninstallRemediation(run, latest!);
        return true;
    }
  }

  private desired(run: Run): Desired {
    const { spec } = run.checked!;
    const drift = spec.driftDetection?.mode ?? 'disabled';
    return {
      chartName: run.chart!.name,
      chartVersion: run.chart!.version,
      configDigest: run.configDigest!,
      renderDigest: run.renderDigest!,
      observedRenderDigest: renderDigestObserved(run.ctx.status),
      testEnabled: spec.test?.enable ?? false,
      testIgnoreFailures: spec.test?.ignoreFailures ?? false,
      installRemediation: spec.install?.remediation ?? {},
      upgradeRemediation: spec.upgrade?.remediation ?? {},
      installStrategy: spec.install?.strategy?.name === 'RetryOnFailure' ? 'RetryOnFailure' : 'RemediateOnFailure',
      upgradeStrategy: spec.upgrade?.strategy?.name === 'RetryOnFailure' ? 'RetryOnFailure' : 'RemediateOnFailure',
      driftMode: drift === 'enabled' || drift === 'warn' ? drift : 'disabled',
      forceRequested: run.forceRequested ?? false,
    };
  }

  /**
   * A release left pending (a crashed controller, a killed helm) blocks every action. It is
   * unlocked only once it is older than the action timeout: a younger one may still be worked on.
   */
  private checkLockAge(run: Run, latest: ReleaseInfo): void {
    const started = Date.parse(latest.lastDeployed ?? latest.firstDeployed ?? '');
    const action = latest.status.replace('pending-', '');
    const timeoutMs = this.actions.timeoutOf(action, run.checked!.spec);
    const age = Number.isNaN(started) ? Number.POSITIVE_INFINITY : run.ctx.now().getTime() - started;
    if (age < timeoutMs) {
      throw waiting(
        Reason.PendingRelease,
        `release ${fullReleaseName(latest)} is ${latest.status} since ${rfc3339(new Date(started))}; ` +
          `it is unlocked once older than its ${action} timeout (${formatMs(timeoutMs)})`,
        timeoutMs - age + 1000,
      );
    }
  }

  /** In sync (or drifted in warn mode): Ready from the conditions the actions left. */
  private settle(run: Run, state: string): void {
    const { ctx } = run;
    const cur = ctx.status.history?.[0];
    if (isTrue(ctx.status.conditions, 'Remediated') && cur && (state === 'InSync' || state === 'Drifted')) {
      // The rolled-back release matches what is asked now: it is a release like any other.
      const message = `Helm upgrade succeeded for ${releaseWithChart(cur)}`;
      ctx.status.conditions = removeCondition(ctx.status.conditions, 'Remediated');
      this.actions.mark(ctx, 'Released', 'True', Reason.UpgradeSucceeded, message);
    }
    if (run.final?.type === 'error') throw failed(run.final.reason, run.final.message);
    const test = findCondition(ctx.status.conditions, 'TestSuccess');
    const released = findCondition(ctx.status.conditions, 'Released');
    const source = run.checked!.spec.test?.enable && test?.status === 'True' ? test : released;
    run.final = {
      type: 'success',
      reason: source?.reason ?? Reason.ReconciliationSucceeded,
      message: source?.message ?? `Release ${run.targetNamespace}/${run.releaseName} is in sync`,
      requeueAfterMs: run.checked!.intervalMs,
    };
  }

  private readyReason(ctx: Ctx): string {
    for (const type of ['Remediated', 'TestSuccess', 'Released']) {
      const c = findCondition(ctx.status.conditions, type);
      if (c && (c.status === 'False' || type === 'Remediated')) return c.reason;
    }
    return Reason.ReconciliationFailed;
  }

  private readyMessage(ctx: Ctx): string | undefined {
    for (const type of ['Remediated', 'TestSuccess', 'Released']) {
      const c = findCondition(ctx.status.conditions, type);
      if (c && (c.status === 'False' || type === 'Remediated')) return c.message;
    }
    return undefined;
  }

  /** Deletion: uninstall (unless suspended or never installed), delete the HelmChart template, let go. */
  private async finalize(obj: HelmRelease, ctx: Ctx): Promise<Outcome> {
    if (!obj.spec?.suspend && (obj.status?.history?.length ?? 0) > 0) {
      const storageNamespace = obj.status?.storageNamespace ?? obj.spec?.storageNamespace ?? obj.metadata!.namespace!;
      const name = releaseNameOf(obj.metadata!.name!, obj.spec);
      try {
        const target = await this.deps.targetFor(obj, storageNamespace);
        await this.actions.uninstall(target.helm, name, obj.spec);
        ctx.event(
          'Normal',
          Reason.UninstallSucceeded,
          `Helm uninstall succeeded for release ${storageNamespace}/${name}`,
        );
      } catch (err) {
        if (!(err instanceof HelmHelperError && err.code === 'ReleaseNotFound')) {
          const message = `Helm uninstall failed for release ${storageNamespace}/${name}: ${errorMessage(err)}`;
          throw failed(Reason.UninstallFailed, message);
        }
      }
    }
    if (obj.status?.helmChart) await this.deleteTemplateChart(obj.status.helmChart);
    await setFinalizer(this.deps.kubeConfig, obj, false);
    ctx.skipStatus = true;
    return { type: 'success', reason: Reason.Succeeded, message: 'release uninstalled' };
  }

  private async deleteTemplateChart(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    await deleteChart(this.deps.kubeConfig, { namespace, name });
  }
}

function actionKind(next: NextAction): string {
  switch (next.type) {
    case 'install':
    case 'upgrade':
      return 'release';
    case 'rollback':
    case 'uninstall':
      return 'remediate';
    default:
      return next.type;
  }
}

/** The release name: spec.releaseName, else [<targetNamespace>-]<name>, shortened as Flux does past 53 characters. */
export function releaseNameOf(
  name: string,
  spec: Pick<HelmReleaseSpec, 'releaseName' | 'targetNamespace'> | undefined,
): string {
  if (spec?.releaseName) return spec.releaseName;
  const full = spec?.targetNamespace ? `${spec.targetNamespace}-${name}` : name;
  if (full.length <= 53) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 12);
  return `${full.slice(0, 40)}-${hash}`;
}

function sourceRefOf(
  obj: HelmRelease,
): { kind: 'HelmChart' | 'OCIRepository'; namespace: string; name: string } | undefined {
  const ns = obj.metadata?.namespace ?? '';
  const spec = obj.spec;
  if (spec?.chartRef) {
    const kind = spec.chartRef.kind;
    if (kind !== 'HelmChart' && kind !== 'OCIRepository') return undefined;
    return { kind, namespace: spec.chartRef.namespace ?? ns, name: spec.chartRef.name };
  }
  if (spec?.chart) return { kind: 'HelmChart', ...templateChartRef(obj, spec.chart) };
  return undefined;
}

/** "sha256:<hex>" of an OCI artifact: from its revision (<tag>@sha256:<hex>) or its digest. */
function ociDigestOf(revision: string, digest: string | undefined): string | undefined {
  const at = revision.lastIndexOf('@');
  const fromRevision = at >= 0 ? revision.slice(at + 1) : revision.startsWith('sha256:') ? revision : undefined;
  return fromRevision ?? digest;
}

function digestJson(v: unknown): string {
  return `sha256:${createHash('sha256')
    .update(JSON.stringify(v ?? null))
    .digest('hex')}`;
}

/** Digests of spec.postRenderers and spec.commonMetadata: a change of either is a new release. */
function renderDigestOf(spec: HelmReleaseSpec): { post: string; common: string } {
  return { post: digestJson(spec.postRenderers ?? []), common: digestJson(spec.commonMetadata ?? {}) };
}

function renderDigestObserved(status: HelmReleaseStatus): { post?: string; common?: string } {
  return { post: status.observedPostRenderersDigest, common: status.observedCommonMetadataDigest };
}

function observedOf(status: HelmReleaseStatus): Observed {
  return {
    history: (status.history ?? []) as ReleaseRecord[],
    lastAttemptedReleaseAction: status.lastAttemptedReleaseAction as Observed['lastAttemptedReleaseAction'],
    installFailures: status.installFailures ?? 0,
    upgradeFailures: status.upgradeFailures ?? 0,
  };
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m0s`;
  if (ms % 1000 === 0) return ms >= 60_000 ? `${Math.floor(ms / 60_000)}m${(ms % 60_000) / 1000}s` : `${ms / 1000}s`;
  return `${ms}ms`;
}
