// HelmChart: a packaged chart from a HelmRepository (a version of its HTTP index, or a tag of its
// OCI registry) or from a path in a GitRepository artifact (packaged with its file:// and remote
// dependencies), optionally with values files merged in, published as <name>-<version>.tgz.
// Helm's own code loads and packages charts (the Helm helper); what to fetch, which version, from
// where and with which credentials is decided here. The last good artifact is kept on any failure.
import type { KubeConfig } from '@kubernetes/client-node';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join, resolve, sep } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { HelmChartSpec, HelmChartStatus } from '../../api/source/helmchart.ts';
import { HelmChartKind } from '../../api/source/helmchart.ts';
import { checkSpec } from '../../api/validate.ts';
import { extractTarball } from '../../runtime/extract.ts';
import { errorMessage } from '../../runtime/api-errors.ts';
import { rfc3339 } from '../../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import type { Informer } from '../../runtime/informer.ts';
import { failed, ReconcileError, stalled, type Outcome } from '../../runtime/outcome.ts';
import { ConditionType, Reason } from '../../runtime/reasons.ts';
import { runSteps, type Recipe } from '../../runtime/steps.ts';
import { deleteArtifacts, sourceSteps } from '../artifact-steps.ts';
import { digestMeter } from '../digest.ts';
import type { GitRepository } from '../gitrepository/reconciler.ts';
import { SecretError } from '../gitrepository/credentials.ts';
import { cleanPath, IncludePathError } from '../gitrepository/include.ts';
import { httpAccess } from '../helm/credentials.ts';
import { displayUrl, download, HttpFetchError, type HttpAccess } from '../helm/http.ts';
import type { ChartIndexes, IndexVersion } from '../helm/index-cache.ts';
import type { HelmRepository } from '../helmrepository/reconciler.ts';
import { indexUrl } from '../helmrepository/reconciler.ts';
import type { Storage } from '../storage.ts';
import { OciCharts } from './oci.ts';
import { artifactVersion, revisionSuffix, selectVersion } from './versions.ts';

export type HelmChart = ManagedObject<HelmChartStatus> & { spec: HelmChartSpec };
type Ctx = ReconcileContext<HelmChartStatus>;

/** What the Helm helper answers about a chart (chart.inspect). */
export interface ChartMetadata {
  name: string;
  version: string;
  dependencies?: { name: string; version?: string; repository?: string; alias?: string }[] | null;
  lock?: { name: string; version: string; repository?: string }[] | null;
}

/** The Helm helper's chart operations. */
export interface ChartTool {
  inspectChart(params: { path: string }, opts?: { signal?: AbortSignal }): Promise<ChartMetadata>;
  packageChart(
    params: {
      path: string;
      out: string;
      version?: string;
      valuesFiles?: string[];
      dependencies?: Record<string, string>;
      root?: string;
    },
    opts?: { signal?: AbortSignal },
  ): Promise<{ path: string; name: string; version: string }>;
}

export interface HelmChartDeps {
  kubeConfig: KubeConfig;
  storage: Storage;
  indexes: ChartIndexes;
  helm: ChartTool;
  helmRepositories: Informer<HelmRepository>;
  gitRepositories: Informer<GitRepository>;
  /** --helm-chart-max-size: bytes a downloaded chart may have. */
  maxChartSize: number;
  /** --helm-index-max-size: bytes a dependency's repository index may have. */
  maxIndexSize: number;
  /** Bytes a source artifact may unpack to. */
  maxSourceSize: number;
}

interface Built {
  /** The .tgz to publish. */
  path: string;
  name: string;
  revision: string;
  packaged: boolean;
  valuesFiles?: string[];
}

interface Run {
  obj: HelmChart;
  ctx: Ctx;
  dir: string;
  spec?: HelmChartSpec;
  tmp?: string;
  inStorage?: boolean;
  source?: { kind: 'HelmRepository'; obj: HelmRepository } | { kind: 'GitRepository'; obj: GitRepository };
  sourceRevision?: string;
  built?: Built;
  /** The chart of the current artifact is what the spec and source ask for: nothing to build. */
  upToDate?: { name: string; revision: string; packaged: boolean };
}

