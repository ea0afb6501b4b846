// Kustomization: wait for dependencies, take the source's artifact, build it with kustomize,
// substitute variables, apply it server-side, prune what left the source, and wait for health.
// Nothing is applied or pruned for a revision that fails to download, build or validate.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { createHmac, randomBytes } from 'node:crypto';
import { KustomizationKind, type KustomizationSpec, type KustomizationStatus } from '../api/kustomize/kustomization.ts';
import { checkSpec } from '../api/validate.ts';
import type { Action } from '../runtime/apply/changeset.ts';
import type { InventoryEntry } from '../runtime/apply/inventory.ts';
import { removeCondition, setCondition } from '../runtime/conditions.ts';
import { REQUESTED_AT_ANNOTATION, type ReconcileContext, type Reconciler } from '../runtime/controller.ts';
import { parseDuration } from '../runtime/duration.ts';
import { hasFinalizer, setFinalizer } from '../runtime/finalizers.ts';
import type { Informer } from '../runtime/informer.ts';
import { failed, stalled, superseded, waiting, type Outcome } from '../runtime/outcome.ts';
import { runSteps, type Recipe } from '../runtime/steps.ts';
import { digestOf, recordSnapshot } from '../runtime/history.ts';
import { Reason } from '../runtime/reasons.ts';
import { ExpressionError, healthExpressions, type CustomHealth } from '../runtime/apply/expressions.ts';
import type { WaitOptions as HealthWait } from '../runtime/apply/health.ts';
import { compileIgnoreRules, IgnoreRuleError, type IgnoreRules } from '../runtime/apply/ignore.ts';
import {
  readyExpressions,
  sourceKey,
  unreadyDependency,
  type Kustomization,
  type Readiness,
  type Source,
} from './dependencies.ts';
import { errorMessage } from '../runtime/api-errors.ts';

type Ctx = ReconcileContext<KustomizationStatus>;
export type { InventoryEntry, Action };

export const NAME_LABEL = 'kustomize.toolkit.fluxcd.io/name';
export const NAMESPACE_LABEL = 'kustomize.toolkit.fluxcd.io/namespace';
export const FIELD_MANAGER = 'kustomize-controller';

/** The work itself, injected so that the order of steps and the status they leave can be tested alone. */
export interface KustomizeSteps {
  /** The artifact downloaded, verified and unpacked; read-only, until released. */
  fetch(url: string, digest: string | undefined, timeoutMs: number): Promise<{ dir: string; release(): void }>;
  /** kustomize build of spec.path of the unpacked artifact `dir`, then post-build substitution and commonMetadata. */
  build(dir: string, obj: Kustomization, spec: KustomizationSpec, timeoutMs: number): Promise<KubernetesObject[]>;
  /**
   * Applies; returns what happened per object (`id` is Kind/namespace/name), the new inventory and
   * the objects as the API server returned them, by inventory id.
   */
  apply(objects: KubernetesObject[], opts: { force: boolean; ignore?: IgnoreRules }): Promise<Applied>;
  prune(stale: InventoryEntry[], owner: Record<string, string>): Promise<string[]>;
  /** Resolves once none of the objects exists any more; throws naming those left at the timeout. */
  waitForTermination(entries: InventoryEntry[], timeoutMs: number): Promise<void>;
  /** Resolves once all are healthy; throws naming those that are not at the timeout, or when aborted. */
  waitForHealth(entries: InventoryEntry[], timeoutMs: number, opts: HealthWait): Promise<void>;
}

export interface Applied {
  changes: { id: string; action: Action }[];
  inventory: InventoryEntry[];
  observed?: ReadonlyMap<string, KubernetesObject>;
}

interface Checked {
  spec: KustomizationSpec;
  customHealth: CustomHealth;
  readiness: Readiness;
  ignore: IgnoreRules;
}

export interface StepsTarget {
  namespace: string;
  serviceAccountName?: string;
  kubeConfig?: KustomizationSpec['kubeConfig'];
}

