// ImageUpdateAutomation: check out the GitRepository's branch, rewrite the `$imagepolicy` markers
// with the latest images of the namespace's selected ImagePolicies (Setters), commit what changed
// with the templated message (signed when asked) and push it back, so git stays the audit log.
// A run is skipped when neither the branch nor the policies changed since the last one.
import type { KubeConfig } from '@kubernetes/client-node';
import {
  ImageUpdateAutomationKind,
  type ImageUpdateAutomationSpec,
  type ImageUpdateAutomationStatus,
} from '../../api/image/imageupdateautomation.ts';
import type { GitRepositorySpec } from '../../api/source/gitrepository.ts';
import { checkSpec } from '../../api/validate.ts';
import { rfc3339 } from '../../runtime/conditions.ts';
import type { ManagedObject, ReconcileContext, Reconciler } from '../../runtime/controller.ts';
import { parseDuration } from '../../runtime/duration.ts';
import type { Informer } from '../../runtime/informer.ts';
import { LabelSelectorError, labelSelectorMatcher } from '../../runtime/labels.ts';
import { failed, stalled, waiting, type Outcome, type ReconcileError } from '../../runtime/outcome.ts';
import { Reason } from '../../runtime/reasons.ts';
import { runSteps, type Recipe } from '../../runtime/steps.ts';
import { PushRejectedError } from '../../source/git/push.ts';
import { TransportError } from '../../source/git/types.ts';
import { readSecret, SecretError, secretValue } from '../../source/gitrepository/credentials.ts';
import { InvalidRefError, RefNotFoundError } from '../../source/gitrepository/refs.ts';
import { gitAccess, type Access } from '../../source/gitrepository/work.ts';
import type { ImagePolicy } from '../imagepolicy/reconciler.ts';
import { UpdatePathError, type UpdateResult } from '../update/files.ts';
import {
  GitSpecError,
  parseRefspec,
  PushError,
  type RepositoryCache,
  runAutomationGit,
  type AutomationGitRun,
} from '../update/repository.ts';
import type { PolicyImage } from '../update/setters.ts';
import { type CommitSigner, SigningKeyError, signerFromSecret } from '../update/sign.ts';
import {
  type Change,
  type CommitTemplateData,
  type ObjectIdentifier,
  parseCommitTemplate,
  type ParsedTemplate,
  renderCommitMessage,
  TemplateError,
} from '../update/template.ts';

export type ImageUpdateAutomation = ManagedObject<ImageUpdateAutomationStatus> & { spec: ImageUpdateAutomationSpec };
type Ctx = ReconcileContext<ImageUpdateAutomationStatus>;
type GitRepository = ManagedObject & { spec: GitRepositorySpec };
type ObservedPolicies = NonNullable<ImageUpdateAutomationStatus['observedPolicies']>;

/** Flux's default commit message. */
export const DEFAULT_MESSAGE_TEMPLATE = 'Update from image update automation';

/** image-automation-controller's condition reasons. */
export const AutomationReason = {
  InvalidUpdateStrategy: 'InvalidUpdateStrategy',
  InvalidSourceConfiguration: 'InvalidSourceConfiguration',
  SourceManagerFailed: 'SourceManagerFailed',
  GitOperationFailed: 'GitOperationFailed',
  UpdateFailed: 'UpdateFailed',
  InvalidPolicySelector: 'InvalidPolicySelector',
  RemovedTemplateField: 'RemovedTemplateField',
} as const;

/** The index of the policies informer by namespace, which the reconciler reads. */
export const POLICY_NAMESPACE_INDEX = 'metadata.namespace';

export interface ImageUpdateAutomationDeps {
  kubeConfig: KubeConfig;
  gitRepositories: Informer<GitRepository>;
  /** ImagePolicies, indexed by POLICY_NAMESPACE_INDEX. */
  policies: Informer<ImagePolicy>;
  requeueDependencyMs: number;
  noCrossNamespaceRefs?: boolean;
  /** The repositories fetched so far, one run per repository at a time. */
  repositories?: RepositoryCache;
  /** The git work; the real one unless a test gives its own. */
  git?: (run: AutomationGitRun) => ReturnType<typeof runAutomationGit>;
  /** Reads a Secret (the GitRepository's credentials, the signing key); tests may give their own. */
  access?: (namespace: string, spec: GitRepositorySpec, timeoutMs: number) => Promise<Access>;
}