export class HelmChartReconciler implements Reconciler<HelmChart> {
  readonly failureReason = Reason.Failed;
  private readonly deps: HelmChartDeps;
  private readonly oci: OciCharts;
  readonly recipe: Recipe<Run>;

  constructor(deps: HelmChartDeps) {
    this.deps = deps;
    this.recipe = {
      steps: [
        sourceSteps.finalizer(this.deps.kubeConfig),
        { name: 'validate', reason: Reason.InvalidSpec, run: (r) => this.validate(r) },
        sourceSteps.storage(this.deps.storage),
        { name: 'source', reason: Reason.Failed, condition: ConditionType.FetchFailed, run: (r) => this.source(r) },
        {
          name: 'build',
          reason: Reason.ChartPullError,
          condition: ConditionType.FetchFailed,
          run: (r) => this.build(r),
        },
        {
          name: 'artifact',
          reason: Reason.ArchiveOperationFailed,
          condition: ConditionType.StorageOperationFailed,
          run: (r) => this.artifact(r),
        },
        sourceSteps.publish<Run>(this.deps.storage, summary),
      ],
      success: (r) => ({
        type: 'success',
        reason: summary(r).reason,
        message: summary(r).message,
        requeueAfterMs: parseDuration(r.spec!.interval),
      }),
      classify: (err) => {
        if (err instanceof SecretError) return failed(Reason.AuthenticationFailed, err.message);
        if (err instanceof HttpFetchError) {
          return failed(err.kind === 'auth' ? Reason.AuthenticationFailed : Reason.ChartPullError, err.message);
        }
        return undefined;
      },
    };
    this.oci = new OciCharts(deps.kubeConfig);
  }

  async reconcile(obj: HelmChart, ctx: Ctx): Promise<Outcome> {
    const { storage } = this.deps;
    const dir = storage.objectDir(HelmChartKind.kind, obj.metadata!.namespace!, obj.metadata!.name!);
    if (obj.metadata?.deletionTimestamp) return deleteArtifacts(this.deps.kubeConfig, storage, dir, obj, ctx);
    const run: Run = { obj, ctx, dir };
    try {
      return await runSteps(this.recipe, run, ctx, obj.metadata?.generation);
    } finally {
      if (run.tmp) await rm(run.tmp, { recursive: true, force: true });
    }
  }

