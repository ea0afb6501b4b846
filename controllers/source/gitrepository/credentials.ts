// Reads the credentials a GitRepository refers to. Only shapes are checked here (which keys must
// be there for the URL's scheme); whether the server accepts them is the transport's business.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { errorMessage, unlessNotFound } from '../../runtime/api-errors.ts';
import { failed } from '../../runtime/outcome.ts';
import { Reason } from '../../runtime/reasons.ts';
import type { ProxyConfig } from '../git/proxy.ts';
import { TransportError, type GitCredentials } from '../git/types.ts';
import {
  accessTokenUsername,
  githubAppFrom,
  githubAppTokens,
  hasGitHubAppData,
  type GitHubAppTokens,
} from './github-app.ts';

export class SecretError extends Error {}

/** A Secret's value for `key`, from data (base64) or stringData. */
export function secretValue(secret: V1Secret, key: string): string | undefined {
  const b64 = secret.data?.[key];
  if (b64 !== undefined) return Buffer.from(b64, 'base64').toString('utf8');
  return secret.stringData?.[key];
}

export async function readSecret(kc: KubeConfig, namespace: string, name: string): Promise<V1Secret> {
  const secret = await unlessNotFound(kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name, namespace })).catch(
    (err: unknown) => {
      throw new SecretError(`cannot read secret '${namespace}/${name}': ${errorMessage(err)}`);
    },
  );
  if (!secret) throw new SecretError(`secret '${namespace}/${name}' not found`);
  return secret;
}

/**
 * Credentials for `url` from the Secret's data, Flux's keys: username/password, bearerToken,
 * ca.crt (caFile), identity, known_hosts, password.
 */
export function credentialsFrom(secret: V1Secret, url: string): GitCredentials {
  const ref = `secret '${secret.metadata?.namespace}/${secret.metadata?.name}'`;
  const scheme = url.slice(0, url.indexOf(':'));
  const creds: GitCredentials = {};
  const ca = secretValue(secret, 'ca.crt') ?? secretValue(secret, 'caFile');
  if (ca !== undefined) {
    if (!ca.includes('-----BEGIN CERTIFICATE-----'))
      throw new SecretError(`invalid ${ref}: 'ca.crt' is not a PEM certificate`);
    creds.caPem = ca;
  }
  if (scheme === 'ssh') {
    const identity = secretValue(secret, 'identity');
    const knownHosts = secretValue(secret, 'known_hosts');
    const missing = [identity === undefined && 'identity', knownHosts === undefined && 'known_hosts'].filter(Boolean);
    if (missing.length > 0)
      throw new SecretError(
        `invalid ${ref}: SSH needs the keys identity and known_hosts, missing ${missing.join(', ')}`,
      );
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(identity!))
      throw new SecretError(`invalid ${ref}: 'identity' is not a PEM or OpenSSH private key`);
    creds.identity = identity!;
    creds.knownHosts = knownHosts!;
    const passphrase = secretValue(secret, 'password');
    if (passphrase !== undefined) creds.identityPassphrase = passphrase;
    return creds;
  }
  const username = secretValue(secret, 'username');
  const password = secretValue(secret, 'password');
  const bearerToken = secretValue(secret, 'bearerToken');
  if ((username === undefined) !== (password === undefined)) {
    throw new SecretError(
      `invalid ${ref}: basic auth needs both username and password, ` +
        `found only ${username !== undefined ? 'username' : 'password'}`,
    );
  }
  if (username !== undefined && bearerToken !== undefined) {
    throw new SecretError(`invalid ${ref}: set either username/password or bearerToken, not both`);
  }
  if (username !== undefined) Object.assign(creds, { username, password });
  if (bearerToken !== undefined) creds.bearerToken = bearerToken;
  return creds;
}

export interface ProviderOptions {
  proxy?: ProxyConfig;
  timeoutMs: number;
  /** The token cache; the process-wide one by default. */
  tokens?: GitHubAppTokens;
}

/**
 * Credentials for `url` from the Secret of spec.secretRef under spec.provider: the Secret's own
 * (generic), or a GitHub App installation token as basic auth (github), as Flux derives them.
 */
export async function providerCredentials(
  secret: V1Secret,
  url: string,
  provider: string | undefined,
  opts: ProviderOptions,
): Promise<GitCredentials> {
  const ref = `secret '${secret.metadata?.namespace}/${secret.metadata?.name}'`;
  const creds = credentialsFrom(secret, url);
  if (provider !== 'github') {
    if (hasGitHubAppData(secret)) {
      throw failed(Reason.InvalidProviderConfiguration, `${ref} has github app data but provider is not set to github`);
    }
    return creds;
  }
  if (!hasGitHubAppData(secret)) {
    throw failed(
      Reason.InvalidProviderConfiguration,
      `secretRef with github app data must be specified when provider is set to github (${ref} has no githubAppID)`,
    );
  }
  const app = githubAppFrom(secret);
  try {
    const password = await (opts.tokens ?? githubAppTokens).token(app, {
      timeoutMs: opts.timeoutMs,
      ...(creds.caPem ? { caPem: creds.caPem } : {}),
      ...(opts.proxy ? { proxy: opts.proxy } : {}),
    });
    return { ...(creds.caPem ? { caPem: creds.caPem } : {}), username: accessTokenUsername, password };
  } catch (err) {
    if (!(err instanceof TransportError)) throw err;
    throw failed(Reason.AuthenticationFailed, `failed to get a GitHub App installation token: ${err.message}`);
  }
}

/** The armored PGP public keys of a verification Secret (keys ending in .asc). */
export function pgpKeysFrom(secret: V1Secret): string[] {
  const keys = [...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]
    .filter((k) => k.endsWith('.asc'))
    .map((k) => secretValue(secret, k)!);
  if (keys.length === 0) {
    throw new SecretError(
      `secret '${secret.metadata?.namespace}/${secret.metadata?.name}' has no PGP public keys (keys ending in .asc)`,
    );
  }
  return keys;
}
