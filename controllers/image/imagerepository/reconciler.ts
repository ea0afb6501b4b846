// ImageRepository: scan a registry repository's tags (OCI distribution API), leave out those the
// exclusion list matches, keep them on disk (TagStore) and publish a summary in status. A scan runs
// when one is due (interval since the last), the spec or exclusion list changed, or a reconcile
// was requested; otherwise the reconcile only says when the next one is due.
import type { KubeConfig } from '@kubernetes/client-node';
import {
  ImageRepositoryKind,
  type ImageRepositorySpec,
  type ImageRepositoryStatus,
} from '../../api/image/imagerepository.ts';
import { checkSpec } from '../../api/validate.ts';
import { rfc3339 } from '../../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { REQUESTED_AT_ANNOTATION } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { hasFinalizer, setFinalizer } from '../../runtime/finalizers.ts';
import { failed, stalled, type Outcome, type ReconcileError } from '../../runtime/outcome.ts';
import { Reason } from '../../runtime/reasons.ts';
import { runSteps, type Recipe } from '../../runtime/steps.ts';
import { SecretError } from '../../source/gitrepository/credentials.ts';
import { registryAccess, type RegistryAccess } from '../../source/oci/access.ts';
import { RegistryClient, RegistryError } from '../../source/oci/client.ts';
import { InvalidReferenceError, parseOciUrl, repositoryName, type OciRepository } from '../../source/oci/reference.ts';
import type { TagStore } from '../tag-store.ts';

export type ImageRepository = ManagedObject<ImageRepositoryStatus> & { spec: ImageRepositorySpec };
type Ctx = ReconcileContext<ImageRepositoryStatus>;

/** The registry calls a scan makes; tests give their own. */
export type TagLister = Pick<RegistryClient, 'listTags' | 'close'>;

export interface ImageRepositoryDeps {
  kubeConfig: KubeConfig;
  tags: TagStore;
  /** Compiles an exclusionList entry (RE2 syntax); throws naming the entry when it does not compile. */
  compilePattern(pattern: string, field: string): RegExp;
  /** Makes the registry client; the real one unless a test injects its own. */
  registry?: (host: string, access: RegistryAccess) => TagLister;
}

/** How many tags status.lastScanResult.latestTags shows. */
const LATEST_TAGS = 10;

interface Run {
  obj: ImageRepository;
  ctx: Ctx;
  spec?: ImageRepositorySpec;
  repo?: OciRepository;
  exclusions?: RegExp[];
  intervalMs?: number;
  timeoutMs?: number;
  client?: TagLister;
  /** Set when no scan is due: the time until the next. */
  nextScanMs?: number;
}

export class ImageRepositoryReconciler implements Reconciler<ImageRepository> {
  readonly failureReason = Reason.ReconciliationFailed;
  private readonly deps: ImageRepositoryDeps;
  readonly recipe: Recipe<Run>;

  constructor(deps: ImageRepositoryDeps) {
    this.deps = deps;
    this.recipe = {
      steps: [
        { name: 'finalizer', reason: Reason.ReconciliationFailed, run: (r) => this.ensureFinalizer(r) },
        { name: 'validate', reason: Reason.InvalidSpec, run: (r) => this.validate(r) },
        { name: 'due', reason: Reason.ReconciliationFailed, run: (r) => this.due(r) },
        { name: 'credentials', reason: Reason.AuthenticationFailed, run: (r) => this.credentials(r) },
        { name: 'scan', reason: Reason.ReadOperationFailed, run: (r) => this.scan(r) },
      ],
      success: (r) => ({
        type: 'success',
        reason: Reason.Succeeded,
        message: scanMessage(r.ctx.status.lastScanResult),
        requeueAfterMs: r.nextScanMs ?? r.intervalMs!,
      }),
      classify,
    };
  }

  async reconcile(obj: ImageRepository, ctx: Ctx): Promise<Outcome> {
    if (obj.metadata?.deletionTimestamp) {
      await this.deps.tags.remove(keyOf(obj));
      await setFinalizer(this.deps.kubeConfig, obj, false);
      ctx.skipStatus = true;
      return { type: 'success', reason: Reason.Succeeded, message: 'tags removed' };
    }
    const run: Run = { obj, ctx };
    try {
      return await runSteps(this.recipe, run, ctx, obj.metadata?.generation);
    } finally {
      run.client?.close();
    }
  }

  private async ensureFinalizer({ obj }: Run): Promise<void> {
    if (!hasFinalizer(obj)) await setFinalizer(this.deps.kubeConfig, obj, true);
  }

