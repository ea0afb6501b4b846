// ImagePolicy: take the tags its ImageRepository scanned (from the TagStore), narrow them with
// spec.filterTags, pick the latest by spec.policy, and publish it as status.latestRef (with the
// digest when spec.digestReflectionPolicy asks for it). Re-evaluated at once when the repository's
// scan result changes (setup.ts).
import type { KubeConfig } from '@kubernetes/client-node';
import { ImagePolicyKind, type ImagePolicySpec, type ImagePolicyStatus } from '../../api/image/imagepolicy.ts';
import { checkSpec } from '../../api/validate.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import type { Informer } from '../../runtime/informer.ts';
import { failed, stalled, waiting, type Outcome, type ReconcileError } from '../../runtime/outcome.ts';
import { Reason } from '../../runtime/reasons.ts';
import { runSteps, type Recipe } from '../../runtime/steps.ts';
import { SecretError } from '../../source/gitrepository/credentials.ts';
import { registryAccess, type RegistryAccess } from '../../source/oci/access.ts';
import { RegistryClient, RegistryError } from '../../source/oci/client.ts';
import { parseOciUrl } from '../../source/oci/reference.ts';
import type { ImageRepository } from '../imagerepository/reconciler.ts';
import { keyOf as tagKeyOf } from '../imagerepository/reconciler.ts';
import {
  compileFilter,
  NO_LATEST_VERSION_MESSAGE,
  NO_TAGS_IN_DATABASE_MESSAGE,
  noTagMatched,
  PolicyError,
  policerFromSpec,
  selectLatest,
  type TagFilter,
} from '../policy/policy.ts';
import type { TagStore } from '../tag-store.ts';

export type ImagePolicy = ManagedObject<ImagePolicyStatus> & { spec: ImagePolicySpec };
type Ctx = ReconcileContext<ImagePolicyStatus>;
type ImageRef = NonNullable<ImagePolicyStatus['latestRef']>;

/** The registry call digest reflection makes; tests give their own. */
export type DigestResolver = Pick<RegistryClient, 'resolve' | 'close'>;

export interface ImagePolicyDeps {
  kubeConfig: KubeConfig;
  repositories: Informer<ImageRepository>;
  tags: TagStore;
  requeueDependencyMs: number;
  /** --no-cross-namespace-refs: the ImageRepository must be in the policy's namespace. */
  noCrossNamespaceRefs?: boolean;
  /** Whether the namespace `namespace` has all `labels` (for the repository's accessFrom). */
  namespaceHasLabels(namespace: string, labels: Record<string, string>): Promise<boolean>;
  registry?: (host: string, access: RegistryAccess) => DigestResolver;
}

interface Run {
  obj: ImagePolicy;
  ctx: Ctx;
  spec?: ImagePolicySpec;
  filter?: TagFilter;
  repository?: ImageRepository;
  latest?: ImageRef;
}

export class ImagePolicyReconciler implements Reconciler<ImagePolicy> {
  readonly failureReason = Reason.ReconciliationFailed;
  private readonly deps: ImagePolicyDeps;
  readonly recipe: Recipe<Run>;

  constructor(deps: ImagePolicyDeps) {
    this.deps = deps;
    this.recipe = {
      steps: [
        { name: 'validate', reason: Reason.InvalidPolicy, run: (r) => this.validate(r) },
        { name: 'repository', reason: Reason.DependencyNotReady, run: (r) => this.repository(r) },
        { name: 'select', reason: Reason.Failure, run: (r) => this.select(r) },
        { name: 'digest', reason: Reason.Failure, run: (r) => this.digest(r) },
      ],
      success: (r) => this.success(r),
      classify,
    };
  }

  reconcile(obj: ImagePolicy, ctx: Ctx): Promise<Outcome> {
    return runSteps(this.recipe, { obj, ctx }, ctx, obj.metadata?.generation);
  }

