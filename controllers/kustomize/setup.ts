// The kustomize controller: Kustomization, fed by GitRepository and OCIRepository artifacts.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { tmpdir } from 'node:os';
import { setTimeout } from 'node:timers/promises';
import { join } from 'node:path';
import { KustomizationKind } from '../api/kustomize/kustomization.ts';
import { resourceTypeOf } from '../api/kind.ts';
import { GitRepositoryKind } from '../api/source/gitrepository.ts';
import { OCIRepositoryKind } from '../api/source/ocirepository.ts';
import { applyAll } from '../runtime/apply/apply.ts';
import { inventoryOf } from '../runtime/apply/changeset.ts';
import { waitForHealth } from '../runtime/apply/health.ts';
import { prune, waitForDeletion } from '../runtime/apply/prune.ts';
import { impersonating } from '../runtime/kubeconfig.ts';
import { unlessNotFound } from '../runtime/api-errors.ts';
import { isTrue } from '../runtime/conditions.ts';
import { failed } from '../runtime/outcome.ts';
import { Reason } from '../runtime/reasons.ts';
import { flag, type Options } from '../runtime/options.ts';
import { keyOf } from '../runtime/resource.ts';
import { requeueOnConfigChange } from '../runtime/watch-configs.ts';
import { defineController, reconcilesRules, sharedFlags, type SetupContext } from '../runtime/setup.ts';
import { ArtifactError } from './render/errors.ts';
import { ArtifactCache } from './render/cache.ts';
import { queueOrder, SourceChanges } from './render/changes.ts';
import { keysFromSecret, type DecryptionKeys } from './render/decrypt.ts';
import { buildManifests } from './render/manifests.ts';
import type { VariableSource } from './render/substitute.ts';
import {
  configKeys,
  dependencyKey,
  dependencyKeys,
  sourceKey,
  type Kustomization,
  type Source,
} from './dependencies.ts';
import {
  FIELD_MANAGER,
  KustomizationReconciler,
  type KustomizeSteps,
  type SourceKind,
  type StepsTarget,
} from './reconciler.ts';
import { RemoteClusters } from '../runtime/remote-clusters.ts';

const SOURCE_INDEX = 'spec.sourceRef';
type Artifact = NonNullable<NonNullable<Source['status']>['artifact']>;
const DEPENDS_INDEX = 'spec.dependsOn';
const MAX_ARTIFACT_BYTES = 512 * 1024 * 1024;

/** Reads postBuild.substituteFrom objects from the Kustomization's namespace. */
function variables(kc: KubeConfig, namespace: string): VariableSource {
  const core = kc.makeApiClient(CoreV1Api);
  return async (kind, name) => {
    const obj = await unlessNotFound<{ data?: Record<string, string> }>(
      kind === 'ConfigMap'
        ? core.readNamespacedConfigMap({ name, namespace })
        : core.readNamespacedSecret({ name, namespace }),
    );
    return obj && (obj.data ?? {});
  };
}

/** The keys of spec.decryption.secretRef (none without one); a missing Secret fails the build. */
async function decryptionKeys(kc: KubeConfig, namespace: string, name: string | undefined): Promise<DecryptionKeys> {
  if (!name) return { age: [], pgp: [] };
  const secret = await unlessNotFound(kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name, namespace }));
  if (!secret) throw failed(Reason.BuildFailed, `decryption Secret '${namespace}/${name}' not found`);
  return keysFromSecret(secret.data ?? {});
}

export interface StepsOptions {
  kustomizePath: string;
  sopsPath: string;
  /** Shared by all steps of a controller, whatever account they act as. */
  artifacts: ArtifactCache;
  /** Where postBuild.substituteFrom is read: this cluster, as the controller or the ServiceAccount. */
  local: KubeConfig;
}