export interface KustomizationDeps {
  kubeConfig: KubeConfig;
  kustomizations: Informer<Kustomization>;
  /** The sources by kind (GitRepository, OCIRepository), read alike: their status.artifact. */
  sources: Readonly<Partial<Record<SourceKind, Informer<Source>>>>;
  /**
   * The steps for the cluster and account of a Kustomization: spec.kubeConfig's cluster, as
   * spec.serviceAccountName (impersonated) when it names one. Throws when the kubeconfig cannot be used.
   */
  stepsFor(target: StepsTarget): Promise<KustomizeSteps>;
  requeueDependencyMs: number;
  /** --no-cross-namespace-refs: sourceRef and dependsOn stay in the Kustomization's namespace. */
  noCrossNamespaceRefs?: boolean;
  /** --default-service-account: impersonated when spec.serviceAccountName is empty. */
  defaultServiceAccount?: string;
}

export const SUPPORTED_SOURCES = ['GitRepository', 'OCIRepository'] as const;
export type SourceKind = (typeof SUPPORTED_SOURCES)[number];

/** What the steps of one reconcile hand each other. */
interface Run {
  obj: Kustomization;
  ctx: Ctx;
  owner: Record<string, string>;
  started: Date;
  checked?: Checked;
  timeoutMs?: number;
  artifact?: NonNullable<NonNullable<Source['status']>['artifact']>;
  /** A new generation or source revision: progress is shown, and health waits say so. */
  news?: boolean;
  steps?: KustomizeSteps;
  unpacked?: { dir: string; release(): void };
  objects?: KubernetesObject[];
  /** Digest of the built manifests, for status.history; set once the build passed. */
  digest?: string;
  /** What else decides whether the manifests must be applied (Secret values, dependencies). */
  inputs?: string;
  applied?: Applied;
  /** The new revision built to what was applied last, within the interval: nothing applied. */
  unchanged?: LastApply;
}

/** The last full apply of a Kustomization by this process. */
interface LastApply {
  revision: string;
  generation: number | undefined;
  digest: string;
  inputs: string;
  /** When it was applied (ms since the epoch). */
  at: number;
}

export class KustomizationReconciler implements Reconciler<Kustomization> {
  readonly failureReason = Reason.ReconciliationFailed;
  private readonly deps: KustomizationDeps;
  /**
   * The ordered steps of a reconcile. Nothing is applied or pruned for a revision that fails to
   * download, build or validate; a failed apply prunes nothing.
   */
  readonly recipe: Recipe<Run> = {
    steps: [
      { name: 'finalizer', reason: Reason.ReconciliationFailed, run: (r) => this.ensureFinalizer(r) },
      { name: 'validate', reason: Reason.InvalidSpec, run: (r) => this.validateStep(r) },
      { name: 'dependencies', reason: Reason.DependencyNotReady, run: (r) => this.dependencies(r) },
      { name: 'source', reason: Reason.ArtifactFailed, run: (r) => this.source(r) },
      { name: 'target', reason: Reason.ReconciliationFailed, run: (r) => this.target(r) },
      { name: 'fetch', reason: Reason.ArtifactFailed, run: (r) => this.fetch(r) },
      { name: 'build', reason: Reason.BuildFailed, run: (r) => this.build(r) },
      { name: 'apply', reason: Reason.ReconciliationFailed, run: (r) => this.apply(r) },
      { name: 'prune', reason: Reason.PruneFailed, run: (r) => this.prune(r) },
      { name: 'health', reason: Reason.HealthCheckFailed, run: (r) => this.health(r) },
    ],
    success: (r) => {
      const interval = parseDuration(r.checked!.spec.interval);
      const key = r.ctx.key;
      if (!r.unchanged) {
        this.lastApplies.set(key, {
          revision: r.artifact!.revision,
          generation: r.obj.metadata?.generation,
          digest: r.digest!,
          inputs: r.inputs!,
          at: r.started.getTime(),
        });
      }
      // Drift correction stays due one interval after the last full apply, whatever came between.
      const due = r.unchanged ? Math.max(r.unchanged.at + interval - r.ctx.now().getTime(), 1000) : interval;
      return {
        type: 'success',
        reason: Reason.ReconciliationSucceeded,
        message: `Applied revision: ${r.artifact!.revision}`,
        requeueAfterMs: due,
      };
    },
  };

  /**
   * The last full apply of each Kustomization, in this process only (a restart applies everything
   * once): what lets a new revision that builds to the same manifests skip the apply.
   */
  private readonly lastApplies = new Map<string, LastApply>();
  /** Keys the hash of Secret values and dependency revisions; never leaves the process. */
  private readonly inputsKey = randomBytes(32);

