// Finalizers on the objects a controller owns, so it can clean up (artifacts, inventories) before
// the API server lets the object go.
import { KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export const FLUX_FINALIZER = 'finalizers.fluxcd.io';

export function hasFinalizer(obj: KubernetesObject, name: string = FLUX_FINALIZER): boolean {
  return (obj.metadata?.finalizers ?? []).includes(name);
}

/**
 * Adds or removes a finalizer. The merge patch carries the resourceVersion that was read, so a
 * concurrent change to the list fails with a conflict instead of being overwritten.
 */
export async function setFinalizer(
  kc: KubeConfig,
  obj: KubernetesObject,
  present: boolean,
  name: string = FLUX_FINALIZER,
): Promise<void> {
  const current = obj.metadata?.finalizers ?? [];
  if (current.includes(name) === present) return;
  const finalizers = present ? [...current, name] : current.filter((f) => f !== name);
  await KubernetesObjectApi.makeApiClient(kc).patch(
    {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: {
        name: obj.metadata?.name,
        namespace: obj.metadata?.namespace,
        resourceVersion: obj.metadata?.resourceVersion,
        finalizers,
      },
    },
    undefined,
    undefined,
    undefined,
    undefined,
    PatchStrategy.MergePatch,
  );
}