  private async validate(run: Run): Promise<void> {
    const { obj, ctx } = run;
    const { spec, errors } = checkSpec<HelmChartSpec>(HelmChartKind, obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    if (spec.verify) {
      throw stalled(
        Reason.UnsupportedFeature,
        `spec.verify (${spec.verify.provider}) is not supported yet: chart signatures cannot be verified`,
      );
    }
    if (spec.sourceRef.kind === 'Bucket') {
      throw stalled(Reason.UnsupportedFeature, 'Bucket sources are not supported yet');
    }
    run.spec = spec;
    const generation = obj.metadata?.generation ?? 0;
    if (ctx.status.observedGeneration !== generation) {
      await ctx.progress(`processing object: new generation ${ctx.status.observedGeneration ?? 0} -> ${generation}`);
    }
  }

  /** The source object, in this namespace, with an artifact (a HelmRepository of type oci has none). */
  private source(run: Run): void {
    const { obj, spec } = run;
    const ns = obj.metadata!.namespace!;
    const { kind, name } = spec!.sourceRef;
    const key = `${ns}/${name}`;
    if (kind === 'HelmRepository') {
      const repo = this.deps.helmRepositories.get(key);
      if (!repo) throw failed(Reason.Failed, `failed to get source: HelmRepository '${key}' not found`);
      if (repo.spec?.type !== 'oci' && !repo.status?.artifact) {
        throw failed(Reason.Failed, `no artifact available for HelmRepository source '${name}'`);
      }
      run.source = { kind, obj: repo };
      run.sourceRevision = repo.status?.artifact?.revision;
      return;
    }
    const git = this.deps.gitRepositories.get(key);
    if (!git) throw failed(Reason.Failed, `failed to get source: GitRepository '${key}' not found`);
    if (!git.status?.artifact) throw failed(Reason.Failed, `no artifact available for GitRepository source '${name}'`);
    if (!existsSync(this.deps.storage.absolute(git.status.artifact.path))) {
      throw failed(Reason.Failed, `the artifact of GitRepository '${name}' is not in storage (yet)`);
    }
    run.source = { kind: 'GitRepository', obj: git };
    run.sourceRevision = git.status.artifact.revision;
  }

  private async build(run: Run): Promise<void> {
    run.tmp = await mkdtemp(join(tmpdir(), 'tide-helmchart-'));
    const source = run.source!;
    if (source.kind === 'GitRepository') return this.buildFromSource(run, source.obj);
    if (source.obj.spec.type === 'oci') return this.buildFromRegistry(run, source.obj);
    return this.buildFromIndex(run, source.obj);
  }

  /** Whether the current artifact already is `revision` of `name` built from the same values files. */
  private current(run: Run, revision: string, packaged: boolean): boolean {
    const { ctx, obj, spec } = run;
    const same =
      run.inStorage === true &&
      ctx.status.artifact?.revision === revision &&
      ctx.status.observedGeneration === obj.metadata?.generation &&
      ctx.status.observedChartName !== undefined &&
      isDeepStrictEqual(ctx.status.observedValuesFiles ?? [], spec!.valuesFiles ?? []);
    if (same) run.upToDate = { name: ctx.status.observedChartName!, revision, packaged };
    return same;
  }

  private async buildFromIndex(run: Run, repo: HelmRepository): Promise<void> {
    const { spec, obj } = run;
    const artifact = repo.status!.artifact!;
    const list = await this.deps.indexes.versions(
      this.deps.storage.absolute(artifact.path),
      artifact.digest ?? artifact.revision,
      spec!.chart,
    );
    if (!list) {
      throw stalled(
        Reason.InvalidChartReference,
        `invalid chart reference: failed to get chart version for remote reference: ` +
          `no chart name '${spec!.chart}' found in the index of HelmRepository '${repo.metadata!.name}'`,
      );
    }
    const entry = selectVersion(spec!.chart, list, spec!.version);
    const withValues = (spec!.valuesFiles?.length ?? 0) > 0;
    const revision = artifactVersion(entry.version, withValues ? String(obj.metadata?.generation ?? 0) : undefined);
    if (this.current(run, revision, withValues)) return;
    const access = await httpAccess(this.deps.kubeConfig, repo.metadata!.namespace!, repo.spec);
    const tgz = await this.fetchChart(run, repo.spec.url, entry, access, parseDuration(repo.spec.timeout ?? '60s'));
    await this.finish(run, tgz, revision, withValues);
  }

  private async buildFromRegistry(run: Run, repo: HelmRepository): Promise<void> {
    const { spec, obj } = run;
    const pulled = await this.oci.resolve(repo, spec!.chart, spec!.version, run.ctx.signal);
    const withValues = (spec!.valuesFiles?.length ?? 0) > 0;
    const revision = artifactVersion(pulled.version, withValues ? String(obj.metadata?.generation ?? 0) : undefined);
    if (this.current(run, revision, withValues)) return;
    const tgz = join(run.tmp!, 'chart.tgz');
    await pulled.pull(tgz, this.deps.maxChartSize);
    await this.finish(run, tgz, revision, withValues);
  }

  /** Downloads the chart of an index entry, checking the digest the index gives for it. */
  private async fetchChart(
    run: Run,
    repoUrl: string,
    entry: IndexVersion,
    access: HttpAccess,
    timeoutMs: number,
    name = 'chart.tgz',
  ): Promise<string> {
    const ref = entry.urls?.[0];
    if (!ref) throw failed(Reason.ChartPullError, `chart version '${entry.version}' has no download URL in the index`);
    const base = new URL(repoUrl.endsWith('/') ? repoUrl : `${repoUrl}/`);
    const url = new URL(ref, base);
    const dest = join(run.tmp!, name);
    const got = await download(url, dest, {
      access,
      credentialsHost: base.host,
      timeoutMs,
      maxBytes: this.deps.maxChartSize,
      signal: run.ctx.signal,
    }).catch((err: unknown) => {
      if (err instanceof HttpFetchError) {
        throw failed(
          err.kind === 'auth' ? Reason.AuthenticationFailed : Reason.ChartPullError,
          `failed to download chart for remote reference: ${err.message}`,
        );
      }
      throw err;
    });
    if (entry.digest && got.digest !== `sha256:${entry.digest.replace(/^sha256:/, '')}`) {
      throw failed(
        Reason.ChartPullError,
        `chart ${displayUrl(url)} has digest ${got.digest}, the index says sha256:${entry.digest}`,
      );
    }
    return dest;
  }

  /** A pulled chart: checked by Helm's loader, and re-packaged with the values files when there are any. */
  private async finish(run: Run, tgz: string, revision: string, withValues: boolean) {
    const { helm } = this.deps;
    const signal = run.ctx.signal;
    const meta = await helm.inspectChart({ path: tgz }, { signal }).catch((err: unknown) => {
      throw failed(Reason.ChartPullError, `failed to load pulled chart: ${errorMessage(err)}`);
    });
    if (!withValues) {
      run.built = { path: tgz, name: meta.name, revision, packaged: false };
      return;
    }
    const root = join(run.tmp!, 'pulled');
    await extractTarball(createReadStream(tgz), root, { maxBytes: this.deps.maxSourceSize, maxEntries: 100_000 });
    const chartDir = join(root, meta.name);
    const valuesFiles = this.valuesFiles(run, chartDir);
    const out = await helm
      .packageChart({ path: chartDir, out: join(run.tmp!, 'out'), version: revision, valuesFiles: valuesFiles.abs })
      .catch((err: unknown) => {
        throw failed(Reason.ChartPackageError, `failed to package chart: ${errorMessage(err)}`);
      });
    run.built = { path: out.path, name: meta.name, revision, packaged: true, valuesFiles: valuesFiles.rel };
  }

  /** spec.valuesFiles under `root`; a missing one fails unless ignoreMissingValuesFiles. */
  private valuesFiles(run: Run, root: string): { rel: string[]; abs: string[] } {
    const rel: string[] = [];
    const abs: string[] = [];
    for (const file of run.spec!.valuesFiles ?? []) {
      let clean: string;
      try {
        clean = cleanPath(file, 'spec.valuesFiles');
      } catch (err) {
        if (err instanceof IncludePathError) throw stalled(Reason.InvalidSpec, err.message);
        throw err;
      }
      const path = join(root, clean);
      if (!existsSync(path) || !statSync(path).isFile()) {
        if (run.spec!.ignoreMissingValuesFiles) continue;
        throw failed(Reason.ValuesFilesError, `failed to merge values files: no values file found at path '${file}'`);
      }
      rel.push(file);
      abs.push(path);
    }
    return { rel, abs };
  }

  /** A chart directory in a GitRepository artifact, packaged with its dependencies. */
  private async buildFromSource(run: Run, git: GitRepository): Promise<void> {
    const { spec, ctx } = run;
    const { helm, storage } = this.deps;
    const root = join(run.tmp!, 'source');
    await extractTarball(createReadStream(storage.absolute(git.status!.artifact!.path)), root, {
      maxBytes: this.deps.maxSourceSize,
      maxEntries: 100_000,
    }).catch((err: unknown) => {
      throw failed(Reason.Failed, `failed to unpack the GitRepository artifact: ${errorMessage(err)}`);
    });
    let chartPath: string;
    try {
      chartPath = cleanPath(spec!.chart, 'spec.chart');
    } catch (err) {
      if (err instanceof IncludePathError) throw stalled(Reason.InvalidSpec, err.message);
      throw err;
    }
    const chartDir = resolve(root, chartPath);
    if (chartDir !== root && !chartDir.startsWith(root + sep)) {
      throw stalled(Reason.InvalidSpec, `spec.chart '${spec!.chart}' points outside the source`);
    }
    if (!existsSync(join(chartDir, 'Chart.yaml'))) {
      throw failed(
        Reason.ChartPullError,
        `chart path '${spec!.chart}' not found in GitRepository '${git.metadata!.name}' ` +
          `(revision '${git.status!.artifact!.revision}'): no Chart.yaml there`,
      );
    }
    const meta = await helm.inspectChart({ path: chartDir }, { signal: ctx.signal }).catch((err: unknown) => {
      throw failed(Reason.ChartPackageError, `failed to load chart at '${spec!.chart}': ${errorMessage(err)}`);
    });
    const suffix = spec!.reconcileStrategy === 'Revision' ? revisionSuffix(run.sourceRevision!) : undefined;
    const revision = artifactVersion(meta.version, suffix);
    if (this.current(run, revision, true)) return;
    const valuesFiles = this.valuesFiles(run, root);
    const dependencies = await this.remoteDependencies(run, meta);
    const out = await helm
      .packageChart(
        {
          path: chartDir,
          out: join(run.tmp!, 'out'),
          ...(suffix ? { version: revision } : {}),
          valuesFiles: valuesFiles.abs,
          dependencies,
          root,
        },
        { signal: ctx.signal },
      )
      .catch((err: unknown) => {
        const code = (err as { code?: string }).code;
        const reason = code === 'MissingDependency' ? Reason.DependencyBuildError : Reason.ChartPackageError;
        throw failed(reason, `failed to package chart '${spec!.chart}': ${errorMessage(err)}`);
      });
    run.built = {
      path: out.path,
      name: meta.name,
      revision,
      packaged: true,
      ...(spec!.valuesFiles?.length ? { valuesFiles: valuesFiles.rel } : {}),
    };
  }

  /**
   * Downloads the chart's dependencies that are not file://: the version Chart.lock pins (else the
   * highest in Chart.yaml's range), from an HTTP repository (with the credentials of a HelmRepository
   * of this namespace with the same URL) or an OCI registry.
   */
  private async remoteDependencies(run: Run, meta: ChartMetadata): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const ns = run.obj.metadata!.namespace!;
    for (const [i, dep] of (meta.dependencies ?? []).entries()) {
      const repoUrl = dep.repository ?? '';
      if (repoUrl === '' || repoUrl.startsWith('file://')) continue;
      const key = dep.alias || dep.name;
      const locked = meta.lock?.find((l) => l.name === dep.name && (l.repository ?? '') === repoUrl);
      const range = locked?.version ?? dep.version;
      const fail = (message: string) =>
        failed(Reason.DependencyBuildError, `failed to build dependency '${dep.name}' from '${repoUrl}': ${message}`);
      try {
        if (repoUrl.startsWith('oci://')) {
          const repo = this.findRepository(ns, repoUrl, true);
          const pulled = await this.oci.resolveUrl(repoUrl, dep.name, range, repo, run.ctx.signal);
          const dest = join(run.tmp!, `dep-${i}.tgz`);
          await pulled.pull(dest, this.deps.maxChartSize);
          out[key] = dest;
          continue;
        }
        if (!/^https?:\/\//.test(repoUrl)) {
          throw fail('only http(s):// and oci:// repositories (and file:// paths) are supported');
        }
        const repo = this.findRepository(ns, repoUrl, false);
        const access = repo ? await httpAccess(this.deps.kubeConfig, ns, repo.spec) : {};
        const timeoutMs = parseDuration(repo?.spec.timeout ?? '60s');
        const list = await this.indexVersions(run, dep.name, repoUrl, repo, access, timeoutMs, i);
        if (!list) throw fail(`no chart named '${dep.name}' in the repository index`);
        const entry = selectVersion(dep.name, list, range);
        out[key] = await this.fetchChart(run, repoUrl, entry, access, timeoutMs, `dep-${i}.tgz`);
      } catch (err) {
        if (err instanceof ReconcileError && err.reason === Reason.DependencyBuildError) throw err;
        throw fail(err instanceof Error ? err.message : String(err));
      }
    }
    return out;
  }