  constructor(deps: KustomizationDeps) {
    this.deps = deps;
  }

  sourceOf = (k: Kustomization): Source | undefined => {
    const ref = k.spec?.sourceRef;
    const informer = ref && this.deps.sources[ref.kind as SourceKind];
    return informer?.get(`${ref.namespace ?? k.metadata?.namespace}/${ref.name}`);
  };

  /**
   * Runs the steps, records status.history for manifests that built, and retries failures with
   * the runtime's backoff, never waiting longer than spec.retryInterval (default spec.interval),
   * which is when Flux retries.
   */
  async reconcile(obj: Kustomization, ctx: Ctx): Promise<Outcome> {
    const owner = { [NAME_LABEL]: obj.metadata!.name!, [NAMESPACE_LABEL]: obj.metadata!.namespace! };
    if (obj.metadata?.deletionTimestamp) return this.finalize(obj, ctx, owner);
    const run: Run = { obj, ctx, owner, started: ctx.now() };
    const outcome = await runSteps(this.recipe, run, ctx, obj.metadata?.generation);
    if (outcome.type !== 'success') this.lastApplies.delete(ctx.key);
    if (run.digest) this.record(run, outcome.reason);
    const retryMs = retryIntervalOf(obj);
    if (outcome.type === 'error' && outcome.requeueAfterMs === undefined && retryMs !== undefined) {
      return { ...outcome, requeueAfterMs: retryMs };
    }
    return outcome;
  }

  private async ensureFinalizer({ obj }: Run): Promise<void> {
    if (!hasFinalizer(obj)) await setFinalizer(this.deps.kubeConfig, obj, true);
  }

  private validateStep(run: Run): void {
    run.checked = this.validate(run.obj);
    run.timeoutMs = parseDuration(run.checked.spec.timeout ?? run.checked.spec.interval);
  }

  private dependencies({ obj, checked }: Run): void {
    const blocker = unreadyDependency(obj, checked!.readiness, this.deps.kustomizations, this.sourceOf);
    if (blocker) throw waiting(Reason.DependencyNotReady, blocker, this.deps.requeueDependencyMs);
  }

  /**
   * The source's artifact. A missing source, or one without an artifact yet, is not a failure of
   * this object: like Flux, wait for it (its first artifact re-queues this Kustomization at once,
   * through the source informer).
   */
  private async source(run: Run): Promise<void> {
    const { obj, ctx } = run;
    const source = this.sourceOf(obj);
    const [sourceName] = sourceKey(obj);
    if (!source)
      throw waiting(Reason.ArtifactFailed, `source '${sourceName}' not found`, this.deps.requeueDependencyMs);
    const artifact = source.status?.artifact;
    if (!artifact) {
      throw waiting(
        Reason.ArtifactFailed,
        `source '${sourceName}' is not ready: it has no artifact yet`,
        this.deps.requeueDependencyMs,
      );
    }
    run.artifact = artifact;
    // Real work ahead: say so once, before the long part. A retry of the same revision and a
    // no-op resync write nothing here.
    run.news =
      obj.status?.observedGeneration !== obj.metadata?.generation ||
      obj.status?.lastAttemptedRevision !== artifact.revision;
    ctx.status.lastAttemptedRevision = artifact.revision;
    ctx.workingOn(artifact.revision);
    // When the new revision may build to what is applied (see apply), the progress is written
    // only once the build says otherwise: an unchanged Kustomization costs one status write.
    if (run.news && !this.mayBeUnchanged(run)) {
      const timeout = run.checked!.spec.timeout ?? run.checked!.spec.interval;
      await ctx.progress(`Fetching manifests for revision ${artifact.revision} with a timeout of ${timeout}`);
    }
  }

  /** The cluster and account to act as (a kubeconfig Secret is read here, not while waiting). */
  private async target(run: Run): Promise<void> {
    run.steps = await this.deps.stepsFor(this.targetOf(run.obj));
  }

  private async fetch(run: Run): Promise<void> {
    run.unpacked = await run.steps!.fetch(run.artifact!.url, run.artifact!.digest, run.timeoutMs!);
  }

