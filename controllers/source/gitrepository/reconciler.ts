// GitRepository: resolve the ref on the server, fetch that commit (shallow where the ref allows),
// verify it, pack it with its includes into a reproducible tarball in storage, and publish it
// in status.artifact. The steps run in order (runtime/steps.ts); the last good artifact is kept
// on any failure.
import type { KubeConfig } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { GitRepositorySpec, GitRepositoryStatus } from '../../api/source/gitrepository.ts';
import { GitRepositoryKind } from '../../api/source/gitrepository.ts';
import { checkSpec } from '../../api/validate.ts';
import { errorMessage } from '../../runtime/api-errors.ts';
import { rfc3339, setCondition } from '../../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import type { Informer } from '../../runtime/informer.ts';
import { failed, stalled, type Outcome, type ReconcileError } from '../../runtime/outcome.ts';
import { ConditionType, Reason } from '../../runtime/reasons.ts';
import { runSteps, type Recipe } from '../../runtime/steps.ts';
import { TransportError, type Transport } from '../git/types.ts';
import { deleteArtifacts, markOutdated, sourceSteps } from '../artifact-steps.ts';
import type { Storage } from '../storage.ts';
import { SecretError } from './credentials.ts';
import { IncludePathError, cleanPath, type IncludeSource } from './include.ts';
import { InvalidRefError, RefNotFoundError, resolveRef, revisionOf, type Resolved } from './refs.ts';
import { sparseDirs } from './sparse.ts';
import { CommitNotFoundError, gitWork, verificationMode, type Access, type Checkout, type GitWork } from './work.ts';

export type GitRepository = ManagedObject<GitRepositoryStatus> & { spec: GitRepositorySpec };
type Ctx = ReconcileContext<GitRepositoryStatus>;
type Artifact = NonNullable<GitRepositoryStatus['artifact']>;

export interface GitRepositoryDeps {
  kubeConfig: KubeConfig;
  storage: Storage;
  informer: Informer<GitRepository>;
  /** Upper bound on fetched pack bytes and on the artifact's unpacked size. */
  maxSize: number;
  /** The I/O; the real one unless a test injects its own. */
  work?: GitWork;
}

/** The URL as it may appear in messages: never with credentials. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}

/** What the steps of one reconcile hand each other. */
interface Run {
  obj: GitRepository;
  ctx: Ctx;
  dir: string;
  spec?: GitRepositorySpec;
  timeoutMs?: number;
  /** Progress was written in this reconcile (once at most). */
  progressed?: boolean;
  inStorage?: boolean;
  access?: Access;
  includes?: (IncludeSource & { artifact: Artifact })[];
  transport?: Transport;
  resolved?: Resolved;
  /** The stored artifact matches the resolved commit and every spec field that shapes it. */
  upToDate?: boolean;
  checkout?: Checkout;
}

export class GitRepositoryReconciler implements Reconciler<GitRepository> {
  readonly failureReason = Reason.GitOperationFailed;
  private readonly deps: GitRepositoryDeps;
  private readonly work: GitWork;
  /** The ordered steps of a reconcile; the fetch, verify and artifact steps pass at once when up to date. */
  readonly recipe: Recipe<Run>;

  constructor(deps: GitRepositoryDeps) {
    this.deps = deps;
    this.recipe = {
      steps: [
        sourceSteps.finalizer(this.deps.kubeConfig),
        { name: 'validate', reason: Reason.InvalidSpec, run: (r) => this.validateStep(r) },
        sourceSteps.storage(this.deps.storage),
        {
          name: 'credentials',
          reason: Reason.AuthenticationFailed,
          condition: ConditionType.FetchFailed,
          run: (r) => this.credentials(r),
        },
        {
          name: 'include',
          reason: Reason.NotFound,
          condition: ConditionType.IncludeUnavailable,
          run: (r) => this.include(r),
        },
        {
          name: 'resolve',
          reason: Reason.GitOperationFailed,
          condition: ConditionType.FetchFailed,
          run: (r) => this.resolve(r),
        },
        {
          name: 'fetch',
          reason: Reason.GitOperationFailed,
          condition: ConditionType.FetchFailed,
          run: (r) => this.fetch(r),
        },
        { name: 'verify', reason: Reason.VerificationError, run: (r) => this.verify(r) },
        {
          name: 'artifact',
          reason: Reason.ArchiveOperationFailed,
          condition: ConditionType.StorageOperationFailed,
          run: (r) => this.artifact(r),
        },
        sourceSteps.publish(this.deps.storage),
      ],
      success: (r) => ({
        type: 'success',
        reason: Reason.Succeeded,
        message: `stored artifact for revision '${r.ctx.status.artifact!.revision}'`,
        requeueAfterMs: parseDuration(r.spec!.interval),
      }),
      classify,
    };
    this.work = deps.work ?? gitWork(deps.kubeConfig, deps.storage, deps.maxSize);
  }