  /** A HelmRepository of the namespace serving `url` (trailing slashes aside). */
  private findRepository(ns: string, url: string, oci: boolean): HelmRepository | undefined {
    const norm = (u: string) => u.replace(/\/+$/, '');
    return this.deps.helmRepositories
      .list()
      .find(
        (r) =>
          r.metadata?.namespace === ns && norm(r.spec?.url ?? '') === norm(url) && (r.spec?.type === 'oci') === oci,
      );
  }

  /** The versions of a dependency's chart: from the HelmRepository's artifact, else fetched now. */
  private async indexVersions(
    run: Run,
    chart: string,
    repoUrl: string,
    repo: HelmRepository | undefined,
    access: HttpAccess,
    timeoutMs: number,
    i: number,
  ): Promise<IndexVersion[] | undefined> {
    const artifact = repo?.status?.artifact;
    if (artifact) {
      const path = this.deps.storage.absolute(artifact.path);
      return this.deps.indexes.versions(path, artifact.digest ?? artifact.revision, chart);
    }
    const dest = join(run.tmp!, `index-${i}.yaml`);
    const url = indexUrl(repoUrl);
    const got = await download(url, dest, {
      access,
      credentialsHost: url.host,
      timeoutMs,
      maxBytes: this.deps.maxIndexSize,
      signal: run.ctx.signal,
    });
    return this.deps.indexes.versions(dest, got.digest, chart);
  }

