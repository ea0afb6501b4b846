// Registry credentials from Kubernetes Secrets: a `kubernetes.io/dockerconfigjson` Secret's
// `.dockerconfigjson` (or a legacy `.dockercfg`), whose entry for the registry is chosen as
// docker's CLI chooses it, or plain `username`/`password` keys (HelmRepository type oci); and
// the TLS material of a certSecretRef. Errors name the Secret and the entry, never a value.
import type { V1Secret } from '@kubernetes/client-node';
import { SecretError, secretValue } from '../gitrepository/credentials.ts';
import { dockerHubRegistry } from './reference.ts';

export type RegistryCredentials =
  | { username: string; password: string }
  /** An OAuth2 refresh token (`identitytoken`), traded at the token realm for access tokens. */
  | { identityToken: string; username?: string }
  /** A bearer token (`registrytoken`) sent to the registry as it is. */
  | { registryToken: string };

export interface RegistryTls {
  /** PEM CA bundle trusted in addition to the system roots. */
  ca?: string;
  /** PEM client certificate and key, for registries that ask for one. */
  cert?: string;
  key?: string;
}

interface DockerAuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

/** Docker Hub answers under several names; its config key is `https://index.docker.io/v1/`. */
const dockerHubNames = new Set([dockerHubRegistry, 'docker.io', 'registry-1.docker.io']);

/**
 * The `auths` of a docker config (`{"auths": {...}}`, or the legacy `.dockercfg` map itself),
 * keyed as written. `source` names where it came from, for messages.
 */
export function parseDockerConfig(text: string, source: string): Map<string, RegistryCredentials | undefined> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new SecretError(`invalid ${source}: not JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw new SecretError(`invalid ${source}: expected a JSON object`);
  const auths = 'auths' in doc ? doc.auths : doc;
  if (auths === undefined || auths === null) return new Map();
  if (!isObject(auths)) throw new SecretError(`invalid ${source}: 'auths' must be an object keyed by registry`);
  const entries = new Map<string, RegistryCredentials | undefined>();
  for (const [key, entry] of Object.entries(auths)) {
    if (!isObject(entry)) throw new SecretError(`invalid ${source}: the entry for '${key}' must be an object`);
    entries.set(key, entryCredentials(entry as DockerAuthEntry, `${source}, entry '${key}'`));
  }
  return entries;
}

/**
 * The credentials a docker config holds for `registry` (`host[:port]`): the entry keyed exactly
 * so, else the first whose key names the same host once a scheme and path are taken off
 * (`https://host:port/v1/`), as docker's CLI looks them up. Undefined: go anonymous.
 */
export function dockerConfigCredentials(
  text: string,
  registry: string,
  source: string,
): RegistryCredentials | undefined {
  const entries = parseDockerConfig(text, source);
  const wanted = registryAliases(registry);
  for (const name of wanted) if (entries.has(name)) return entries.get(name);
  for (const [key, creds] of entries) {
    if (wanted.has(keyHost(key))) return creds;
  }
  return undefined;
}

/**
 * Credentials for `registry` from a Secret: its `.dockerconfigjson` (or `.dockercfg`) entry for
 * the registry, else its `username` and `password` keys. Undefined when the Secret has neither
 * (or no entry for the registry): the registry is then asked anonymously.
 */
export function registryCredentialsFrom(secret: V1Secret, registry: string): RegistryCredentials | undefined {
  const ref = `secret '${secret.metadata?.namespace}/${secret.metadata?.name}'`;
  const dockerConfig = secretValue(secret, '.dockerconfigjson');
  if (dockerConfig !== undefined) return dockerConfigCredentials(dockerConfig, registry, `${ref} .dockerconfigjson`);
  const legacy = secretValue(secret, '.dockercfg');
  if (legacy !== undefined) return dockerConfigCredentials(legacy, registry, `${ref} .dockercfg`);
  if (secret.type === 'kubernetes.io/dockerconfigjson') {
    throw new SecretError(`invalid ${ref}: type kubernetes.io/dockerconfigjson but no .dockerconfigjson key`);
  }
  const username = secretValue(secret, 'username');
  const password = secretValue(secret, 'password');
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    throw new SecretError(
      `invalid ${ref}: required fields 'username' and 'password', ` +
        `found only ${username !== undefined ? 'username' : 'password'}`,
    );
  }
  return { username, password };
}

/** The TLS material of a certSecretRef: ca.crt, tls.crt + tls.key (or the older caFile, certFile, keyFile). */
export function registryTlsFrom(secret: V1Secret): RegistryTls {
  const ref = `secret '${secret.metadata?.namespace}/${secret.metadata?.name}'`;
  const ca = secretValue(secret, 'ca.crt') ?? secretValue(secret, 'caFile');
  const cert = secretValue(secret, 'tls.crt') ?? secretValue(secret, 'certFile');
  const key = secretValue(secret, 'tls.key') ?? secretValue(secret, 'keyFile');
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SecretError(`invalid ${ref}: 'ca.crt' is not a PEM certificate`);
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new SecretError(
      `invalid ${ref}: a client certificate needs both tls.crt and tls.key, ` +
        `found only ${cert !== undefined ? 'tls.crt' : 'tls.key'}`,
    );
  }
  if (cert !== undefined && !cert.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SecretError(`invalid ${ref}: 'tls.crt' is not a PEM certificate`);
  }
  if (key !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
    throw new SecretError(`invalid ${ref}: 'tls.key' is not a PEM private key`);
  }
  return { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key: key! } : {}) };
}

function entryCredentials(entry: DockerAuthEntry, where: string): RegistryCredentials | undefined {
  for (const field of ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const) {
    if (entry[field] !== undefined && typeof entry[field] !== 'string') {
      throw new SecretError(`invalid ${where}: '${field}' must be a string`);
    }
  }
  const e = entry as { [K in keyof DockerAuthEntry]?: string };
  if (e.registrytoken) return { registryToken: e.registrytoken };
  let username = e.username;
  let password = e.password;
  if (e.auth) {
    const decoded = decodeBase64(e.auth);
    const colon = decoded?.indexOf(':') ?? -1;
    if (decoded === undefined || colon < 0) {
      throw new SecretError(`invalid ${where}: 'auth' must be base64 of 'username:password'`);
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (e.identitytoken) return { identityToken: e.identitytoken, ...(username ? { username } : {}) };
  if (!username && !password) return undefined;
  if (username === undefined || password === undefined) {
    throw new SecretError(
      `invalid ${where}: needs both username and password, found only ${username ? 'username' : 'password'}`,
    );
  }
  return { username, password };
}

function decodeBase64(text: string): string | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) && !/^[A-Za-z0-9_-]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64').toString('utf8');
}

/** The host of a docker config key: `https://host:port/v1/` → `host:port`, as docker's ConvertToHostname. */
function keyHost(key: string): string {
  const withoutScheme = key.replace(/^https?:\/\//, '');
  return withoutScheme.split('/')[0]!;
}

function registryAliases(registry: string): Set<string> {
  if (!dockerHubNames.has(registry)) return new Set([registry]);
  return new Set(['https://index.docker.io/v1/', ...dockerHubNames]);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