  async reconcile(obj: GitRepository, ctx: Ctx): Promise<Outcome> {
    const { storage } = this.deps;
    const dir = storage.objectDir(GitRepositoryKind.kind, obj.metadata!.namespace!, obj.metadata!.name!);
    if (obj.metadata?.deletionTimestamp) return deleteArtifacts(this.deps.kubeConfig, storage, dir, obj, ctx);
    const run: Run = { obj, ctx, dir };
    try {
      return await runSteps(this.recipe, run, ctx, obj.metadata?.generation);
    } finally {
      run.transport?.close();
      await run.checkout?.release();
    }
  }

  private async validateStep(run: Run): Promise<void> {
    const { obj, ctx } = run;
    run.spec = this.validate(obj);
    run.timeoutMs = parseDuration(run.spec.timeout ?? '60s');
    const generation = obj.metadata?.generation ?? 0;
    const observed = obj.status?.observedGeneration;
    if (observed !== generation) {
      run.progressed = true;
      await ctx.progress(`processing object: new generation ${observed ?? 0} -> ${generation}`);
    }
  }

  private async credentials(run: Run): Promise<void> {
    run.access = await this.work.access(run.obj.metadata!.namespace!, run.spec!, run.timeoutMs!);
  }

  private async include(run: Run): Promise<void> {
    run.includes = await this.includeSources(run.obj, run.spec!);
  }

  /** Lists the server's refs and resolves spec.ref; decides whether the stored artifact is current. */
  private async resolve(run: Run): Promise<void> {
    const { ctx, spec, includes } = run;
    const { transport, refs } = await this.work.connect(spec!.url, run.access!);
    run.transport = transport;
    const resolved = resolveRef(spec!.ref, refs);
    run.resolved = resolved;
    const current = ctx.status.artifact;
    run.upToDate =
      run.inStorage === true &&
      resolved.commit !== undefined &&
      current!.revision === revisionOf(resolved.revisionName, resolved.commit) &&
      ctx.status.observedIgnore === spec!.ignore &&
      isDeepStrictEqual(ctx.status.observedInclude, spec!.include) &&
      isDeepStrictEqual(
        (ctx.status.includedArtifacts ?? []).map((a) => a.digest),
        includes!.map((i) => i.artifact.digest),
      ) &&
      (!spec!.verify || ctx.status.sourceVerificationMode === verificationMode(spec!)) &&
      isDeepStrictEqual(ctx.status.observedSparseCheckout ?? [], spec!.sparseCheckout ?? []) &&
      Boolean(ctx.status.observedRecurseSubmodules) === Boolean(spec!.recurseSubmodules);
    if (run.upToDate) return;
    markOutdated(ctx, run.obj.metadata?.generation, 'new revision or configuration to build');
    if (!run.progressed) {
      run.progressed = true;
      const revision = resolved.commit ? revisionOf(resolved.revisionName, resolved.commit) : resolved.revisionName;
      await ctx.progress(`building artifact: new upstream revision '${revision}'`);
    }
  }

  private async fetch(run: Run): Promise<void> {
    if (run.upToDate) return;
    const { spec, resolved } = run;
    try {
      run.checkout = await this.work.fetch(run.transport!, resolved!, spec!, run.access!);
    } catch (err) {
      if (!(err instanceof CommitNotFoundError)) throw err;
      const where = spec!.ref?.branch ? `branch '${spec!.ref.branch}'` : 'the repository';
      throw failed(
        Reason.GitOperationFailed,
        `commit '${resolved!.commit}' not found in ${where} of '${safeUrl(spec!.url)}'`,
      );
    }
  }

  /** spec.verify: nothing is published from a commit whose signature does not check out. */
  private async verify(run: Run): Promise<void> {
    const { obj, ctx, spec } = run;
    if (run.upToDate || !spec!.verify) return;
    const set = (status: 'True' | 'False', reason: string, message: string) => {
      ctx.status.conditions = setCondition(
        ctx.status.conditions,
        { type: ConditionType.SourceVerified, status, reason, message, observedGeneration: obj.metadata?.generation },
        ctx.now(),
      );
    };
    try {
      set(
        'True',
        Reason.Succeeded,
        await this.work.verify(obj.metadata!.namespace!, spec!, run.checkout!, run.resolved!),
      );
      ctx.status.sourceVerificationMode = verificationMode(spec!);
    } catch (err) {
      const message = errorMessage(err);
      set('False', Reason.Failed, message);
      ctx.status.sourceVerificationMode = undefined;
      throw failed(
        err instanceof SecretError ? Reason.AuthenticationFailed : Reason.VerificationError,
        `signature verification failed: ${message}`,
      );
    }
  }

