// spec.proxySecretRef: the proxy for every remote operation of a GitRepository, from a Secret with
// Flux's keys: `address` (required), `username` and `password` (basic auth, optional). Failures
// are AuthenticationFailed and retried, as in Flux: the Secret can be fixed without touching the
// spec. No message ever carries the password or the address's user info.
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import type { ProxyConfig } from '../git/proxy.ts';
import { SecretError, readSecret, secretValue } from './credentials.ts';

/** The proxy a Secret describes; a SecretError names the field and the key at fault. */
export function proxyFromSecret(secret: V1Secret): ProxyConfig {
  const ref = `spec.proxySecretRef: secret '${secret.metadata?.namespace}/${secret.metadata?.name}'`;
  const address = secretValue(secret, 'address')?.trim();
  if (address === undefined) throw new SecretError(`invalid ${ref}: key 'address' not found`);
  if (address === '') throw new SecretError(`invalid ${ref}: proxy address is empty`);
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    // Not echoed: an address that does not parse may still hold a password.
    throw new SecretError(`invalid ${ref}: 'address' is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SecretError(
      `invalid ${ref}: proxy URL must use the http or https scheme, got '${url.protocol.replace(/:$/, '')}'`,
    );
  }
  if (!url.hostname) throw new SecretError(`invalid ${ref}: 'address' names no host`);
  const username = secretValue(secret, 'username') ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = secretValue(secret, 'password') ?? (url.password ? decodeURIComponent(url.password) : undefined);
  if (password !== undefined && username === undefined) {
    throw new SecretError(`invalid ${ref}: 'password' is set but 'username' is not`);
  }
  const origin = new URL(`${url.protocol}//${url.host}`);
  return {
    url: origin,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

/** The proxy of spec.proxySecretRef, or undefined when it is not set. */
export async function proxyFor(
  kc: KubeConfig,
  namespace: string,
  proxySecretRef: { name: string } | undefined,
): Promise<ProxyConfig | undefined> {
  if (!proxySecretRef) return undefined;
  try {
    return proxyFromSecret(await readSecret(kc, namespace, proxySecretRef.name));
  } catch (err) {
    if (err instanceof SecretError && !err.message.includes('spec.proxySecretRef')) {
      throw new SecretError(`spec.proxySecretRef: ${err.message}`);
    }
    throw err;
  }
}