  private validate(run: Run): void {
    const { spec, errors } = checkSpec<ImageRepositorySpec>(ImageRepositoryKind, run.obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    if (spec.provider && spec.provider !== 'generic') {
      throw stalled(
        Reason.UnsupportedFeature,
        `spec.provider '${spec.provider}' is not supported yet; use 'generic' with a secretRef`,
      );
    }
    try {
      run.repo = parseOciUrl(`oci://${spec.image}`);
    } catch (err) {
      if (err instanceof InvalidReferenceError) {
        throw stalled(Reason.ImageURLInvalid, `spec.image '${spec.image}': ${imageMessage(err.message)}`);
      }
      throw err;
    }
    run.exclusions = (spec.exclusionList ?? []).map((p, i) => {
      try {
        return this.deps.compilePattern(p, `spec.exclusionList[${i}]`);
      } catch (err) {
        throw stalled(Reason.InvalidSpec, (err as Error).message);
      }
    });
    run.spec = spec;
    run.intervalMs = parseDuration(spec.interval);
    run.timeoutMs = parseDuration(spec.timeout ?? spec.interval);
    run.ctx.status.canonicalImageName = repositoryName(run.repo);
  }

  /** No scan before its interval, unless what it would scan, or how, changed, or one was asked for. */
  private due(run: Run): void {
    const { obj, ctx } = run;
    const status = obj.status;
    const last = status?.lastScanResult?.scanTime ? Date.parse(status.lastScanResult.scanTime) : Number.NaN;
    const requested = obj.metadata?.annotations?.[REQUESTED_AT_ANNOTATION];
    const changed =
      status?.observedGeneration !== obj.metadata?.generation ||
      status?.canonicalImageName !== ctx.status.canonicalImageName ||
      JSON.stringify(status?.observedExclusionList ?? []) !== JSON.stringify(run.spec!.exclusionList ?? []) ||
      (requested !== undefined && requested !== status?.lastHandledReconcileAt);
    const wait = Number.isNaN(last) ? 0 : last + run.intervalMs! - ctx.now().getTime();
    if (!changed && wait > 0) run.nextScanMs = wait;
  }

  private async credentials(run: Run): Promise<void> {
    if (run.nextScanMs !== undefined) return;
    const ns = run.obj.metadata!.namespace!;
    const registry = run.repo!.registry;
    const access = await registryAccess(this.deps.kubeConfig, ns, registry, run.spec!, run.timeoutMs);
    run.client = this.deps.registry
      ? this.deps.registry(registry, access)
      : new RegistryClient(registry, { ...access, userAgent: 'tide-image-reflector-controller' });
  }

  private async scan(run: Run): Promise<void> {
    if (run.nextScanMs !== undefined) return;
    const { ctx, obj } = run;
    const all = await run.client!.listTags(run.repo!.repository, { signal: ctx.signal, timeoutMs: run.timeoutMs });
    const tags = all.filter((t) => !run.exclusions!.some((re) => re.test(t)));
    const revision = await this.deps.tags.write(keyOf(obj), tags);
    const previous = obj.status?.lastScanResult;
    ctx.status.lastScanResult = {
      revision,
      tagCount: tags.length,
      scanTime: rfc3339(ctx.now()),
      latestTags: [...tags].sort().reverse().slice(0, LATEST_TAGS),
    };
    ctx.status.observedExclusionList = run.spec!.exclusionList ?? [];
    if (previous?.revision !== revision) ctx.event('Normal', Reason.Succeeded, scanMessage(ctx.status.lastScanResult));
  }
}

/** The TagStore key of an ImageRepository. */
export function keyOf(obj: ImageRepository): string {
  return `${obj.metadata!.namespace}/${obj.metadata!.name}`;
}

/** parseOciUrl speaks of oci:// URLs; an ImageRepository's image has no scheme. */
function imageMessage(message: string): string {
  return message
    .replace("URL must be in format 'oci://<domain>/<org>/<repo>'", "image must be in format '[<domain>/]<org>/<repo>'")
    .replace('URL must not contain', 'image must not contain');
}

/** Flux's Ready message: "successful scan: found 3 tags with checksum <revision>". */
function scanMessage(result: ImageRepositoryStatus['lastScanResult']): string {
  return `successful scan: found ${result?.tagCount ?? 0} tags with checksum ${result?.revision ?? ''}`;
}

function classify(err: unknown): ReconcileError | undefined {
  if (err instanceof SecretError) {
    return failed(Reason.AuthenticationFailed, `failed to configure authentication options: ${err.message}`);
  }
  if (err instanceof RegistryError && err.kind === 'auth')
    return failed(Reason.AuthenticationFailed, `scan failed: ${err.message}`);
  if (err instanceof RegistryError) return failed(Reason.ReadOperationFailed, `scan failed: ${err.message}`);
  return undefined;
}
