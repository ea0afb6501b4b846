// The image controller: ImageRepository (tags scanned from registries, kept on disk) and
// ImagePolicy (the latest of those tags by policy) and ImageUpdateAutomation (the policies' latest
// images written into git and pushed).
import { CoreV1Api } from '@kubernetes/client-node';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImagePolicyKind } from '../api/image/imagepolicy.ts';
import { ImageRepositoryKind } from '../api/image/imagerepository.ts';
import { ImageUpdateAutomationKind } from '../api/image/imageupdateautomation.ts';
import { GitRepositoryKind, type GitRepositorySpec } from '../api/source/gitrepository.ts';
import type { ManagedObject } from '../runtime/controller.ts';
import { resourceTypeOf } from '../api/kind.ts';
import { flag, type Options } from '../runtime/options.ts';
import { keyOf } from '../runtime/resource.ts';
import type { Informer } from '../runtime/informer.ts';
import { defineController, reconcilesRules, sharedFlags, type SetupContext } from '../runtime/setup.ts';
import { type ImagePolicy, ImagePolicyReconciler } from './imagepolicy/reconciler.ts';
import { type ImageRepository, ImageRepositoryReconciler } from './imagerepository/reconciler.ts';
import {
  type ImageUpdateAutomation,
  ImageUpdateAutomationReconciler,
  POLICY_NAMESPACE_INDEX,
} from './imageupdateautomation/reconciler.ts';
import { RepositoryCache } from './update/repository.ts';
import { Re2SyntaxError, translateRe2 } from './policy/re2.ts';
import { TagStore } from './tag-store.ts';

const REPOSITORY_INDEX = 'spec.imageRepositoryRef';

export const imageFlags = {
  'image-storage-path': flag.string({
    default: join(tmpdir(), 'tide-image-tags'),
    help:
      'Directory of the scanned tags, one file per ImageRepository (Flux: --storage-path), ' +
      'and of the git repositories ImageUpdateAutomations fetch.',
  }),
  'requeue-dependency': sharedFlags['requeue-dependency'],
  'no-cross-namespace-refs': sharedFlags['no-cross-namespace-refs'],
};

export type ImageOptions = Options<typeof imageFlags>;

export const image = defineController({
  name: 'image',
  flags: imageFlags,
  setup: setupImage,
  rbac: {
    rules: [
      ...reconcilesRules('image.toolkit.fluxcd.io', ['imagerepositories', 'imagepolicies', 'imageupdateautomations']),
      { apiGroups: ['source.toolkit.fluxcd.io'], resources: ['gitrepositories'], verbs: ['get', 'list', 'watch'] },
      // Registry and git credentials, signing keys; a repository's ServiceAccount for its pull Secrets.
      { apiGroups: [''], resources: ['secrets', 'serviceaccounts'], verbs: ['get'] },
      // An ImagePolicy's spec.imageRepositoryRef across namespaces checks the namespace's labels.
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
    ],
  },
});

export async function setupImage({ manager, options }: SetupContext<ImageOptions>): Promise<void> {
  const tags = new TagStore(options.imageStoragePath);
  const rt = resourceTypeOf(ImageRepositoryKind);
  manager.addController<ImageRepository>({
    name: 'imagerepository',
    resource: rt,
    fieldManager: 'image-reflector-controller',
    reconciler: new ImageRepositoryReconciler({
      kubeConfig: manager.kubeConfig,
      tags,
      compilePattern: (pattern, field) => {
        try {
          return translateRe2(pattern).regexp;
        } catch (err) {
          if (err instanceof Re2SyntaxError) throw new Error(`${field}: ${err.message}`);
          throw err;
        }
      },
    }),
    isSuspended: (o) => o.spec?.suspend === true,
  });

  const repositories = manager.informer<ImageRepository>(rt);
  const policies = manager.informer<ImagePolicy>(resourceTypeOf(ImagePolicyKind));
  policies.addIndex(REPOSITORY_INDEX, (p) => [
    `${p.spec?.imageRepositoryRef?.namespace ?? p.metadata?.namespace}/${p.spec?.imageRepositoryRef?.name}`,
  ]);
  const core = manager.kubeConfig.makeApiClient(CoreV1Api);
  const policyController = manager.addController<ImagePolicy>({
    name: 'imagepolicy',
    resource: resourceTypeOf(ImagePolicyKind),
    fieldManager: 'image-reflector-controller',
    reconciler: new ImagePolicyReconciler({
      kubeConfig: manager.kubeConfig,
      repositories,
      tags,
      requeueDependencyMs: options.requeueDependency,
      noCrossNamespaceRefs: options.noCrossNamespaceRefs,
      namespaceHasLabels: async (name, labels) => {
        const ns = await core.readNamespace({ name });
        return Object.entries(labels).every(([k, v]) => ns.metadata?.labels?.[k] === v);
      },
    }),
    isSuspended: (o) => o.spec?.suspend === true,
    // The selected tag, with its digest as OCIRepository revisions write it (<tag>@sha256:<hex>).
    revision: ({ status }) =>
      status?.latestRef && [status.latestRef.tag, status.latestRef.digest].filter(Boolean).join('@'),
  });
  // A new scan result re-evaluates the policies of the repository at once.
  repositories.on({
    add: (r) => enqueuePolicies(r),
    update: (o, n) => {
      if (o.status?.lastScanResult?.revision !== n.status?.lastScanResult?.revision) enqueuePolicies(n);
    },
  });
  setupAutomation(manager, options, policies);
  function enqueuePolicies(r: ImageRepository): void {
    if (!r.status?.lastScanResult) return;
    const key = keyOf(r);
    for (const p of policies.byIndex(REPOSITORY_INDEX, key))
      policyController.enqueue(keyOf(p), `ImageRepository/${key}`);
  }
}