  private async build(run: Run): Promise<void> {
    try {
      run.objects = await run.steps!.build(run.unpacked!.dir, run.obj, run.checked!.spec, run.timeoutMs!);
    } finally {
      run.unpacked!.release();
    }
    for (const o of run.objects) o.metadata = { ...o.metadata, labels: { ...o.metadata?.labels, ...run.owner } };
    // Secret values stay out of the digest: it is in status, and a decrypted value must not be
    // guessable from it.
    run.digest = digestOf(run.objects.map(withoutSecretValues));
    run.inputs = this.inputsOf(run);
  }

  /**
   * A keyed hash of what the digest leaves out but the apply depends on: the Secrets' values
   * (decrypted or substituted) and the revisions the dependencies applied.
   */
  private inputsOf({ obj, objects }: Run): string {
    const hmac = createHmac('sha256', this.inputsKey);
    for (const o of objects!) {
      if (o.kind === 'Secret' && o.apiVersion === 'v1') {
        const { data, stringData } = o as KubernetesObject & { data?: unknown; stringData?: unknown };
        hmac.update(JSON.stringify([o.metadata?.namespace, o.metadata?.name, data, stringData]));
      }
    }
    for (const d of obj.spec?.dependsOn ?? []) {
      const key = `${d.namespace ?? obj.metadata?.namespace}/${d.name}`;
      hmac.update(`${key}@${this.deps.kustomizations.get(key)?.status?.lastAppliedRevision ?? ''}\n`);
    }
    return hmac.digest('hex');
  }

  /**
   * Whether this reconcile brings only a new source revision to a Kustomization this process
   * applied successfully less than an interval ago: same generation, no reconcile request.
   */
  private mayBeUnchanged({ obj, ctx, artifact, checked }: Run): LastApply | undefined {
    const last = this.lastApplies.get(ctx.key);
    if (!last || last.revision === artifact!.revision || last.generation !== obj.metadata?.generation) return undefined;
    const requested = obj.metadata?.annotations?.[REQUESTED_AT_ANNOTATION];
    if (requested !== undefined && requested !== obj.status?.lastHandledReconcileAt) return undefined;
    if (ctx.now().getTime() - last.at >= parseDuration(checked!.spec.interval)) return undefined;
    return last;
  }

  private async apply(run: Run): Promise<void> {
    const { spec, ignore } = run.checked!;
    const last = this.mayBeUnchanged(run);
    if (last && last.digest === run.digest && last.inputs === run.inputs) {
      // Nothing to apply, prune or wait for: record the revision (success does), write nothing else.
      run.unchanged = last;
      return;
    }
    if (last && run.news) {
      const timeout = spec.timeout ?? spec.interval;
      await run.ctx.progress(`Fetching manifests for revision ${run.artifact!.revision} with a timeout of ${timeout}`);
    }
    run.applied = await run.steps!.apply(run.objects!, { force: spec.force ?? false, ignore });
    // The inventory always lists what is applied now, so that a later prune can find it even when
    // this one is disabled or fails.
    run.ctx.status.inventory = { entries: run.applied.inventory };
  }

  private async prune(run: Run): Promise<void> {
    if (run.unchanged) return;
    const { ctx, applied, obj } = run;
    const previous = obj.status?.inventory?.entries ?? [];
    const current = new Set(applied!.inventory.map((e) => e.id));
    const stale = previous.filter((e) => !current.has(e.id));
    let deleted: string[] = [];
    try {
      if (run.checked!.spec.prune && stale.length > 0) deleted = await run.steps!.prune(stale, run.owner);
    } finally {
      const changed = applied!.changes.filter((c) => c.action !== 'unchanged' && c.action !== 'skipped');
      if (changed.length + deleted.length > 0) {
        const lines = [...changed.map((c) => `${c.id} ${c.action}`), ...deleted.map((id) => `${id} deleted`)];
        ctx.event('Normal', 'Progressing', lines.join('\n'));
      }
    }
  }

