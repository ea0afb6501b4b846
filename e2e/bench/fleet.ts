// The fleet the Kustomization benchmarks reconcile, modelled on Flux's public benchmark: one
// GitRepository `fleet` in `default` and N apps, each a Kustomization app-<i> (prune, wait, interval
// 1h) applying ./apps/app-<i>: a Namespace bench-<i> with a ServiceAccount, a Service, a ConfigMap and
// a Deployment.
import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { commit, createRepo } from '../support/git/repos.ts';
import { batched } from './support.ts';

export const KS = {
  group: 'kustomize.toolkit.fluxcd.io',
  version: 'v1',
  namespace: 'default',
  plural: 'kustomizations',
};
export const KS_PATH = '/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations';
export const GITREPO_PATH = '/apis/source.toolkit.fluxcd.io/v1/namespaces/default/gitrepositories';

/** app-<i>'s manifests; `value` is its ConfigMap's data.key (a one-app commit changes it). */
export function manifests(i: number, value = 'value'): string {
  const ns = `bench-${i}`;
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: ${ns}}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: ${ns}}
spec:
  selector: {app: app}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: ${ns}}
data: {key: ${value}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      serviceAccountName: app
      containers: [{name: app, image: registry.example/app:1.0.0}]
`;
}

export const ksNames = (n: number) => Array.from({ length: n }, (_, i) => `app-${i}`);

/** The git repository `fleet` under `root` with n apps; returns its path. */
export async function createFleetRepo(root: string, n: number): Promise<string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`apps/app-${i}/manifests.yaml`] = manifests(i);
  return (await createRepo(root, 'fleet', { branch: 'main', files })).path;
}

/** A commit to the fleet repository giving app-<i>'s ConfigMap `value`; returns its sha. */
export function commitApp(repoPath: string, i: number, value: string): Promise<string> {
  return commit(repoPath, {
    branch: 'main',
    files: { [`apps/app-${i}/manifests.yaml`]: manifests(i, value) },
    message: `app-${i}: ${value}`,
  });
}

/** The GitRepository `fleet` at `url` and the n Kustomizations. */
export async function createFleet(api: CustomObjectsApi, url: string, n: number): Promise<void> {
  await api.createNamespacedCustomObject({
    group: 'source.toolkit.fluxcd.io',
    version: 'v1',
    plural: 'gitrepositories',
    namespace: 'default',
    body: {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: 'fleet' },
      spec: { url, interval: '1h', ref: { branch: 'main' } },
    },
  });
  await batched(n, (i) =>
    api.createNamespacedCustomObject({
      ...KS,
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: `app-${i}` },
        spec: {
          interval: '1h',
          prune: true,
          wait: true,
          timeout: '10m',
          path: `./apps/app-${i}`,
          sourceRef: { kind: 'GitRepository', name: 'fleet' },
        },
      },
    }),
  );
}

/** Asks for a reconcile of one object, as `flux reconcile` does. */
export function requestReconcile(
  api: CustomObjectsApi,
  at: string,
  name: string,
  plural = KS.plural,
  group = KS.group,
): Promise<unknown> {
  return api.patchNamespacedCustomObject(
    {
      group,
      version: 'v1',
      plural,
      namespace: 'default',
      name,
      body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': at } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}
