// OCIRepository: resolve spec.ref (digest, else the highest tag in the semver range, else the tag,
// `latest` by default) to a manifest digest, pull the selected layer of that manifest, and publish
// it as the artifact: extracted safely and re-packed with the ignore rules, or copied as it is.
// Revision `<tag>@sha256:<hex>` (`sha256:<hex>` for a digest ref), artifact
// `ocirepository/<ns>/<name>/sha256:<hex>.tar.gz` as Flux names it. Nothing is pulled when the
// resolved revision and the content configuration match the artifact in storage; the last good
// artifact is kept on any failure.
import type { KubeConfig } from '@kubernetes/client-node';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isDeepStrictEqual } from 'node:util';
import type { OCIRepositorySpec, OCIRepositoryStatus } from '../../api/source/ocirepository.ts';
import { OCIRepositoryKind } from '../../api/source/ocirepository.ts';
import { checkSpec } from '../../api/validate.ts';
import { errorMessage } from '../../runtime/api-errors.ts';
import { rfc3339 } from '../../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { failed, stalled, type Outcome, type ReconcileError } from '../../runtime/outcome.ts';
import { ConditionType, Reason } from '../../runtime/reasons.ts';
import { newConstraint, newVersion, SemverError, type Version } from '../../runtime/semver.ts';
import { runSteps, type Recipe } from '../../runtime/steps.ts';
import { ExtractError, extractTarball } from '../../runtime/extract.ts';

import { deleteArtifacts, markOutdated, sourceSteps } from '../artifact-steps.ts';
import { digestMeter } from '../digest.ts';
import { SecretError } from '../gitrepository/credentials.ts';
import { registryAccess, type RegistryAccess } from '../oci/access.ts';
import { RegistryClient, RegistryError, type ManifestJson, type OciDescriptor } from '../oci/client.ts';
import { InvalidReferenceError, checkDigest, parseOciUrl, type OciRepository } from '../oci/reference.ts';
import type { Storage } from '../storage.ts';
import { packDirectory } from './pack.ts';

export type OCIRepository = ManagedObject<OCIRepositoryStatus> & { spec: OCIRepositorySpec };
type Ctx = ReconcileContext<OCIRepositoryStatus>;

/** The calls the reconciler makes to a registry; tests give their own. */
export type Registry = Pick<RegistryClient, 'listTags' | 'resolve' | 'manifest' | 'blobToFile' | 'close'>;

export interface OCIRepositoryDeps {
  kubeConfig: KubeConfig;
  storage: Storage;
  /** Upper bound on the pulled layer's bytes and on its unpacked size. */
  maxSize: number;
  /** Makes the registry client; the real one unless a test injects its own. */
  registry?: (host: string, access: RegistryAccess) => Registry;
}

/** Flux's annotations of the origin, quoted in the NewArtifact event. */
const SOURCE_ANNOTATION = 'org.opencontainers.image.source';
const REVISION_ANNOTATION = 'org.opencontainers.image.revision';
/** Entries a layer may unpack to. */
const MAX_ENTRIES = 100_000;

/** What the steps of one reconcile hand each other. */
interface Run {
  obj: OCIRepository;
  ctx: Ctx;
  dir: string;
  spec?: OCIRepositorySpec;
  repo?: OciRepository;
  timeoutMs?: number;
  progressed?: boolean;
  inStorage?: boolean;
  client?: Registry;
  /** `repo:tag` or `repo@digest`, for messages. */
  ref?: string;
  digest?: string;
  revision?: string;
  upToDate?: boolean;
  /** Temporary directory of this reconcile: the layer blob and what it unpacks to. */
  work?: string;
  annotations?: Record<string, string> | undefined;
  /** The pulled layer: the blob file, and its extracted tree for the extract operation. */
  pulled?: { blob: string; tree?: string };
}

export class OCIRepositoryReconciler implements Reconciler<OCIRepository> {
  readonly failureReason = Reason.Failed;
  private readonly deps: OCIRepositoryDeps;
  readonly recipe: Recipe<Run>;