/** Steps that apply, prune and check health through `kc` (this cluster or a remote one). */
export function kustomizeSteps(
  kc: KubeConfig,
  { kustomizePath, sopsPath, artifacts, local }: StepsOptions,
): KustomizeSteps {
  return {
    fetch: (url, digest, timeoutMs) => artifacts.acquire(url, digest ?? '', timeoutMs),
    async build(dir, obj, spec, timeoutMs) {
      const namespace = obj.metadata!.namespace!;
      const keys = spec.decryption
        ? await decryptionKeys(local, namespace, spec.decryption.secretRef?.name)
        : undefined;
      try {
        return await buildManifests(dir, spec, {
          kustomizePath,
          timeoutMs,
          readVariables: variables(local, namespace),
          decryption: { sopsPath, keys },
        });
      } catch (err) {
        if (err instanceof ArtifactError) throw failed(Reason.ArtifactFailed, err.message);
        throw err;
      }
    },
    async apply(objects, { force, ignore }) {
      const changeSet = await applyAll(kc, objects, { fieldManager: FIELD_MANAGER, force, ignore });
      const observed = new Map(changeSet.flatMap((e) => (e.object ? [[e.id, e.object] as const] : [])));
      return {
        changes: changeSet.map((e) => ({ id: e.subject, action: e.action })),
        inventory: inventoryOf(changeSet),
        observed,
      };
    },
    async prune(stale, owner) {
      const changes = await prune(kc, stale, { ownerLabels: owner });
      return changes.filter((c) => c.action === 'deleted').map((c) => c.subject);
    },
    waitForTermination: (entries, timeoutMs) => waitForDeletion(kc, entries, timeoutMs),
    waitForHealth: (entries, timeoutMs, opts) => waitForHealth(kc, entries, timeoutMs, undefined, opts),
  };
}

export const kustomizeFlags = {
  'requeue-dependency': sharedFlags['requeue-dependency'],
  'kustomize-path': flag.string({ default: 'kustomize', help: 'The kustomize v5 binary.' }),
  'sops-path': flag.string({ default: 'sops', help: 'The sops binary, for spec.decryption.' }),
  'no-cross-namespace-refs': sharedFlags['no-cross-namespace-refs'],
  'default-service-account': sharedFlags['default-service-account'],
  'watch-configs-label-selector': sharedFlags['watch-configs-label-selector'],
};

export type KustomizeOptions = Options<typeof kustomizeFlags>;

export const kustomize = defineController({
  name: 'kustomize',
  flags: kustomizeFlags,
  setup: setupKustomize,
  rbac: {
    rules: [
      ...reconcilesRules('kustomize.toolkit.fluxcd.io', ['kustomizations']),
      {
        apiGroups: ['source.toolkit.fluxcd.io'],
        resources: ['gitrepositories', 'ocirepositories'],
        verbs: ['get', 'list', 'watch'],
      },
      // postBuild.substituteFrom, decryption keys, remote kubeconfigs; labelled ones are watched.
      { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['impersonate'] },
    ],
    appliesAnyObject: true,
  },
});

