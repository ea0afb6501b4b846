// How a registry is reached for an object of the Flux API that names one (OCIRepository,
// ImageRepository): spec.secretRef's credentials, else those of the first image pull secret of
// spec.serviceAccountName that has some for the registry; certSecretRef's TLS material;
// spec.insecure (plain HTTP); proxySecretRef. Failures are SecretErrors naming the object read.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { errorMessage, unlessNotFound } from '../../runtime/api-errors.ts';
import { readSecret, SecretError } from '../gitrepository/credentials.ts';
import type { ProxyConfig } from '../git/proxy.ts';
import { proxyFor } from '../gitrepository/proxy.ts';
import { registryCredentialsFrom, registryTlsFrom, type RegistryCredentials, type RegistryTls } from './auth.ts';

export interface RegistryAccess {
  credentials?: RegistryCredentials | undefined;
  tls?: RegistryTls | undefined;
  insecure?: boolean | undefined;
  proxy?: ProxyConfig | undefined;
  timeoutMs?: number | undefined;
}

/** The fields of a spec that say how to reach its registry. */
export interface RegistryAccessSpec {
  secretRef?: { name: string } | undefined;
  serviceAccountName?: string | undefined;
  certSecretRef?: { name: string } | undefined;
  proxySecretRef?: { name: string } | undefined;
  insecure?: boolean | undefined;
}

export async function registryAccess(
  kc: KubeConfig,
  namespace: string,
  registry: string,
  spec: RegistryAccessSpec,
  timeoutMs?: number,
): Promise<RegistryAccess> {
  let credentials: RegistryCredentials | undefined;
  if (spec.secretRef) {
    credentials = registryCredentialsFrom(await readSecret(kc, namespace, spec.secretRef.name), registry);
  }
  if (!credentials && spec.serviceAccountName) {
    for (const secret of await pullSecrets(kc, namespace, spec.serviceAccountName)) {
      credentials = registryCredentialsFrom(secret, registry);
      if (credentials) break;
    }
  }
  const tls = spec.certSecretRef
    ? registryTlsFrom(await readSecret(kc, namespace, spec.certSecretRef.name))
    : undefined;
  const proxy = await proxyFor(kc, namespace, spec.proxySecretRef);
  return { credentials, tls, insecure: spec.insecure, proxy, timeoutMs };
}

/** The image pull secrets of a ServiceAccount, those that exist, in its order. */
async function pullSecrets(kc: KubeConfig, namespace: string, name: string): Promise<V1Secret[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const sa = await unlessNotFound(core.readNamespacedServiceAccount({ name, namespace })).catch((err: unknown) => {
    throw new SecretError(`cannot read service account '${namespace}/${name}': ${errorMessage(err)}`);
  });
  if (!sa) throw new SecretError(`service account '${namespace}/${name}' not found`);
  const secrets: V1Secret[] = [];
  for (const ref of sa.imagePullSecrets ?? []) {
    if (!ref.name) continue;
    const secret = await unlessNotFound(core.readNamespacedSecret({ name: ref.name, namespace })).catch(
      () => undefined,
    );
    if (secret) secrets.push(secret);
  }
  return secrets;
}
