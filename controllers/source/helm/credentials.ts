// The credentials of a HelmRepository: basic auth from spec.secretRef, TLS from spec.certSecretRef
// (or, deprecated as in Flux, the certFile/keyFile/caFile keys of spec.secretRef).
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { readSecret, SecretError, secretValue } from '../gitrepository/credentials.ts';
import { registryTlsFrom } from '../oci/auth.ts';
import type { HttpAccess } from './http.ts';

export interface RepositoryAuthSpec {
  secretRef?: { name: string } | undefined;
  certSecretRef?: { name: string } | undefined;
  passCredentials?: boolean | undefined;
}

/** What a HelmRepository's Secrets give for HTTP(S) access to its index and charts. */
export async function httpAccess(kc: KubeConfig, namespace: string, spec: RepositoryAuthSpec): Promise<HttpAccess> {
  const access: HttpAccess = { passCredentials: spec.passCredentials === true };
  let auth: V1Secret | undefined;
  if (spec.secretRef) {
    auth = await readSecret(kc, namespace, spec.secretRef.name);
    const username = secretValue(auth, 'username');
    const password = secretValue(auth, 'password');
    if ((username === undefined) !== (password === undefined)) {
      throw new SecretError(
        `invalid secret '${namespace}/${spec.secretRef.name}': 'username' and 'password' must be given together`,
      );
    }
    if (username !== undefined) {
      access.username = username;
      access.password = password;
    }
  }
  if (spec.certSecretRef) {
    Object.assign(access, registryTlsFrom(await readSecret(kc, namespace, spec.certSecretRef.name)));
  } else if (auth) {
    Object.assign(access, registryTlsFrom(auth));
  }
  return access;
}