export async function setupKustomize({ manager, options }: SetupContext<KustomizeOptions>): Promise<void> {
  const requeueDependencyMs = options.requeueDependency;
  // Made on the first download, not at start-up; per process, and removed on stop.
  const artifacts = new ArtifactCache(join(tmpdir(), `tide-artifacts-${process.pid}`), {
    maxBytes: MAX_ARTIFACT_BYTES,
  });
  manager.onStop(() => artifacts.clear());
  const base = { kustomizePath: options.kustomizePath, sopsPath: options.sopsPath, artifacts };
  const local = manager.kubeConfig;
  const asController = kustomizeSteps(local, { ...base, local });
  const remotes = new RemoteClusters(local);
  // spec.kubeConfig: apply to the cluster of the Secret's kubeconfig (as the ServiceAccount there,
  // when one is named); spec.serviceAccountName alone: this cluster, as that ServiceAccount.
  const stepsFor = async ({ namespace, serviceAccountName, kubeConfig }: StepsTarget): Promise<KustomizeSteps> => {
    const sa = serviceAccountName ? { namespace, name: serviceAccountName } : undefined;
    if (kubeConfig?.secretRef) {
      const remote = await remotes.kubeConfigFor(namespace, kubeConfig.secretRef);
      return kustomizeSteps(sa ? impersonating(remote, sa) : remote, { ...base, local });
    }
    if (!sa) return asController;
    const as = impersonating(local, sa);
    return kustomizeSteps(as, { ...base, local: as });
  };
  const kustomizations = manager.informer<Kustomization>(resourceTypeOf(KustomizationKind));
  const sources = {
    GitRepository: manager.informer<Source>(resourceTypeOf(GitRepositoryKind)),
    OCIRepository: manager.informer<Source>(resourceTypeOf(OCIRepositoryKind)),
  } satisfies Record<SourceKind, unknown>;
  kustomizations.addIndex(SOURCE_INDEX, sourceKey);
  kustomizations.addIndex(DEPENDS_INDEX, dependencyKeys);
  const reconciler = new KustomizationReconciler({
    kubeConfig: manager.kubeConfig,
    kustomizations,
    sources,
    stepsFor,
    requeueDependencyMs,
    noCrossNamespaceRefs: options.noCrossNamespaceRefs,
    defaultServiceAccount: options.defaultServiceAccount || undefined,
  });
  const controller = manager.addController<Kustomization>({
    name: 'kustomization',
    resource: resourceTypeOf(KustomizationKind),
    fieldManager: FIELD_MANAGER,
    reconciler,
    isSuspended: (o) => o.spec?.suspend === true,
    revision: (o) => o.status?.lastAppliedRevision,
  });
  // A new source revision reaches its Kustomizations at once, not at their next interval.
  for (const [kind, informer] of Object.entries(sources)) {
    informer.on({
      add: (s) => enqueueForSource(kind, s),
      update: (o, n) => {
        if (o.status?.artifact?.revision !== n.status?.artifact?.revision) {
          enqueueForSource(kind, n, o.status?.artifact);
        }
      },
    });
  }
  const changes = new SourceChanges((artifact) => artifacts.acquire(artifact.url, artifact.digest, 60_000));
  function enqueueForSource(kind: string, s: Source, before?: Artifact): void {
    const after = s.status?.artifact;
    if (!after?.revision) return;
    const key = `${kind}/${keyOf(s)}`;
    const waiting = kustomizations
      .byIndex(SOURCE_INDEX, key)
      .filter((k) => k.status?.lastAttemptedRevision !== after.revision);
    if (waiting.length === 0) return;
    if (waiting.length < 2 || !before?.digest || !after.digest) {
      for (const k of waiting) controller.enqueue(keyOf(k), key, after.revision);
      return;
    }
    void changedFirst(key, before, after).then((changed) => {
      // Those whose path changed first; the others (most of which only record the revision) after.
      for (const k of queueOrder(waiting, changed)) controller.enqueue(keyOf(k), key, after.revision);
    });
  }
  /** Which paths changed from `before` to `after`; undefined when that cannot be read in time. */
  async function changedFirst(key: string, before: Artifact, after: Artifact) {
    try {
      const diff = changes.changed(
        key,
        { url: before.url, digest: before.digest! },
        { url: after.url, digest: after.digest! },
      );
      return await Promise.race([diff, setTimeout(5_000, undefined, { ref: false })]);
    } catch {
      // Only an ordering hint: the reconciles report an artifact that cannot be read.
      return undefined;
    }
  }
  // The artifact a new Kustomization reads is read for the comparison with the next revision.
  kustomizations.on({
    add: (k) => {
      const [sourceName] = sourceKey(k);
      const artifact = reconciler.sourceOf(k)?.status?.artifact;
      // Only sources several Kustomizations read are put in order.
      if (sourceName && artifact?.digest && kustomizations.byIndex(SOURCE_INDEX, sourceName).length >= 2) {
        changes.remember(sourceName, { url: artifact.url, digest: artifact.digest }).catch(() => {});
      }
    },
  });
  // Labelled ConfigMaps and Secrets they read re-queue them when their data changes.
  const selector = options.watchConfigsLabelSelector;
  if (selector) requeueOnConfigChange(manager, selector, kustomizations, configKeys, controller);
  // A Kustomization becoming Ready releases the ones that wait for it; any change may satisfy a
  // dependent's readyExpr.
  kustomizations.on({
    update: (o, n) => {
      const ready = (k: Kustomization) => isTrue(k.status?.conditions, 'Ready');
      const released = ready(n) && (!ready(o) || o.status?.lastAppliedRevision !== n.status?.lastAppliedRevision);
      const key = keyOf(n);
      for (const dependent of kustomizations.byIndex(DEPENDS_INDEX, key)) {
        const byExpression = dependent.spec?.dependsOn?.some((d) => d.readyExpr && dependencyKey(dependent, d) === key);
        if (released || byExpression) controller.enqueue(keyOf(dependent));
      }
    },
  });
}