interface Run {
  obj: ImageUpdateAutomation;
  ctx: Ctx;
  spec?: ImageUpdateAutomationSpec;
  template?: ParsedTemplate;
  source?: GitRepository;
  access?: Access;
  signer?: CommitSigner;
  /** "<namespace>:<name>" → latest image, for the setters. */
  images?: Map<string, PolicyImage>;
  observed?: ObservedPolicies;
  result?: Awaited<ReturnType<typeof runAutomationGit>>;
}

export class ImageUpdateAutomationReconciler implements Reconciler<ImageUpdateAutomation> {
  readonly failureReason = Reason.ReconciliationFailed;
  private readonly deps: ImageUpdateAutomationDeps;
  readonly recipe: Recipe<Run>;

  constructor(deps: ImageUpdateAutomationDeps) {
    this.deps = deps;
    this.recipe = {
      steps: [
        { name: 'validate', reason: AutomationReason.InvalidSourceConfiguration, run: (r) => this.validate(r) },
        { name: 'source', reason: AutomationReason.SourceManagerFailed, run: (r) => this.source(r) },
        { name: 'policies', reason: AutomationReason.UpdateFailed, run: (r) => this.policies(r) },
        { name: 'update', reason: AutomationReason.GitOperationFailed, run: (r) => this.update(r) },
      ],
      success: (r) => this.success(r),
      classify,
    };
  }

  reconcile(obj: ImageUpdateAutomation, ctx: Ctx): Promise<Outcome> {
    return runSteps(this.recipe, { obj, ctx }, ctx, obj.metadata?.generation);
  }

  /** Everything that can be wrong in the spec alone; none of it gets better by retrying. */
  private validate(run: Run): void {
    const { spec, errors } = checkSpec<ImageUpdateAutomationSpec>(ImageUpdateAutomationKind, run.obj.spec);
    if (errors.length > 0) throw stalled(Reason.InvalidSpec, `invalid spec: ${errors.join('; ')}`);
    const strategy = spec.update?.strategy ?? 'Setters';
    if (strategy !== 'Setters') {
      throw stalled(AutomationReason.InvalidUpdateStrategy, `unsupported update strategy '${strategy}'`);
    }
    if (!spec.git) {
      throw stalled(AutomationReason.InvalidSourceConfiguration, 'spec.git is required: it says how to commit');
    }
    if (spec.sourceRef.kind !== 'GitRepository') {
      throw stalled(
        AutomationReason.InvalidSourceConfiguration,
        `source kind '${spec.sourceRef.kind}' not supported: spec.sourceRef must be a GitRepository`,
      );
    }
    try {
      labelSelectorMatcher(spec.policySelector);
    } catch (err) {
      if (err instanceof LabelSelectorError) {
        throw stalled(AutomationReason.InvalidPolicySelector, `invalid spec.policySelector: ${err.message}`);
      }
      throw err;
    }
    try {
      run.template = parseCommitTemplate(spec.git.commit.messageTemplate ?? DEFAULT_MESSAGE_TEMPLATE);
    } catch (err) {
      if (err instanceof TemplateError) throw templateStall(err);
      throw err;
    }
    if (spec.git.push?.refspec) parseRefspec(spec.git.push.refspec);
    run.spec = spec;
  }

  /** The GitRepository, its credentials and the signing key. */
  private async source(run: Run): Promise<void> {
    const { obj, spec } = run;
    const ns = obj.metadata!.namespace!;
    const refNs = spec!.sourceRef.namespace ?? ns;
    const name = `GitRepository/${refNs}/${spec!.sourceRef.name}`;
    if (refNs !== ns && this.deps.noCrossNamespaceRefs) {
      throw stalled(Reason.AccessDenied, `cannot access '${name}', cross-namespace references have been blocked`);
    }
    const source = this.deps.gitRepositories.get(`${refNs}/${spec!.sourceRef.name}`);
    if (!source) {
      throw waiting(
        Reason.DependencyNotReady,
        `referenced GitRepository does not exist: ${name} not found`,
        this.deps.requeueDependencyMs,
      );
    }
    const timeoutMs = parseDuration(source.spec.timeout ?? '60s');
    run.access = await (this.deps.access
      ? this.deps.access(refNs, source.spec, timeoutMs)
      : gitAccess(this.deps.kubeConfig, refNs, source.spec, timeoutMs));
    run.source = source;
    const key = spec!.git!.commit.signingKey;
    if (key) run.signer = await this.signer(ns, key);
  }

