// GitRepository: resolve the ref on the server, fetch that commit (shallow where the ref allows),
// verify it, pack it with its includes into a reproducible tarball in storage, and publish it
// in status.artifact. Each step throws an outcome; the last good artifact is kept on any failure.
import type { KubeConfig } from '@kubernetes/client-node';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import git from 'isomorphic-git';
import type { GitRepositorySpec, GitRepositoryStatus } from '../../api/source/gitrepository.ts';
import { GitRepositoryKind } from '../../api/source/gitrepository.ts';
import { checkSpec } from '../../api/validate.ts';
import { removeCondition, setCondition } from '../../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { hasFinalizer, setFinalizer } from '../../runtime/finalizers.ts';
import type { Informer } from '../../runtime/informer.ts';
import { failed, stalled, type Outcome } from '../../runtime/outcome.ts';
import { ConditionType, Reason } from '../../runtime/reasons.ts';
import { writeArtifact } from '../git/archive.ts';
import { openTransport } from '../git/transport.ts';
import { TransportError, type GitCredentials, type Transport } from '../git/types.ts';
import type { Storage } from '../storage.ts';
import { SecretError, pgpKeysFrom, providerCredentials, readSecret } from './credentials.ts';
import { CommitNotFoundError, fetchCommit, listRefs } from './checkout.ts';
import { IncludePathError, cleanPath, mergeIncludes, type IncludeSource } from './include.ts';
import type { ProxyConfig } from '../git/proxy.ts';
import { proxyFor } from './proxy.ts';
import { checkSparseDirs, sparseDirs } from './sparse.ts';
import { fetchSubmodules } from './submodules.ts';
import { InvalidRefError, RefNotFoundError, resolveRef, revisionOf, type Resolved } from './refs.ts';

export type GitRepository = ManagedObject<GitRepositoryStatus> & { spec: GitRepositorySpec };
type Ctx = ReconcileContext<GitRepositoryStatus>;

export interface GitRepositoryDeps {
  kubeConfig: KubeConfig;
  storage: Storage;
  informer: Informer<GitRepository>;
  /** Upper bound on fetched pack bytes and on the artifact's unpacked size. */
  maxSize: number;
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

export class GitRepositoryReconciler implements Reconciler<GitRepository> {
  readonly failureReason = Reason.GitOperationFailed;
  private readonly deps: GitRepositoryDeps;

  constructor(deps: GitRepositoryDeps) {
    this.deps = deps;
  }

  async reconcile(obj: GitRepository, ctx: Ctx): Promise<Outcome> {
    const { storage } = this.deps;
    const dir = storage.objectDir(GitRepositoryKind.kind, obj.metadata!.namespace!, obj.metadata!.name!);
    if (obj.metadata?.deletionTimestamp) {
      await storage.removeAll(dir);
      await setFinalizer(this.deps.kubeConfig, obj, false);
      ctx.skipStatus = true;
      return { type: 'success', reason: Reason.Succeeded, message: 'artifacts removed' };
    }
    if (!hasFinalizer(obj)) await setFinalizer(this.deps.kubeConfig, obj, true);
    const spec = this.validate(obj);
    const interval = parseDuration(spec.interval);

    const current = ctx.status.artifact;
    const inStorage = current !== undefined && (await storage.exists(current.path));
    if (!inStorage) ctx.status.conditions = removeCondition(ctx.status.conditions, ConditionType.ArtifactInStorage);

    const timeoutMs = parseDuration(spec.timeout ?? '60s');
    const proxy = await this.step(ctx, ConditionType.FetchFailed, () =>
      proxyFor(this.deps.kubeConfig, obj.metadata!.namespace!, spec.proxySecretRef),
    );
    const creds = await this.step(ctx, ConditionType.FetchFailed, () => this.credentials(obj, spec, proxy, timeoutMs));
    const includes = await this.step(ctx, ConditionType.IncludeUnavailable, () => this.includeSources(obj, spec));
    const transportOptions = {
      timeoutMs,
      maxBytes: this.deps.maxSize,
      signal: AbortSignal.timeout(timeoutMs),
      ...(proxy ? { proxy } : {}),
    };
    const transport = await this.step(ctx, ConditionType.FetchFailed, async () =>
      openTransport(spec.url, creds, transportOptions),
    );
    try {
      const resolved = await this.step(ctx, ConditionType.FetchFailed, () => this.resolve(transport, spec));
      const upToDate =
        inStorage &&
        resolved.commit !== undefined &&
        current!.revision === revisionOf(resolved.revisionName, resolved.commit) &&
        ctx.status.observedIgnore === spec.ignore &&
        isDeepStrictEqual(ctx.status.observedInclude, spec.include) &&
        isDeepStrictEqual(
          ctx.status.includedArtifacts?.map((a) => a.digest),
          includes.map((i) => i.artifact.digest),
        ) &&
        (!spec.verify || ctx.status.sourceVerificationMode === (spec.verify.mode ?? 'HEAD')) &&
        isDeepStrictEqual(ctx.status.observedSparseCheckout ?? [], spec.sparseCheckout ?? []) &&
        Boolean(ctx.status.observedRecurseSubmodules) === Boolean(spec.recurseSubmodules);
      if (!upToDate) {
        if (current) {
          ctx.status.conditions = setCondition(
            ctx.status.conditions,
            {
              type: ConditionType.ArtifactOutdated,
              status: 'True',
              reason: Reason.NewRevision,
              message: 'new revision or configuration to build',
              observedGeneration: obj.metadata?.generation,
            },
            ctx.now(),
          );
        }
        await this.build(obj, spec, ctx, transport, resolved, includes, dir, (url) =>
          openTransport(url, creds, transportOptions),
        );
      }
    } finally {
      transport.close();
    }
    for (const type of [
      ConditionType.FetchFailed,
      ConditionType.IncludeUnavailable,
      ConditionType.StorageOperationFailed,
      ConditionType.ArtifactOutdated,
    ]) {
      ctx.status.conditions = removeCondition(ctx.status.conditions, type);
    }
    const message = `stored artifact for revision '${ctx.status.artifact!.revision}'`;
    ctx.status.conditions = setCondition(
      ctx.status.conditions,
      {
        type: ConditionType.ArtifactInStorage,
        status: 'True',
        reason: Reason.Succeeded,
        message,
        observedGeneration: obj.metadata?.generation,
      },
      ctx.now(),
    );
    await storage
      .garbageCollect(dir, ctx.status.artifact!.path)
      .catch((err: unknown) => ctx.logger.error('artifact garbage collection failed', { error: err }));
    return { type: 'success', reason: Reason.Succeeded, message, requeueAfterMs: interval };
  }

