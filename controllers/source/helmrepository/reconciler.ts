// HelmRepository: fetch the repository's index.yaml to disk, have Helm's own loader validate it
// (the Helm helper, which also splits it into per-chart version lists for HelmCharts), and publish
// it unchanged as the artifact, revision the sha256 of the file. The index never enters the heap.
// `type: oci` repositories are data containers, as in Flux: no artifact, only their credentials
// and URL for the HelmCharts under them.
import type { KubeConfig } from '@kubernetes/client-node';
import { rename, rm } from 'node:fs/promises';
import type { HelmRepositorySpec, HelmRepositoryStatus } from '../../api/source/helmrepository.ts';
import { HelmRepositoryKind } from '../../api/source/helmrepository.ts';
import { checkSpec } from '../../api/validate.ts';
import { errorMessage } from '../../runtime/api-errors.ts';
import { rfc3339 } from '../../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { failed, stalled, type Outcome, type ReconcileError } from '../../runtime/outcome.ts';
import { ConditionType, Reason } from '../../runtime/reasons.ts';
import { runSteps, type Recipe } from '../../runtime/steps.ts';
import { deleteArtifacts, humanSize, markOutdated, sourceSteps } from '../artifact-steps.ts';
import { SecretError } from '../gitrepository/credentials.ts';
import { httpAccess } from '../helm/credentials.ts';
import { displayUrl, download, HttpFetchError, type HttpAccess } from '../helm/http.ts';
import type { ChartIndexes } from '../helm/index-cache.ts';
import type { Storage } from '../storage.ts';

export type HelmRepository = ManagedObject<HelmRepositoryStatus> & { spec: HelmRepositorySpec };
type Ctx = ReconcileContext<HelmRepositoryStatus>;

export interface HelmRepositoryDeps {
  kubeConfig: KubeConfig;
  storage: Storage;
  indexes: ChartIndexes;
  /** --helm-index-max-size */
  maxIndexSize: number;
}

interface Run {
  obj: HelmRepository;
  ctx: Ctx;
  dir: string;
  spec?: HelmRepositorySpec;
  url?: URL;
  timeoutMs?: number;
  inStorage?: boolean;
  access?: HttpAccess;
  /** The fetched index, in storage's object directory under a temporary name. */
  fetched?: { path: string; digest: string; size: number };
  upToDate?: boolean;
}