  private async signer(
    namespace: string,
    key: NonNullable<NonNullable<ImageUpdateAutomationSpec['git']>['commit']['signingKey']>,
  ): Promise<CommitSigner> {
    const secret = await readSecret(this.deps.kubeConfig, namespace, key.secretRef.name);
    const values = Object.fromEntries(
      ['git.asc', 'passphrase', 'identity', 'password'].map((k) => [k, secretValue(secret, k)]),
    );
    try {
      return await signerFromSecret(key.type === 'ssh' ? 'ssh' : 'gpg', values);
    } catch (err) {
      if (err instanceof SigningKeyError) {
        throw new SigningKeyError(`signing key secret '${namespace}/${key.secretRef.name}': ${err.message}`);
      }
      throw err;
    }
  }

  /** The namespace's ImagePolicies the selector picks, not suspended, with a latest image. */
  private policies(run: Run): void {
    const ns = run.obj.metadata!.namespace!;
    const matches = labelSelectorMatcher(run.spec!.policySelector);
    run.images = new Map();
    run.observed = {};
    for (const p of this.deps.policies.byIndex(POLICY_NAMESPACE_INDEX, ns)) {
      if (!matches(p.metadata?.labels ?? {})) continue;
      const latest = p.status?.latestRef;
      if (p.spec?.suspend || !latest) continue;
      const name = p.metadata!.name!;
      run.images.set(`${ns}:${name}`, {
        image: latest.name,
        tag: latest.tag,
        ...(latest.digest ? { digest: latest.digest } : {}),
      });
      run.observed[name] = latest;
    }
  }

  private async update(run: Run): Promise<void> {
    const { obj, spec, source } = run;
    const git = spec!.git!;
    const status = obj.status;
    const ns = obj.metadata!.namespace!;
    const work = this.deps.git ?? ((r: AutomationGitRun) => runAutomationGit(r, this.deps.repositories));
    run.result = await work({
      url: source!.spec.url,
      creds: run.access!.creds,
      // Not cut short by a newer request (ctx.signal): a run half-way through a push finishes, and
      // the newer request runs after it.
      options: run.access!.options,
      checkoutRef: git.checkout?.ref ?? source!.spec.ref,
      push: git.push ?? {},
      updatePath: spec!.update?.path,
      policies: run.images!,
      author: { name: git.commit.author.name ?? '', email: git.commit.author.email },
      signer: run.signer,
      upToDate: (revision) =>
        revision === status?.observedSourceRevision &&
        status?.observedGeneration === obj.metadata?.generation &&
        samePolicies(status?.observedPolicies, run.observed!),
      check: (update) => this.checkUpdate(ns, update),
      message: (update) => {
        try {
          return renderCommitMessage(run.template!, templateData(obj, update, git.commit.messageTemplateValues));
        } catch (err) {
          if (err instanceof TemplateError) throw templateStall(err);
          throw err;
        }
      },
    });
  }

  /**
   * A run with a file that is not YAML, or with a marker naming a policy of this namespace that
   * does not exist, commits nothing.
   */
  private checkUpdate(namespace: string, update: UpdateResult): void {
    if (update.invalid.length > 0) {
      const files = update.invalid.map((i) => `${i.path}: ${i.message}`).join('; ');
      throw failed(AutomationReason.UpdateFailed, `failed to apply policies: not valid YAML: ${files}`);
    }
    const unknown = update.skipped.filter((s) => {
      if (s.reason !== 'no-policy') return false;
      const [markerNs, name] = s.marker.split(':');
      return markerNs === namespace && !this.deps.policies.get(`${namespace}/${name}`);
    });
    if (unknown.length > 0) {
      const where = unknown.map((s) => `${s.path} line ${s.line} names ImagePolicy '${s.marker}'`).join('; ');
      throw failed(AutomationReason.UpdateFailed, `failed to apply policies: ${where}, which does not exist`);
    }
  }