  /** Runs a step; on failure marks `condition` True with the failure's reason before rethrowing. */
  private async step<T>(ctx: Ctx, condition: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      const e = classify(err);
      if (e.outcome !== 'stalled') {
        ctx.status.conditions = setCondition(
          ctx.status.conditions,
          { type: condition, status: 'True', reason: e.reason, message: e.message },
          ctx.now(),
        );
      }
      throw e;
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

  private async credentials(
    obj: GitRepository,
    spec: GitRepositorySpec,
    proxy: ProxyConfig | undefined,
    timeoutMs: number,
  ): Promise<GitCredentials> {
    if (!spec.secretRef) return {};
    const secret = await readSecret(this.deps.kubeConfig, obj.metadata!.namespace!, spec.secretRef.name);
    return providerCredentials(secret, spec.url, spec.provider, { timeoutMs, ...(proxy ? { proxy } : {}) });
  }

  private async includeSources(obj: GitRepository, spec: GitRepositorySpec) {
    const ns = obj.metadata!.namespace!;
    const sources: (IncludeSource & { artifact: NonNullable<GitRepositoryStatus['artifact']> })[] = [];
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

  private async resolve(transport: Transport, spec: GitRepositorySpec): Promise<Resolved> {
    return resolveRef(spec.ref, await listRefs(transport));
  }

  private async build(
    obj: GitRepository,
    spec: GitRepositorySpec,
    ctx: Ctx,
    transport: Transport,
    resolved: Resolved,
    includes: IncludeSource[],
    dir: string,
    openSubmodule: (url: string) => Transport,
  ): Promise<void> {
    const gitdir = await mkdtemp(join(tmpdir(), 'tide-git-'));
    const sparse = sparseDirs(spec.sparseCheckout);
    let submodules: Map<string, string> | undefined;
    try {
      const commit = await this.step(ctx, ConditionType.FetchFailed, async () => {
        try {
          const fetched = await fetchCommit(gitdir, transport, resolved);
          if (spec.recurseSubmodules) {
            submodules = await fetchSubmodules({ gitdir, commit: fetched, url: spec.url, open: openSubmodule });
          }
          if (sparse) await checkSparseDirs(gitdir, fetched, sparse);
          return fetched;
        } catch (err) {
          if (!(err instanceof CommitNotFoundError)) throw err;
          const where = spec.ref?.branch ? `branch '${spec.ref.branch}'` : 'the repository';
          throw failed(
            Reason.GitOperationFailed,
            `commit '${resolved.commit}' not found in ${where} of '${safeUrl(spec.url)}'`,
          );
        }
      });
      if (spec.verify) await this.verify(obj, spec, ctx, gitdir, commit, resolved);
      const revision = revisionOf(resolved.revisionName, commit);
      const path = `${dir}/${commit}.tar.gz`;
      const summary = await this.step(ctx, ConditionType.StorageOperationFailed, () =>
        this.archive(path, async (tmp) => {
          if (includes.length === 0) {
            return writeArtifact({
              fs,
              gitdir,
              commit,
              out: tmp,
              ...(spec.ignore !== undefined ? { specIgnore: spec.ignore } : {}),
              maxBytes: this.deps.maxSize,
              sparse,
              submodules,
            });
          }
          const own = `${tmp}.own`;
          try {
            await writeArtifact({
              fs,
              gitdir,
              commit,
              out: own,
              ...(spec.ignore !== undefined ? { specIgnore: spec.ignore } : {}),
              maxBytes: this.deps.maxSize,
              sparse,
              submodules,
            });
            return await mergeIncludes(own, includes, tmp);
          } finally {
            await rm(own, { force: true });
          }
        }),
      );
      const previous = ctx.status.artifact?.revision;
      ctx.status.artifact = {
        digest: summary.digest,
        lastUpdateTime: ctx
          .now()
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z'),
        path,
        revision,
        size: summary.size,
        url: this.deps.storage.url(path),
      };
      ctx.status.observedIgnore = spec.ignore;
      ctx.status.observedInclude = spec.include;
      ctx.status.observedSparseCheckout = spec.sparseCheckout?.length ? spec.sparseCheckout : undefined;
      ctx.status.observedRecurseSubmodules = spec.recurseSubmodules ? true : undefined;
      ctx.status.includedArtifacts = includes.length
        ? (includes as unknown as { artifact: NonNullable<GitRepositoryStatus['artifact']> }[]).map((i) => i.artifact)
        : undefined;
      if (previous !== revision) {
        const { commit: c } = await git.readCommit({ fs, gitdir, oid: commit });
        ctx.event('Normal', Reason.NewArtifact, `stored artifact for commit '${c.message.split('\n')[0]}'`);
      }
    } finally {
      await rm(gitdir, { recursive: true, force: true });
    }
  }

  /** Writes the artifact through storage; any failure is an ArchiveOperationFailed that names the cause. */
  private async archive<T>(path: string, write: (tmp: string) => Promise<T>): Promise<T> {
    try {
      return await this.deps.storage.writeAtomic(path, write);
    } catch (err) {
      throw failed(
        Reason.ArchiveOperationFailed,
        `failed to archive artifact: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  private async verify(
    obj: GitRepository,
    spec: GitRepositorySpec,
    ctx: Ctx,
    gitdir: string,
    commit: string,
    resolved: Resolved,
  ): Promise<void> {
    const mode = spec.verify!.mode === 'head' ? 'HEAD' : (spec.verify!.mode ?? 'HEAD');
    const set = (status: 'True' | 'False', reason: string, message: string) => {
      ctx.status.conditions = setCondition(
        ctx.status.conditions,
        { type: ConditionType.SourceVerified, status, reason, message, observedGeneration: obj.metadata?.generation },
        ctx.now(),
      );
    };
    try {
      const secret = await readSecret(this.deps.kubeConfig, obj.metadata!.namespace!, spec.verify!.secretRef.name);
      const armoredKeys = pgpKeysFrom(secret);
      // openpgp costs ~20 MB of memory: loaded only by controllers that verify signatures.
      const { verifyCommit, verifyTag } = await import('../git/verify.ts');
      const verified: string[] = [];
      if (mode === 'Tag' || mode === 'TagAndHEAD') {
        if (!resolved.tagObject)
          throw new Error(`tag '${resolved.revisionName}' is a lightweight tag; only annotated tags carry a signature`);
        const sig = await verifyTag({ fs, gitdir, tagOid: resolved.tagObject, armoredKeys });
        verified.push(`tag '${resolved.revisionName}' with key ${sig.keyId}`);
      }
      if (mode === 'HEAD' || mode === 'TagAndHEAD') {
        const sig = await verifyCommit({ fs, gitdir, commit, armoredKeys });
        verified.push(`commit '${commit}' with key ${sig.keyId}`);
      }
      set('True', Reason.Succeeded, `verified signature of ${verified.join(' and ')}`);
      ctx.status.sourceVerificationMode = mode;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      set('False', Reason.Failed, message);
      ctx.status.sourceVerificationMode = undefined;
      throw failed(
        err instanceof SecretError ? Reason.AuthenticationFailed : Reason.VerificationError,
        `signature verification failed: ${message}`,
      );
    }
  }
}

/** Maps what a step threw to an outcome error with Flux's reason. */
function classify(err: unknown) {
  if (err instanceof Error && err.name === 'ReconcileError') return err as ReturnType<typeof failed>;
  if (err instanceof SecretError) return failed(Reason.AuthenticationFailed, err.message);
  if (err instanceof TransportError) {
    const reason =
      err.kind === 'auth' || err.kind === 'hostkey' ? Reason.AuthenticationFailed : Reason.GitOperationFailed;
    return failed(reason, err.message);
  }
  if (err instanceof RefNotFoundError) return failed(Reason.GitOperationFailed, err.message);
  const message = err instanceof Error ? err.message : String(err);
  return failed(Reason.GitOperationFailed, message);
}