  /**
   * wait: true checks every applied object, else spec.healthChecks. A newer request for this
   * Kustomization (a new revision or generation) cancels the wait, as Flux's
   * CancelHealthCheckOnNewRevision does: the new one is reconciled next.
   */
  private async health(run: Run): Promise<void> {
    const { obj, ctx, checked } = run;
    if (run.unchanged) {
      ctx.status.lastAppliedRevision = run.artifact!.revision;
      return;
    }
    const { spec, customHealth } = checked!;
    const checks = spec.wait ? run.applied!.inventory : this.healthCheckEntries(obj, spec);
    // Applied means applied and healthy, as in Flux: only then is the revision recorded.
    const applied = () => {
      ctx.status.lastAppliedRevision = run.artifact!.revision;
    };
    if (checks.length === 0) {
      ctx.status.conditions = removeCondition(ctx.status.conditions, 'Healthy');
      applied();
      return;
    }
    const setHealthy = (status: 'True' | 'False', reason: string, message: string) => {
      const condition = { type: 'Healthy', status, reason, message, observedGeneration: obj.metadata?.generation };
      ctx.status.conditions = setCondition(ctx.status.conditions, condition, ctx.now());
    };
    try {
      await run.steps!.waitForHealth(checks, run.timeoutMs!, {
        observed: run.applied!.observed,
        custom: customHealth,
        signal: ctx.signal,
        onWaiting: run.news
          ? (pending) =>
              ctx.progress(`Health check in progress for revision ${run.artifact!.revision}: waiting for ${pending}`)
          : undefined,
      });
    } catch (err) {
      if (ctx.signal.aborted) {
        const trigger = String(ctx.signal.reason);
        ctx.event(
          'Normal',
          Reason.HealthCheckCanceled,
          `Health checks canceled due to new reconciliation triggered by ${trigger}`,
        );
        throw superseded(Reason.HealthCheckCanceled, `New reconciliation triggered by ${trigger}`);
      }
      const message = `health check failed after ${spec.timeout ?? spec.interval}: ${errorMessage(err)}`;
      setHealthy('False', Reason.HealthCheckFailed, message);
      throw failed(Reason.HealthCheckFailed, message);
    }
    setHealthy('True', Reason.Succeeded, 'Health check passed');
    applied();
  }

  /** status.history: what these manifests gave, success or the reason of the step that failed. */
  private record({ ctx, artifact, digest, started }: Run, result: string): void {
    const origin = artifact!.metadata?.['org.opencontainers.image.revision'];
    const metadata = { revision: artifact!.revision, ...(origin ? { originRevision: origin } : {}) };
    ctx.status.history = recordSnapshot(ctx.status.history, {
      digest: digest!,
      status: result,
      at: ctx.now(),
      durationMs: ctx.now().getTime() - started.getTime(),
      metadata,
    });
    if (result === Reason.ReconciliationSucceeded) ctx.status.lastAppliedRevision = artifact!.revision;
  }

