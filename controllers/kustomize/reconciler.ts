// Kustomization: wait for dependencies, take the source's artifact, build it with kustomize,
// substitute variables, apply it server-side, prune what left the source, and wait for health.
// Nothing is applied or pruned for a revision that fails to download, build or validate.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { KustomizationKind, type KustomizationSpec, type KustomizationStatus } from '../api/kustomize/kustomization.ts';
import { checkSpec } from '../api/validate.ts';
import type { Action } from '../runtime/apply/changeset.ts';
import type { InventoryEntry } from '../runtime/apply/inventory.ts';
import { removeCondition, setCondition } from '../runtime/conditions.ts';
import type { ReconcileContext, Reconciler } from '../runtime/controller.ts';
import { parseDuration } from '../runtime/duration.ts';
import { hasFinalizer, setFinalizer } from '../runtime/finalizers.ts';
import type { Informer } from '../runtime/informer.ts';
import { ReconcileError, failed, stalled, waiting, type Outcome } from '../runtime/outcome.ts';
import { digestOf, recordSnapshot } from '../runtime/history.ts';
import { Reason } from '../runtime/reasons.ts';
import { ExpressionError, healthExpressions, type CustomHealth } from '../runtime/apply/expressions.ts';
import { compileIgnoreRules, IgnoreRuleError, type IgnoreRules } from '../runtime/apply/ignore.ts';
import {
  readyExpressions,
  sourceKey,
  unreadyDependency,
  type Kustomization,
  type Readiness,
  type Source,
} from './dependencies.ts';

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
  /**
   * `observed`: objects just read or written, so that those already healthy need no request;
   * `custom`: spec.healthCheckExprs, in place of kstatus for their kinds.
   */
  waitForHealth(
    entries: InventoryEntry[],
    timeoutMs: number,
    opts: { observed?: ReadonlyMap<string, KubernetesObject>; custom?: CustomHealth },
  ): Promise<void>;
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
  sources: Informer<Source>;
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

const SUPPORTED_SOURCES = ['GitRepository'];

export class KustomizationReconciler implements Reconciler<Kustomization> {
  readonly failureReason = Reason.ReconciliationFailed;
  private readonly deps: KustomizationDeps;

  constructor(deps: KustomizationDeps) {
    this.deps = deps;
  }

  sourceOf = (k: Kustomization): Source | undefined => {
    const ref = k.spec?.sourceRef;
    if (ref?.kind !== 'GitRepository') return undefined;
    return this.deps.sources.get(`${ref.namespace ?? k.metadata?.namespace}/${ref.name}`);
  };

  /**
   * Failures are retried with the runtime's backoff, never waiting longer than spec.retryInterval
   * (default spec.interval), which is when Flux retries.
   */
  async reconcile(obj: Kustomization, ctx: Ctx): Promise<Outcome> {
    try {
      return await this.run(obj, ctx);
    } catch (err) {
      const retryMs = retryIntervalOf(obj);
      if (retryMs === undefined || obj.metadata?.deletionTimestamp) throw err;
      if (err instanceof ReconcileError) {
        if (err.outcome !== 'error' || err.requeueAfterMs !== undefined) throw err;
        throw failed(err.reason, err.message, retryMs);
      }
      throw failed(this.failureReason, err instanceof Error ? err.message : String(err), retryMs);
    }
  }

  private async run(obj: Kustomization, ctx: Ctx): Promise<Outcome> {
    const started = ctx.now();
    const owner = { [NAME_LABEL]: obj.metadata!.name!, [NAMESPACE_LABEL]: obj.metadata!.namespace! };
    if (obj.metadata?.deletionTimestamp) return this.finalize(obj, ctx, owner);
    if (!hasFinalizer(obj)) await setFinalizer(this.deps.kubeConfig, obj, true);
    const checked = this.validate(obj);
    const { spec } = checked;
    const interval = parseDuration(spec.interval);
    const timeoutMs = parseDuration(spec.timeout ?? spec.interval);

    const blocker = unreadyDependency(obj, checked.readiness, this.deps.kustomizations, this.sourceOf);
    if (blocker) throw waiting(Reason.DependencyNotReady, blocker, this.deps.requeueDependencyMs);

    const source = this.sourceOf(obj);
    const [sourceName] = sourceKey(obj);
    // Not a failure of this object: like Flux, wait for the source (its first artifact re-queues
    // this Kustomization at once, through the source informer).
    if (!source)
      throw waiting(Reason.ArtifactFailed, `source '${sourceName}' not found`, this.deps.requeueDependencyMs);
    const artifact = source.status?.artifact;
    if (!artifact)
      throw waiting(
        Reason.ArtifactFailed,
        `source '${sourceName}' is not ready: it has no artifact yet`,
        this.deps.requeueDependencyMs,
      );
    const revision = artifact.revision;
    ctx.status.lastAttemptedRevision = revision;
    // The cluster and account to act as (a kubeconfig Secret is read here, not while waiting).
    const steps = await step(Reason.ReconciliationFailed, () => this.deps.stepsFor(this.targetOf(obj)));

    const unpacked = await step(Reason.ArtifactFailed, () => steps.fetch(artifact.url, artifact.digest, timeoutMs));
    let objects: KubernetesObject[];
    try {
      objects = await step(Reason.BuildFailed, () => steps.build(unpacked.dir, obj, spec, timeoutMs));
    } finally {
      unpacked.release();
    }
    for (const o of objects) o.metadata = { ...o.metadata, labels: { ...o.metadata?.labels, ...owner } };

    // status.history: what these manifests gave, success or the failing step's reason.
    // Secret values stay out of the digest: it is in status, and a decrypted value must not be
    // guessable from it.
    const digest = digestOf(objects.map(withoutSecretValues));
    const origin = artifact.metadata?.['org.opencontainers.image.revision'];
    const record = (status: string) => {
      const metadata = { revision, ...(origin ? { originRevision: origin } : {}) };
      ctx.status.history = recordSnapshot(ctx.status.history, {
        digest,
        status,
        at: ctx.now(),
        durationMs: ctx.now().getTime() - started.getTime(),
        metadata,
      });
    };
    try {
      const outcome = await this.applyAndCheck(obj, checked, ctx, steps, objects, owner, timeoutMs);
      ctx.status.lastAppliedRevision = revision;
      record(outcome.reason);
      return { ...outcome, message: `Applied revision: ${revision}`, requeueAfterMs: interval };
    } catch (err) {
      record(err instanceof ReconcileError ? err.reason : Reason.ReconciliationFailed);
      throw err;
    }
  }

