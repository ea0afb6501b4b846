// Writes the status subresource with server-side apply under the controller's field manager.
import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { apiVersionOf, type ResourceType } from './resource.ts';

export class StatusPatcher {
  private readonly api: CustomObjectsApi;
  private readonly fieldManager: string;

  constructor(kc: KubeConfig, fieldManager: string) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.fieldManager = fieldManager;
  }

  /**
   * Applies `status` unless it equals `current` (what the object has: its cached status, or what
   * this reconcile last wrote); returns the object as the API server answered, or undefined when
   * nothing was written.
   */
  async patch(
    rt: ResourceType,
    obj: KubernetesObject & { status?: unknown },
    status: object,
    current: unknown = obj.status,
  ): Promise<KubernetesObject | undefined> {
    if (isDeepStrictEqual(current ?? {}, status)) return undefined;
    const name = obj.metadata!.name!;
    const namespace = obj.metadata?.namespace;
    const body = {
      apiVersion: apiVersionOf(rt),
      kind: rt.kind,
      metadata: { name, ...(namespace ? { namespace } : {}) },
      status,
    };
    const options = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
    const common = {
      group: rt.group,
      version: rt.version,
      plural: rt.plural,
      name,
      body,
      fieldManager: this.fieldManager,
      force: true,
    };
    const written = rt.namespaced
      ? await this.api.patchNamespacedCustomObjectStatus({ ...common, namespace: namespace! }, options)
      : await this.api.patchClusterCustomObjectStatus(common, options);
    return written as KubernetesObject;
  }
}
