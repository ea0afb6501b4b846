// Every test works in its own namespace, so tests never see each other's objects.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { statusCode } from '../../controllers/runtime/api-errors.ts';

/** Creates `<prefix>-<random>` and returns the name. */
export async function createTestNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const base =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 50) || 'test';
  const name = `${base}-${randomBytes(3).toString('hex')}`;
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name, labels: { 'tide.test/namespace': 'true' } } } });
  return name;
}

/** Deletes the namespace without waiting for it to empty; a missing namespace is fine. */
export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name });
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
  }
}