  private validate(run: Run): void {
    const { spec, errors } = checkSpec<ImagePolicySpec>(ImagePolicyKind, run.obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    try {
      policerFromSpec(spec.policy);
      run.filter = compileFilter(spec.filterTags);
    } catch (err) {
      if (err instanceof PolicyError) throw stalled(Reason.InvalidPolicy, err.message);
      throw err;
    }
    run.spec = spec;
  }

  /** The ImageRepository: in reach (namespace rules, accessFrom) and scanned. */
  private async repository(run: Run): Promise<void> {
    const { obj, spec } = run;
    const ns = obj.metadata!.namespace!;
    const refNs = spec!.imageRepositoryRef.namespace ?? ns;
    const name = `ImageRepository/${refNs}/${spec!.imageRepositoryRef.name}`;
    if (refNs !== ns && this.deps.noCrossNamespaceRefs) {
      throw stalled(Reason.AccessDenied, `cannot access '${name}', cross-namespace references have been blocked`);
    }
    const repository = this.deps.repositories.get(`${refNs}/${spec!.imageRepositoryRef.name}`);
    if (!repository) {
      throw waiting(
        Reason.DependencyNotReady,
        `referenced ImageRepository does not exist: ${name} not found`,
        this.deps.requeueDependencyMs,
      );
    }
    if (refNs !== ns && !(await this.allowed(repository, ns))) {
      throw failed(Reason.AccessDenied, `access denied: '${name}' does not allow access from namespace '${ns}'`);
    }
    run.repository = repository;
  }

  private async allowed(repository: ImageRepository, namespace: string): Promise<boolean> {
    for (const selector of repository.spec?.accessFrom?.namespaceSelectors ?? []) {
      if (await this.deps.namespaceHasLabels(namespace, selector.matchLabels ?? {})) return true;
    }
    return false;
  }

  private async select(run: Run): Promise<void> {
    const { spec, repository } = run;
    const tags = repository!.status?.lastScanResult ? await this.deps.tags.read(tagKeyOf(repository!)) : undefined;
    if (!tags || tags.length === 0) {
      throw waiting(Reason.DependencyNotReady, NO_TAGS_IN_DATABASE_MESSAGE, this.deps.requeueDependencyMs);
    }
    const candidates = run.filter!(tags);
    if (candidates.length === 0) throw noTagMatched();
    const tag = selectLatest(spec!.policy, candidates);
    if (tag === undefined) throw new PolicyError(NO_LATEST_VERSION_MESSAGE, false);
    run.latest = { name: repository!.spec.image, tag };
  }

  /** spec.digestReflectionPolicy: Never (none), IfNotPresent (kept while the image is the same), Always. */
  private async digest(run: Run): Promise<void> {
    const { spec, repository, ctx } = run;
    const policy = spec!.digestReflectionPolicy ?? 'Never';
    if (policy === 'Never') return;
    const current = run.obj.status?.latestRef;
    const same = current && current.name === run.latest!.name && current.tag === run.latest!.tag;
    if (policy === 'IfNotPresent' && same && current.digest) {
      run.latest!.digest = current.digest;
      return;
    }
    const repo = parseOciUrl(`oci://${repository!.spec.image}`);
    const ns = repository!.metadata!.namespace!;
    const access = await registryAccess(this.deps.kubeConfig, ns, repo.registry, {
      ...repository!.spec,
      insecure: repository!.spec.insecure,
    });
    const client = this.deps.registry
      ? this.deps.registry(repo.registry, access)
      : new RegistryClient(repo.registry, { ...access, userAgent: 'tide-image-reflector-controller' });
    try {
      const descriptor = await client.resolve(repo.repository, run.latest!.tag, { signal: ctx.signal });
      run.latest!.digest = descriptor.digest;
    } catch (err) {
      throw failed(
        Reason.Failure,
        `failed fetching digest of ${run.latest!.name}:${run.latest!.tag}: ${(err as Error).message}`,
      );
    } finally {
      client.close();
    }
  }

  private success(run: Run): Outcome {
    const { ctx, obj, spec } = run;
    const latest = run.latest!;
    const previous = obj.status?.latestRef;
    const changed =
      previous && (previous.name !== latest.name || previous.tag !== latest.tag || previous.digest !== latest.digest);
    ctx.status.latestRef = latest;
    if (changed) ctx.status.observedPreviousRef = previous;
    let message = `Latest image tag for ${latest.name} resolved to ${latest.tag}`;
    if (latest.digest) message += ` with digest ${latest.digest}`;
    if (changed) message += ` (previously ${refString(previous)})`;
    if (changed || !previous) ctx.event('Normal', Reason.Succeeded, message);
    const always = spec!.digestReflectionPolicy === 'Always';
    return {
      type: 'success',
      reason: Reason.Succeeded,
      message,
      ...(always ? { requeueAfterMs: parseDuration(spec!.interval ?? '10m') } : {}),
    };
  }
}

function refString(ref: ImageRef): string {
  return `${ref.name}:${ref.tag}${ref.digest ? `@${ref.digest}` : ''}`;
}

function classify(err: unknown): ReconcileError | undefined {
  if (err instanceof PolicyError)
    return err.invalidPolicy ? stalled(Reason.InvalidPolicy, err.message) : failed(Reason.Failure, err.message);
  if (err instanceof SecretError || (err instanceof RegistryError && err.kind === 'auth')) {
    return failed(Reason.AuthenticationFailed, (err as Error).message);
  }
  return undefined;
}