/**
 * ImageUpdateAutomation, re-run at once when a policy of its namespace selects another image (or
 * is labelled, suspended, removed), and when its GitRepository's spec changes or it appears.
 */
function setupAutomation(
  manager: SetupContext<ImageOptions>['manager'],
  options: ImageOptions,
  policies: Informer<ImagePolicy>,
): void {
  policies.addIndex(POLICY_NAMESPACE_INDEX, (p) => [p.metadata?.namespace ?? '']);
  const rt = resourceTypeOf(ImageUpdateAutomationKind);
  const automations = manager.informer<ImageUpdateAutomation>(rt);
  automations.addIndex(AUTOMATION_NAMESPACE_INDEX, (a) => [a.metadata?.namespace ?? '']);
  automations.addIndex(AUTOMATION_SOURCE_INDEX, (a) => [
    `${a.spec?.sourceRef?.namespace ?? a.metadata?.namespace}/${a.spec?.sourceRef?.name}`,
  ]);
  const gitRepositories = manager.informer<GitRepository>(resourceTypeOf(GitRepositoryKind));
  const controller = manager.addController<ImageUpdateAutomation>({
    name: 'imageupdateautomation',
    resource: rt,
    fieldManager: 'image-automation-controller',
    reconciler: new ImageUpdateAutomationReconciler({
      kubeConfig: manager.kubeConfig,
      gitRepositories,
      policies,
      requeueDependencyMs: options.requeueDependency,
      noCrossNamespaceRefs: options.noCrossNamespaceRefs,
      // Next to the tag files; no namespace (a DNS label) is named like this.
      repositories: new RepositoryCache(join(options.imageStoragePath, '_repositories')),
    }),
    isSuspended: (o) => o.spec?.suspend === true,
    revision: (o) => o.status?.lastPushCommit,
  });
  const latest = (p: ImagePolicy) => JSON.stringify([p.status?.latestRef, p.metadata?.labels, p.spec?.suspend]);
  const enqueue = (p: ImagePolicy) => {
    for (const a of automations.byIndex(AUTOMATION_NAMESPACE_INDEX, p.metadata?.namespace ?? '')) {
      controller.enqueue(keyOf(a), `ImagePolicy/${keyOf(p)}`);
    }
  };
  policies.on({
    add: (p) => enqueue(p),
    update: (o, n) => {
      if (latest(o) !== latest(n)) enqueue(n);
    },
    delete: (p) => enqueue(p),
  });
  const enqueueUsers = (g: GitRepository) => {
    const key = keyOf(g);
    for (const a of automations.byIndex(AUTOMATION_SOURCE_INDEX, key))
      controller.enqueue(keyOf(a), `GitRepository/${key}`);
  };
  gitRepositories.on({
    add: (g) => enqueueUsers(g),
    update: (o, n) => {
      if (o.metadata?.generation !== n.metadata?.generation) enqueueUsers(n);
    },
  });
}

type GitRepository = ManagedObject & { spec: GitRepositorySpec };
const AUTOMATION_SOURCE_INDEX = 'spec.sourceRef';

const AUTOMATION_NAMESPACE_INDEX = 'metadata.namespace';
