// Installs the committed CRDs (crds/*.yaml) the way a user would: server-side apply; builds the
// Widget CRD tests use as a custom resource of their own.
import { ApiextensionsV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { apiClientFor } from '../../controllers/runtime/apply/client.ts';
import { eventually } from './eventually.ts';

const crdDir = join(import.meta.dirname, '..', '..', 'crds');

export async function installCRDs(kc: KubeConfig): Promise<void> {
  // The raw documents, as kubectl sends them: client-node's typed serializer would drop keys it
  // only knows by their TypeScript names (x-kubernetes-preserve-unknown-fields).
  const client = apiClientFor(kc);
  const res = await client.resourceFor('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
  const names: string[] = [];
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(crdDir, file), 'utf8'))) {
      const obj = doc.toJS() as KubernetesObject;
      await client.apply(res!, obj, { fieldManager: 'tide-tests', force: true });
      names.push(obj.metadata!.name!);
    }
  }
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of names) {
    await eventually(async () => {
      const crd = await ext.readCustomResourceDefinition({ name });
      if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'))
        throw new Error(`${name} not established`);
    });
  }
}

/**
 * The namespaced CRD `widgets.<group>` (kind Widget), served and stored as v1 with the given
 * schema and, if given, subresources.
 */
export function widgetCRD(
  group: string,
  openAPIV3Schema: Record<string, unknown>,
  subresources?: Record<string, unknown>,
): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          ...(subresources ? { subresources } : {}),
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}