  /** Packs the checkout (and the included artifacts) into storage and records it in status. */
  private async artifact(run: Run): Promise<void> {
    if (run.upToDate) return;
    const { ctx, spec, checkout, resolved, includes } = run;
    const path = `${run.dir}/${checkout!.commit}.tar.gz`;
    let summary: { digest: string; size: number };
    try {
      summary = await this.work.archive(path, checkout!, spec!, includes!);
    } catch (err) {
      throw failed(Reason.ArchiveOperationFailed, `failed to archive artifact: ${errorMessage(err)}`);
    }
    const revision = revisionOf(resolved!.revisionName, checkout!.commit);
    const previous = ctx.status.artifact?.revision;
    ctx.status.artifact = {
      digest: summary.digest,
      lastUpdateTime: rfc3339(ctx.now()),
      path,
      revision,
      size: summary.size,
      url: this.deps.storage.url(path),
    };
    ctx.status.observedIgnore = spec!.ignore;
    ctx.status.observedInclude = spec!.include;
    ctx.status.observedSparseCheckout = spec!.sparseCheckout?.length ? spec!.sparseCheckout : undefined;
    ctx.status.observedRecurseSubmodules = spec!.recurseSubmodules ? true : undefined;
    ctx.status.includedArtifacts = includes!.length ? includes!.map((i) => i.artifact) : undefined;
    if (previous !== revision) {
      ctx.event('Normal', Reason.NewArtifact, `stored artifact for commit '${await this.work.subject(checkout!)}'`);
    }
  }

  private validate(obj: GitRepository): GitRepositorySpec {
    const { spec, errors } = checkSpec<GitRepositorySpec>(GitRepositoryKind, obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    let url: URL;
    try {
      url = new URL(spec.url);
    } catch {
      throw stalled(Reason.URLInvalid, `invalid URL '${safeUrl(spec.url)}': it does not parse`);
    }
    if (!['http:', 'https:', 'ssh:'].includes(url.protocol)) {
      throw stalled(
        Reason.URLInvalid,
        `unsupported URL scheme '${url.protocol.replace(':', '')}': use http, https or ssh`,
      );
    }
    if (url.password)
      throw stalled(
        Reason.URLInvalid,
        `credentials in the URL are not supported; put them in the Secret of spec.secretRef`,
      );
    if (spec.provider && spec.provider !== 'generic' && spec.provider !== 'github') {
      throw stalled(
        Reason.UnsupportedFeature,
        `spec.provider '${spec.provider}' is not supported yet; use the generic or github provider with spec.secretRef`,
      );
    }
    if (spec.provider === 'github' && !spec.secretRef)
      throw stalled(
        Reason.InvalidProviderConfiguration,
        'secretRef with github app data must be specified when provider is set to github',
      );
    if (spec.provider === 'github' && url.protocol === 'ssh:')
      throw stalled(
        Reason.InvalidProviderConfiguration,
        'spec.provider github authenticates with GitHub App tokens over HTTPS; spec.url is an SSH URL',
      );
    sparseDirs(spec.sparseCheckout);
    const mode = spec.verify?.mode;
    if (
      (mode === 'Tag' || mode === 'TagAndHEAD') &&
      !spec.ref?.tag &&
      !spec.ref?.semver &&
      !spec.ref?.name?.startsWith('refs/tags/')
    ) {
      throw stalled(
        Reason.InvalidSpec,
        `spec.verify.mode ${mode} needs a tag reference (spec.ref.tag, semver or a refs/tags/ name)`,
      );
    }
    try {
      for (const inc of spec.include ?? []) {
        cleanPath(inc.fromPath ?? '', 'spec.include.fromPath');
        cleanPath(inc.toPath ?? inc.repository.name, 'spec.include.toPath');
      }
      resolveRef(spec.ref, []);
    } catch (err) {
      if (err instanceof InvalidRefError || err instanceof IncludePathError)
        throw stalled(Reason.InvalidSpec, err.message);
      if (!(err instanceof RefNotFoundError)) throw err;
    }
    return spec;
  }

  private async includeSources(obj: GitRepository, spec: GitRepositorySpec) {
    const ns = obj.metadata!.namespace!;
    const sources: (IncludeSource & { artifact: Artifact })[] = [];
    for (const inc of spec.include ?? []) {
      const name = inc.repository.name;
      const other = this.deps.informer.get(`${ns}/${name}`);
      if (!other) throw failed(Reason.NotFound, `included GitRepository '${ns}/${name}' not found`);
      const artifact = other.status?.artifact;
      if (!artifact || !(await this.deps.storage.exists(artifact.path))) {
        throw failed(Reason.NoArtifact, `included GitRepository '${ns}/${name}' has no artifact yet`);
      }
      sources.push({
        file: this.deps.storage.absolute(artifact.path),
        fromPath: cleanPath(inc.fromPath ?? '', 'spec.include.fromPath'),
        toPath: cleanPath(inc.toPath ?? name, 'spec.include.toPath'),
        artifact,
      });
    }
    return sources;
  }
}

/** Maps what a step threw to Flux's reason; undefined leaves the step's own reason. */
function classify(err: unknown): ReconcileError | undefined {
  if (err instanceof SecretError) return failed(Reason.AuthenticationFailed, err.message);
  if (err instanceof TransportError) {
    const reason =
      err.kind === 'auth' || err.kind === 'hostkey' ? Reason.AuthenticationFailed : Reason.GitOperationFailed;
    return failed(reason, err.message);
  }
  if (err instanceof RefNotFoundError) return failed(Reason.GitOperationFailed, err.message);
  return undefined;
}