  /** The spec, defaulted and checked, with its expressions and rules compiled once. */
  private validate(obj: Kustomization): Checked {
    const { spec, errors } = checkSpec<KustomizationSpec>(KustomizationKind, obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    if (!(SUPPORTED_SOURCES as readonly string[]).includes(spec.sourceRef.kind)) {
      throw stalled(
        Reason.UnsupportedFeature,
        `source kind ${spec.sourceRef.kind} is not supported yet; use a GitRepository or an OCIRepository`,
      );
    }
    const unsupported: [unknown, string][] = [
      [spec.kubeConfig && !spec.kubeConfig.secretRef, 'spec.kubeConfig.configMapRef (cloud provider authentication)'],
      [spec.decryption?.serviceAccountName, 'spec.decryption.serviceAccountName (KMS workload identity)'],
    ];
    for (const [value, field] of unsupported)
      if (value) throw stalled(Reason.UnsupportedFeature, `${field} is not supported yet`);
    const crossing = this.crossNamespaceRef(obj, spec);
    if (crossing)
      throw stalled(
        Reason.AccessDenied,
        `${crossing} is in another namespace, and cross-namespace references are not allowed on this controller`,
      );
    try {
      return {
        spec,
        customHealth: healthExpressions(spec.healthCheckExprs ?? []),
        readiness: readyExpressions(spec),
        ignore: compileIgnoreRules(spec.driftIgnoreRules ?? []),
      };
    } catch (err) {
      if (err instanceof ExpressionError) throw stalled(Reason.InvalidCELExpression, err.message);
      if (err instanceof IgnoreRuleError) throw stalled(Reason.InvalidSpec, err.message);
      throw err;
    }
  }

  private targetOf(obj: Kustomization): StepsTarget {
    const serviceAccountName = obj.spec?.serviceAccountName || this.deps.defaultServiceAccount || undefined;
    return { namespace: obj.metadata!.namespace!, serviceAccountName, kubeConfig: obj.spec?.kubeConfig };
  }

  /** With --no-cross-namespace-refs, the first reference to another namespace. */
  private crossNamespaceRef(obj: Kustomization, spec: KustomizationSpec): string | undefined {
    if (!this.deps.noCrossNamespaceRefs) return undefined;
    const ns = obj.metadata!.namespace!;
    const ref = spec.sourceRef;
    if (ref.namespace && ref.namespace !== ns) return `spec.sourceRef ${ref.kind}/${ref.namespace}/${ref.name}`;
    const dep = spec.dependsOn?.find((d) => d.namespace && d.namespace !== ns);
    return dep ? `spec.dependsOn ${dep.namespace}/${dep.name}` : undefined;
  }

  private healthCheckEntries(obj: Kustomization, spec: KustomizationSpec): InventoryEntry[] {
    return (spec.healthChecks ?? []).map((h) => {
      const [group, version] = (h.apiVersion ?? '').includes('/')
        ? h.apiVersion!.split('/')
        : ['', h.apiVersion ?? 'v1'];
      return { id: `${h.namespace ?? obj.metadata?.namespace}_${h.name}_${group}_${h.kind}`, v: version! };
    });
  }

  /**
   * deletionPolicy: MirrorPrune (default: delete when spec.prune), Delete, WaitForTermination
   * (delete, then wait up to spec.timeout for the objects to be gone), Orphan. A suspended
   * Kustomization leaves its objects, as in Flux. A failed delete keeps the finalizer and retries;
   * objects still terminating at the timeout get a Warning event and the finalizer goes.
   */
  private async finalize(obj: Kustomization, ctx: Ctx, owner: Record<string, string>): Promise<Outcome> {
    const policy = obj.spec?.deletionPolicy ?? 'MirrorPrune';
    const remove =
      policy === 'Delete' || policy === 'WaitForTermination' || (policy === 'MirrorPrune' && obj.spec?.prune);
    const entries = obj.status?.inventory?.entries ?? [];
    // Like Flux: when the cluster or account to act as is gone, the objects cannot be reached; say
    // which were left and let the Kustomization go.
    const steps =
      remove && !obj.spec?.suspend && entries.length > 0
        ? await this.deps.stepsFor(this.targetOf(obj)).catch((err: unknown) => err as Error)
        : undefined;
    if (steps instanceof Error) {
      ctx.event(
        'Warning',
        Reason.PruneFailed,
        `objects not pruned: ${steps.message}; left: ${entries.map((e) => e.id).join(', ')}`,
      );
    } else if (steps) {
      const deleted = await steps.prune(entries, owner);
      if (deleted.length > 0) ctx.event('Normal', 'Progressing', deleted.map((id) => `${id} deleted`).join('\n'));
      if (policy === 'WaitForTermination') {
        const timeout = obj.spec?.timeout ?? obj.spec?.interval ?? '5m';
        try {
          await steps.waitForTermination(entries, parseDuration(timeout));
        } catch (err) {
          ctx.event('Warning', Reason.PruneFailed, `failed to wait for resources termination: ${errorMessage(err)}`);
        }
      }
    }
    await setFinalizer(this.deps.kubeConfig, obj, false);
    ctx.skipStatus = true;
    return { type: 'success', reason: Reason.Succeeded, message: `deleted with policy ${policy}` };
  }
}

function withoutSecretValues(o: KubernetesObject): KubernetesObject {
  if (o.kind !== 'Secret' || o.apiVersion !== 'v1') return o;
  const {
    data: _data,
    stringData: _stringData,
    ...rest
  } = o as KubernetesObject & { data?: unknown; stringData?: unknown };
  return rest;
}

function retryIntervalOf(obj: Kustomization): number | undefined {
  try {
    const text = obj.spec?.retryInterval ?? obj.spec?.interval;
    return text ? parseDuration(text) : undefined;
  } catch {
    return undefined; // an invalid interval is reported by validation
  }
}
