// Installs the committed CRDs (crds/*.yaml) the way a user would: server-side apply.
import {
  ApiextensionsV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { eventually } from './eventually.ts';

const crdDir = join(import.meta.dirname, '..', '..', 'crds');

export async function installCRDs(kc: KubeConfig): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const names: string[] = [];
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(crdDir, file), 'utf8'))) {
      const obj = doc.toJS() as KubernetesObject;
      await api.patch(obj, undefined, undefined, 'tide-tests', true, PatchStrategy.ServerSideApply);
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