/** The index URL of a repository URL: `<url>/index.yaml`, as Helm builds it. */
export function indexUrl(repoUrl: string): URL {
  const u = new URL(repoUrl);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/index.yaml`;
  return u;
}

export class HelmRepositoryReconciler implements Reconciler<HelmRepository> {
  readonly failureReason = Reason.Failed;
  private readonly deps: HelmRepositoryDeps;
  readonly recipe: Recipe<Run>;

  constructor(deps: HelmRepositoryDeps) {
    this.deps = deps;
    this.recipe = {
      steps: [
        sourceSteps.finalizer(this.deps.kubeConfig),
        { name: 'validate', reason: Reason.InvalidSpec, run: (r) => this.validate(r) },
        sourceSteps.storage(this.deps.storage),
        {
          name: 'credentials',
          reason: Reason.AuthenticationFailed,
          condition: ConditionType.FetchFailed,
          run: async (r) => {
            r.access = await httpAccess(this.deps.kubeConfig, r.obj.metadata!.namespace!, r.spec!);
          },
        },
        { name: 'fetch', reason: Reason.Failed, condition: ConditionType.FetchFailed, run: (r) => this.fetch(r) },
        {
          name: 'index',
          reason: Reason.IndexationFailed,
          condition: ConditionType.FetchFailed,
          run: (r) => this.index(r),
        },
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
        message: `stored artifact: revision '${r.ctx.status.artifact!.revision}'`,
        requeueAfterMs: parseDuration(r.spec!.interval ?? '1m'),
      }),
      classify,
    };
  }

  async reconcile(obj: HelmRepository, ctx: Ctx): Promise<Outcome> {
    const { storage } = this.deps;
    const dir = storage.objectDir(HelmRepositoryKind.kind, obj.metadata!.namespace!, obj.metadata!.name!);
    if (obj.metadata?.deletionTimestamp) return deleteArtifacts(this.deps.kubeConfig, storage, dir, obj, ctx);
    if (obj.spec?.type === 'oci') return this.dataContainer(obj, ctx, dir);
    const run: Run = { obj, ctx, dir };
    try {
      return await runSteps(this.recipe, run, ctx, obj.metadata?.generation);
    } finally {
      if (run.fetched) await rm(storage.absolute(run.fetched.path), { force: true });
    }
  }

  /** An OCI repository holds no artifact: any left from an earlier `type: default` goes. */
  private async dataContainer(obj: HelmRepository, ctx: Ctx, dir: string): Promise<Outcome> {
    const recipe: Recipe<Run> = {
      steps: [
        {
          name: 'validate',
          reason: Reason.InvalidSpec,
          run: () => {
            const { spec, errors } = checkSpec<HelmRepositorySpec>(HelmRepositoryKind, obj.spec);
            if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
            if (!spec.url.startsWith('oci://'))
              throw stalled(Reason.URLInvalid, `invalid OCI registry URL '${spec.url}': it must start with oci://`);
          },
        },
        {
          name: 'artifact',
          reason: Reason.StatOperationFailed,
          run: async () => {
            if (!ctx.status.artifact) return;
            await this.deps.storage.removeAll(dir);
            ctx.status.artifact = undefined;
            ctx.status.url = undefined;
            ctx.status.conditions = ctx.status.conditions?.filter(
              (c) => c.type === ConditionType.Ready || c.type === ConditionType.Reconciling,
            );
          },
        },
      ],
      success: () => ({
        type: 'success',
        reason: Reason.Succeeded,
        message: 'Helm OCI repository: no artifact; HelmCharts pull from its URL with its credentials',
      }),
    };
    return runSteps(recipe, { obj, ctx, dir }, ctx, obj.metadata?.generation);
  }

  private async validate(run: Run): Promise<void> {
    const { obj, ctx } = run;
    const { spec, errors } = checkSpec<HelmRepositorySpec>(HelmRepositoryKind, obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    let url: URL;
    try {
      url = new URL(spec.url);
    } catch {
      throw stalled(Reason.URLInvalid, `invalid Helm repository URL '${spec.url}': it does not parse`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw stalled(
        Reason.URLInvalid,
        `scheme "${url.protocol.replace(':', '')}" not supported: a default Helm repository URL is http(s)://`,
      );
    }
    if (url.username || url.password) {
      throw stalled(
        Reason.URLInvalid,
        'credentials in the URL are not supported; put them in the Secret of spec.secretRef',
      );
    }
    run.spec = spec;
    run.url = url;
    run.timeoutMs = parseDuration(spec.timeout ?? '60s');
    const generation = obj.metadata?.generation ?? 0;
    if (ctx.status.observedGeneration !== generation) {
      await ctx.progress(`processing object: new generation ${ctx.status.observedGeneration ?? 0} -> ${generation}`);
    }
  }

  /** Downloads index.yaml next to the artifacts, under a temporary name, hashing it on the way. */
  private async fetch(run: Run): Promise<void> {
    const { ctx, spec } = run;
    const path = `${run.dir}/index.${process.pid}.${Date.now()}.tmp`;
    await this.deps.storage.ensureDir(run.dir);
    const url = indexUrl(spec!.url);
    const result = await download(url, this.deps.storage.absolute(path), {
      access: run.access!,
      credentialsHost: run.url!.host,
      timeoutMs: run.timeoutMs!,
      maxBytes: this.deps.maxIndexSize,
      signal: ctx.signal,
    }).catch((err: unknown) => {
      if (err instanceof HttpFetchError) {
        throw failed(
          err.kind === 'auth' ? Reason.AuthenticationFailed : Reason.Failed,
          `failed to fetch Helm repository index: ${err.message}`,
        );
      }
      throw err;
    });
    run.fetched = { path, ...result };
    const current = ctx.status.artifact;
    run.upToDate = run.inStorage === true && current?.revision === result.digest;
    if (!run.upToDate) markOutdated(ctx, run.obj.metadata?.generation, `new index revision '${result.digest}'`);
  }

  /** Helm's loader validates the index and splits it per chart for HelmCharts. */
  private async index(run: Run): Promise<void> {
    const { fetched } = run;
    try {
      await this.deps.indexes.prepare(this.deps.storage.absolute(fetched!.path), fetched!.digest, run.ctx.signal);
    } catch (err) {
      throw failed(Reason.IndexationFailed, `failed to load Helm repository from index YAML: ${errorMessage(err)}`);
    }
  }

  /** Moves the fetched index into place as index-<hex>.yaml and records it. */
  private async artifact(run: Run): Promise<void> {
    const { ctx, fetched, spec } = run;
    const { storage } = this.deps;
    if (run.upToDate) return;
    const hex = fetched!.digest.replace(/^sha256:/, '');
    const path = `${run.dir}/index-${hex}.yaml`;
    await rename(storage.absolute(fetched!.path), storage.absolute(path));
    run.fetched = undefined;
    await storage.link(`${run.dir}/index.yaml`, path);
    ctx.status.artifact = {
      digest: fetched!.digest,
      lastUpdateTime: rfc3339(ctx.now()),
      path,
      revision: fetched!.digest,
      size: fetched!.size,
      url: storage.url(path),
    };
    ctx.status.url = storage.url(`${run.dir}/index.yaml`);
    ctx.event(
      'Normal',
      Reason.NewArtifact,
      `fetched index of size ${humanSize(fetched!.size)} from '${displayUrl(new URL(spec!.url))}'`,
    );
  }
}

function classify(err: unknown): ReconcileError | undefined {
  if (err instanceof SecretError) return failed(Reason.AuthenticationFailed, err.message);
  return undefined;
}