  private success(run: Run): Outcome {
    const { ctx, spec } = run;
    const result = run.result!;
    const now = ctx.now();
    ctx.status.lastAutomationRunTime = rfc3339(now);
    ctx.status.observedPolicies = run.observed!;
    ctx.status.observedSourceRevision = result.sourceRevision;
    let message = 'repository up-to-date';
    if (result.kind === 'pushed') {
      ctx.status.lastPushCommit = result.commit;
      ctx.status.lastPushTime = rfc3339(now);
      const to = result.refs.map((r) => r.replace(/^refs\/heads\//, '')).join("', '");
      message = `pushed commit '${result.commit.slice(0, 7)}' to '${to}'`;
      ctx.event('Normal', Reason.Succeeded, `pushed commit '${result.commit}' to '${to}'\n${result.message}`);
    }
    return {
      type: 'success',
      reason: Reason.ReconciliationSucceeded,
      message,
      requeueAfterMs: parseDuration(spec!.interval),
    };
  }
}

function samePolicies(a: ObservedPolicies | undefined, b: ObservedPolicies): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => {
    const x = a![k]!;
    const y = b[k];
    return y !== undefined && x.name === y.name && x.tag === y.tag && (x.digest ?? '') === (y.digest ?? '');
  });
}

function templateStall(err: TemplateError): ReconcileError {
  const removed = /removed '\.(Updated|Changed\.ImageResult)'/.test(err.message);
  return stalled(
    removed ? AutomationReason.RemovedTemplateField : AutomationReason.InvalidSourceConfiguration,
    `spec.git.commit.messageTemplate: ${err.message}`,
  );
}

/** Flux's TemplateData: the automation, the changes by file and object, and messageTemplateValues. */
export function templateData(
  obj: ImageUpdateAutomation,
  update: UpdateResult,
  values: Record<string, string> | undefined,
): CommitTemplateData {
  const files: Record<string, Map<ObjectIdentifier, Change[]>> = {};
  for (const file of update.updated) {
    const byObject = new Map<string, { id: ObjectIdentifier; changes: Change[] }>();
    for (const c of file.changes) {
      const key = `${c.object.apiVersion}|${c.object.kind}|${c.object.namespace}|${c.object.name}`;
      let entry = byObject.get(key);
      if (!entry) {
        entry = {
          id: {
            Name: c.object.name,
            Namespace: c.object.namespace,
            APIVersion: c.object.apiVersion,
            Kind: c.object.kind,
          },
          changes: [],
        };
        byObject.set(key, entry);
      }
      entry.changes.push({ OldValue: c.from, NewValue: c.to, Setter: c.marker });
    }
    files[file.path] = new Map([...byObject.values()].map((e) => [e.id, e.changes]));
  }
  return {
    AutomationObject: { Name: obj.metadata!.name!, Namespace: obj.metadata!.namespace! },
    Changed: { FileChanges: files },
    ...(values ? { Values: values } : {}),
  };
}

function classify(err: unknown): ReconcileError | undefined {
  if (err instanceof GitSpecError || err instanceof UpdatePathError || err instanceof InvalidRefError) {
    return stalled(AutomationReason.InvalidSourceConfiguration, err.message);
  }
  if (err instanceof SigningKeyError) return failed(AutomationReason.SourceManagerFailed, err.message);
  if (err instanceof SecretError) return failed(AutomationReason.SourceManagerFailed, err.message);
  if (err instanceof TransportError) {
    const reason = err.kind === 'auth' ? Reason.AuthenticationFailed : AutomationReason.GitOperationFailed;
    return failed(reason, `failed to checkout source: ${err.message}`);
  }
  if (err instanceof RefNotFoundError) {
    return failed(AutomationReason.GitOperationFailed, `failed to checkout source: ${err.message}`);
  }
  if (err instanceof PushError) {
    const reason = err.auth ? Reason.AuthenticationFailed : AutomationReason.GitOperationFailed;
    return failed(reason, `failed to push: ${err.message}`);
  }
  if (err instanceof PushRejectedError) {
    return failed(AutomationReason.GitOperationFailed, `failed to push: ${err.message}`);
  }
  return undefined;
}