  constructor(deps: OCIRepositoryDeps) {
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
          run: (r) => this.credentials(r),
        },
        {
          name: 'resolve',
          reason: Reason.OCIArtifactPullFailed,
          condition: ConditionType.FetchFailed,
          run: (r) => this.resolve(r),
        },
        {
          name: 'pull',
          reason: Reason.OCIArtifactPullFailed,
          condition: ConditionType.FetchFailed,
          run: (r) => this.pull(r),
        },
        {
          name: 'artifact',
          reason: Reason.ArchiveOperationFailed,
          condition: ConditionType.StorageOperationFailed,
          run: (r) => this.artifact(r),
        },
        sourceSteps.publish<Run>(this.deps.storage, (r) => ({
          reason: Reason.Succeeded,
          message: `stored artifact for digest '${r.ctx.status.artifact!.revision}'`,
        })),
      ],
      success: (r) => ({
        type: 'success',
        reason: Reason.Succeeded,
        message: `stored artifact for digest '${r.ctx.status.artifact!.revision}'`,
        requeueAfterMs: parseDuration(r.spec!.interval),
      }),
      classify,
    };
  }

  async reconcile(obj: OCIRepository, ctx: Ctx): Promise<Outcome> {
    const { storage } = this.deps;
    const dir = storage.objectDir(OCIRepositoryKind.kind, obj.metadata!.namespace!, obj.metadata!.name!);
    if (obj.metadata?.deletionTimestamp) return deleteArtifacts(this.deps.kubeConfig, storage, dir, obj, ctx);
    const run: Run = { obj, ctx, dir };
    try {
      return await runSteps(this.recipe, run, ctx, obj.metadata?.generation);
    } finally {
      run.client?.close();
      if (run.work) await rm(run.work, { recursive: true, force: true });
    }
  }

  private async validate(run: Run): Promise<void> {
    const { obj, ctx } = run;
    const { spec, errors } = checkSpec<OCIRepositorySpec>(OCIRepositoryKind, obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    try {
      run.repo = parseOciUrl(spec.url);
    } catch (err) {
      if (!(err instanceof InvalidReferenceError)) throw err;
      throw stalled(Reason.URLInvalid, `URL validation failed for '${spec.url}': ${err.message}`);
    }
    if (spec.provider && spec.provider !== 'generic') {
      throw stalled(
        Reason.UnsupportedFeature,
        `spec.provider '${spec.provider}' is not supported yet; use the generic provider with spec.secretRef`,
      );
    }
    if (spec.credential) {
      throw stalled(Reason.UnsupportedFeature, `spec.credential '${spec.credential}' is not supported yet`);
    }
    if (spec.verify) {
      throw stalled(
        Reason.UnsupportedFeature,
        `spec.verify (${spec.verify.provider} signature verification) is not supported yet`,
      );
    }
    const ref = spec.ref;
    if (ref?.digest) {
      try {
        checkDigest(ref.digest);
      } catch (err) {
        throw stalled(Reason.InvalidSpec, `invalid spec.ref.digest: ${errorMessage(err)}`);
      }
    } else if (ref?.semver) {
      try {
        newConstraint(ref.semver);
      } catch (err) {
        throw stalled(Reason.InvalidSpec, `semver '${ref.semver}' parse error: ${errorMessage(err)}`);
      }
      if (ref.semverFilter) {
        try {
          new RegExp(ref.semverFilter);
        } catch (err) {
          throw stalled(Reason.InvalidSpec, `invalid spec.ref.semverFilter: ${errorMessage(err)}`);
        }
      }
    }
    run.spec = spec;
    run.timeoutMs = parseDuration(spec.timeout ?? '60s');
    const generation = obj.metadata?.generation ?? 0;
    const observed = obj.status?.observedGeneration;
    if (observed !== generation) {
      run.progressed = true;
      await ctx.progress(`processing object: new generation ${observed ?? 0} -> ${generation}`);
    }
  }

  /** The registry client, reaching the registry as the spec says (oci/access.ts). */
  private async credentials(run: Run): Promise<void> {
    const { spec, repo } = run;
    const ns = run.obj.metadata!.namespace!;
    const access = await registryAccess(this.deps.kubeConfig, ns, repo!.registry, spec!, run.timeoutMs);
    run.client = this.deps.registry
      ? this.deps.registry(repo!.registry, access)
      : new RegistryClient(repo!.registry, { ...access, userAgent: 'tide-source-controller' });
  }

  /** spec.ref to a digest and a revision; decides whether the stored artifact is current. */
  private async resolve(run: Run): Promise<void> {
    const { ctx, spec, repo, client } = run;
    const opts = { signal: ctx.signal };
    const name = `${repo!.registry}/${repo!.repository}`;
    const ref = spec!.ref;
    if (ref?.digest) {
      run.digest = ref.digest;
      run.revision = ref.digest;
      run.ref = `${name}@${ref.digest}`;
    } else {
      let tag = ref?.tag || 'latest';
      if (ref?.semver) {
        let tags: string[];
        try {
          tags = await client!.listTags(repo!.repository, opts);
        } catch (err) {
          throw registryFailure(
            err,
            Reason.ReadOperationFailed,
            `failed to determine the artifact tag for '${spec!.url}'`,
          );
        }
        tag = highestTag(tags, ref.semver, ref.semverFilter, spec!.url);
      }
      run.ref = `${name}:${tag}`;
      try {
        run.digest = (await client!.resolve(repo!.repository, tag, opts)).digest;
      } catch (err) {
        throw registryFailure(err, Reason.OCIArtifactPullFailed, 'failed to determine artifact digest');
      }
      run.revision = `${tag}@${run.digest}`;
    }
    const status = ctx.status;
    run.upToDate =
      run.inStorage === true &&
      status.artifact?.revision === run.revision &&
      status.observedIgnore === spec!.ignore &&
      isDeepStrictEqual(status.observedLayerSelector, spec!.layerSelector);
    if (run.upToDate) return;
    const message = `new revision '${run.revision}' for '${run.ref}'`;
    markOutdated(ctx, run.obj.metadata?.generation, message);
    if (!run.progressed) {
      run.progressed = true;
      await ctx.progress(`building artifact: ${message}`);
    }
  }

  /** Fetches the manifest and the selected layer into a temporary directory, and extracts it. */
  private async pull(run: Run): Promise<void> {
    if (run.upToDate) return;
    const { ctx, spec, repo, client } = run;
    const opts = { signal: ctx.signal };
    const pullFailed = (err: unknown) =>
      registryFailure(err, Reason.OCIArtifactPullFailed, `failed to pull artifact from '${spec!.url}'`);
    let manifest: ManifestJson;
    try {
      manifest = (await client!.manifest(repo!.repository, run.digest!, opts)).json;
    } catch (err) {
      throw pullFailed(err);
    }
    if (manifest.manifests) {
      throw failed(
        Reason.OCIArtifactLayerOperationFailed,
        `failed to parse artifact manifest: '${run.ref}' is an image index, not an artifact`,
      );
    }
    run.annotations = manifest.annotations;
    const layer = selectLayer(manifest.layers ?? [], spec!.layerSelector?.mediaType);
    run.work = await mkdtemp(join(tmpdir(), 'tide-oci-'));
    const blob = join(run.work, 'layer');
    try {
      await client!.blobToFile(repo!.repository, layer.digest, blob, { ...opts, maxSize: this.deps.maxSize });
    } catch (err) {
      throw pullFailed(err);
    }
    run.pulled = { blob };
    if (spec!.layerSelector?.operation === 'copy') return;
    const tree = join(run.work, 'tree');
    try {
      await extractTarball(createReadStream(blob), tree, { maxBytes: this.deps.maxSize, maxEntries: MAX_ENTRIES });
    } catch (err) {
      if (!(err instanceof ExtractError)) throw err;
      throw failed(
        Reason.OCIArtifactLayerOperationFailed,
        `failed to extract layer contents from artifact: ${err.message}`,
      );
    }
    run.pulled.tree = tree;
  }

  /** Writes the artifact into storage (atomically) and records it. */
  private async artifact(run: Run): Promise<void> {
    if (run.upToDate) return;
    const { ctx, spec, pulled } = run;
    const { storage } = this.deps;
    const path = `${run.dir}/${run.digest}.tar.gz`;
    let summary: { digest: string; size: number };
    try {
      summary = await storage.writeAtomic(path, async (tmp) => {
        if (pulled!.tree) return packDirectory(pulled!.tree, tmp, spec!.ignore);
        const meter = digestMeter();
        await pipeline(createReadStream(pulled!.blob), meter.stream, createWriteStream(tmp));
        return meter.result();
      });
    } catch (err) {
      throw failed(Reason.ArchiveOperationFailed, `unable to archive artifact to storage: ${errorMessage(err)}`);
    }
    const previousDigest = ctx.status.artifact?.digest;
    const annotations = run.annotations && Object.keys(run.annotations).length ? run.annotations : undefined;
    ctx.status.artifact = {
      digest: summary.digest,
      lastUpdateTime: rfc3339(ctx.now()),
      path,
      revision: run.revision!,
      size: summary.size,
      url: storage.url(path),
      ...(annotations ? { metadata: annotations } : {}),
    };
    ctx.status.observedIgnore = spec!.ignore;
    ctx.status.observedLayerSelector = spec!.layerSelector;
    await storage.link(`${run.dir}/latest.tar.gz`, path);
    ctx.status.url = storage.url(`${run.dir}/latest.tar.gz`);
    if (previousDigest !== summary.digest) {
      let message = `stored artifact with revision '${run.revision}' from '${spec!.url}'`;
      const source = annotations?.[SOURCE_ANNOTATION];
      const revision = annotations?.[REVISION_ANNOTATION];
      if (source && revision) message += `, origin source '${source}', origin revision '${revision}'`;
      ctx.event('Normal', Reason.NewArtifact, message);
    }
  }
}