  /** Apply, prune, health: the steps that act on the cluster, once the objects are built. */
  private async applyAndCheck(
    obj: Kustomization,
    { spec, ignore, customHealth }: Checked,
    ctx: Ctx,
    steps: KustomizeSteps,
    objects: KubernetesObject[],
    owner: Record<string, string>,
    timeoutMs: number,
  ): Promise<Outcome> {
    const {
      changes,
      inventory: entries,
      observed,
    } = await step(Reason.ReconciliationFailed, () => steps.apply(objects, { force: spec.force ?? false, ignore }));
    const previous = ctx.status.inventory?.entries ?? [];
    const current = new Set(entries.map((e) => e.id));
    const stale = previous.filter((e) => !current.has(e.id));
    // The inventory always lists what is applied now, so that a later prune can find it even when
    // this one is disabled or fails.
    ctx.status.inventory = { entries };
    let deleted: string[] = [];
    if (spec.prune && stale.length > 0) deleted = await step(Reason.PruneFailed, () => steps.prune(stale, owner));
    const changed = changes.filter((c) => c.action !== 'unchanged' && c.action !== 'skipped');
    if (changed.length + deleted.length > 0) {
      const lines = [...changed.map((c) => `${c.id} ${c.action}`), ...deleted.map((id) => `${id} deleted`)];
      ctx.event('Normal', 'Progressing', lines.join('\n'));
    }

    const checks = spec.wait ? entries : this.healthCheckEntries(obj, spec);
    if (checks.length > 0) {
      try {
        await steps.waitForHealth(checks, timeoutMs, { observed, custom: customHealth });
      } catch (err) {
        const message = `health check failed after ${spec.timeout ?? spec.interval}: ${err instanceof Error ? err.message : String(err)}`;
        ctx.status.conditions = setCondition(
          ctx.status.conditions,
          {
            type: 'Healthy',
            status: 'False',
            reason: Reason.HealthCheckFailed,
            message,
            observedGeneration: obj.metadata?.generation,
          },
          ctx.now(),
        );
        throw failed(Reason.HealthCheckFailed, message);
      }
      ctx.status.conditions = setCondition(
        ctx.status.conditions,
        {
          type: 'Healthy',
          status: 'True',
          reason: Reason.Succeeded,
          message: 'Health check passed',
          observedGeneration: obj.metadata?.generation,
        },
        ctx.now(),
      );
    } else {
      ctx.status.conditions = removeCondition(ctx.status.conditions, 'Healthy');
    }
    return { type: 'success', reason: Reason.ReconciliationSucceeded, message: '' };
  }

  /** The spec, defaulted and checked, with its expressions and rules compiled once. */
  private validate(obj: Kustomization): Checked {
    const { spec, errors } = checkSpec<KustomizationSpec>(KustomizationKind, obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    if (!SUPPORTED_SOURCES.includes(spec.sourceRef.kind)) {
      throw stalled(
        Reason.UnsupportedFeature,
        `source kind ${spec.sourceRef.kind} is not supported yet; use a GitRepository`,
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
          ctx.event(
            'Warning',
            Reason.PruneFailed,
            `failed to wait for resources termination: ${err instanceof Error ? err.message : String(err)}`,
          );
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

/** Runs a step; anything it throws that is not already an outcome fails with `reason`. */
async function step<T>(reason: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ReconcileError) throw err;
    throw failed(reason, err instanceof Error ? err.message : String(err));
  }
}