  /** Copies the built chart into storage as <name>-<version>.tgz and records it. */
  private async artifact(run: Run): Promise<void> {
    const { ctx, built } = run;
    if (!built) {
      ctx.status.observedSourceArtifactRevision = run.sourceRevision;
      return;
    }
    const { storage } = this.deps;
    const path = `${run.dir}/${built.name}-${built.revision}.tgz`;
    const meter = await storage.writeAtomic(path, async (tmp) => {
      await copyFile(built.path, tmp);
      const m = digestMeter();
      await pipeline(createReadStream(tmp), m.stream, new Writable({ write: (_c, _e, done) => done() }));
      return m.result();
    });
    await storage.link(`${run.dir}/latest.tar.gz`, path);
    const previous = ctx.status.artifact?.revision;
    ctx.status.artifact = {
      digest: meter.digest,
      lastUpdateTime: rfc3339(ctx.now()),
      path,
      revision: built.revision,
      size: meter.size,
      url: storage.url(path),
    };
    ctx.status.url = storage.url(`${run.dir}/latest.tar.gz`);
    ctx.status.observedChartName = built.name;
    ctx.status.observedSourceArtifactRevision = run.sourceRevision;
    ctx.status.observedValuesFiles = built.valuesFiles;
    if (previous !== built.revision || !run.inStorage) {
      const s = summary(run);
      ctx.event('Normal', s.reason, s.message);
    }
  }
}

/** Flux's summary of a build: pulled or packaged, which chart, which version. */
function summary(run: Run): { reason: string; message: string } {
  const b = run.built ?? run.upToDate!;
  return b.packaged
    ? { reason: Reason.ChartPackageSucceeded, message: `packaged '${b.name}' chart with version '${b.revision}'` }
    : { reason: Reason.ChartPullSucceeded, message: `pulled '${b.name}' chart with version '${b.revision}'` };
}