/** The highest tag in the range among those matching the filter, as Flux picks it. */
export function highestTag(tags: readonly string[], range: string, filter: string | undefined, url: string): string {
  const constraint = newConstraint(range);
  const pattern = filter ? new RegExp(filter) : undefined;
  let best: { tag: string; v: Version } | undefined;
  for (const tag of tags) {
    if (pattern && !pattern.test(tag)) continue;
    let v: Version;
    try {
      v = newVersion(tag);
    } catch (err) {
      if (err instanceof SemverError) continue;
      throw err;
    }
    if (!constraint.check(v)) continue;
    if (!best || v.compare(best.v) > 0) best = { tag, v };
  }
  if (!best) {
    throw failed(
      Reason.ReadOperationFailed,
      `failed to determine the artifact tag for '${url}': no match found for semver: ${range}`,
    );
  }
  return best.tag;
}

/** The layer of the media type, else the first; Flux's messages when there is none. */
export function selectLayer(layers: readonly OciDescriptor[], mediaType: string | undefined): OciDescriptor {
  if (layers.length === 0) throw failed(Reason.OCIArtifactLayerOperationFailed, 'no layers found in artifact');
  if (!mediaType) return layers[0]!;
  const layer = layers.find((l) => l.mediaType === mediaType);
  if (!layer) {
    throw failed(
      Reason.OCIArtifactLayerOperationFailed,
      `failed to find layer with media type '${mediaType}' in artifact`,
    );
  }
  return layer;
}

/** A registry call's failure: AuthenticationFailed when the registry refused us, else `reason`. */
function registryFailure(err: unknown, reason: string, what: string): ReconcileError {
  const auth = err instanceof RegistryError && err.kind === 'auth';
  return failed(auth ? Reason.AuthenticationFailed : reason, `${what}: ${errorMessage(err)}`);
}

/** Maps what a step threw to Flux's reason; undefined leaves the step's own reason. */
function classify(err: unknown): ReconcileError | undefined {
  if (err instanceof SecretError) return failed(Reason.AuthenticationFailed, err.message);
  if (err instanceof RegistryError && err.kind === 'auth') return failed(Reason.AuthenticationFailed, err.message);
  return undefined;
}
