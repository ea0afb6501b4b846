// spec.provider: github. A GitHub App installation token stands in for a password: an RS256 JWT
// signed with the app's key (iss = app ID) buys a token from
// POST {api}/app/installations/{id}/access_tokens, used as HTTP basic auth with the user name
// x-access-token, as Flux does. Tokens are cached per app configuration until most of their
// lifetime has passed. The Secret keys are Flux's: githubAppID, githubAppInstallationID or
// githubAppInstallationOwner (exactly one), githubAppPrivateKey, optional githubAppBaseURL.
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { V1Secret } from '@kubernetes/client-node';
import { TunnelingAgent, proxyStatusError, requestTo, type ProxyConfig } from '../git/proxy.ts';
import { connectionCause } from '../git/transport-http.ts';
import { TransportError } from '../git/types.ts';
import { SecretError, secretValue } from './credentials.ts';

export const GitHubAppKeys = {
  appID: 'githubAppID',
  installationID: 'githubAppInstallationID',
  installationOwner: 'githubAppInstallationOwner',
  privateKey: 'githubAppPrivateKey',
  baseURL: 'githubAppBaseURL',
} as const;

/** The user name GitHub expects with an installation token. */
export const accessTokenUsername = 'x-access-token';
const defaultApi = 'https://api.github.com';

export interface GitHubApp {
  appID: string;
  installation: { id: string } | { owner: string };
  key: KeyObject;
  /** The private key's PEM, for the cache key only. */
  keyPem: string;
  /** The REST API root, without a trailing slash. */
  api: string;
}

/** Whether the Secret carries GitHub App data (Flux checks githubAppID). */
export function hasGitHubAppData(secret: V1Secret): boolean {
  return Boolean(secretValue(secret, GitHubAppKeys.appID));
}

/** The app a Secret describes; a SecretError (AuthenticationFailed) says which key is wrong. */
export function githubAppFrom(secret: V1Secret): GitHubApp {
  const ref = `secret '${secret.metadata?.namespace}/${secret.metadata?.name}'`;
  const bad = (why: string) => new SecretError(`invalid GitHub App data in ${ref}: ${why}`);
  const appID = secretValue(secret, GitHubAppKeys.appID)?.trim();
  if (!appID) throw bad(`${GitHubAppKeys.appID} must be provided`);
  if (!/^\d+$/.test(appID)) throw bad(`${GitHubAppKeys.appID} is not a number`);
  const id = secretValue(secret, GitHubAppKeys.installationID)?.trim() || undefined;
  const owner = secretValue(secret, GitHubAppKeys.installationOwner)?.trim() || undefined;
  if (id === undefined && owner === undefined)
    throw bad(`${GitHubAppKeys.installationID} or ${GitHubAppKeys.installationOwner} must be provided`);
  if (id !== undefined && owner !== undefined)
    throw bad(`only one of ${GitHubAppKeys.installationID} and ${GitHubAppKeys.installationOwner} may be provided`);
  if (id !== undefined && !/^\d+$/.test(id)) throw bad(`${GitHubAppKeys.installationID} is not a number`);
  const keyPem = secretValue(secret, GitHubAppKeys.privateKey);
  if (!keyPem) throw bad(`${GitHubAppKeys.privateKey} must be provided`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw bad(`${GitHubAppKeys.privateKey} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw bad(`${GitHubAppKeys.privateKey} is not an RSA key`);
  const base = secretValue(secret, GitHubAppKeys.baseURL)?.trim() || defaultApi;
  let api: URL;
  try {
    api = new URL(base);
  } catch {
    throw bad(`${GitHubAppKeys.baseURL} is not a valid URL`);
  }
  if (api.protocol !== 'https:' && api.protocol !== 'http:') throw bad(`${GitHubAppKeys.baseURL} must be http(s)`);
  return {
    appID,
    installation: id !== undefined ? { id } : { owner: owner! },
    key,
    keyPem,
    api: api.toString().replace(/\/+$/, ''),
  };
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * The app's JWT: issued 30 s in the past against clock drift, valid for two minutes (it only
 * buys the installation token), as Flux makes it.
 */
export function appJwt(app: Pick<GitHubApp, 'appID' | 'key'>, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000) - 30;
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ iat, exp: iat + 120, iss: app.appID }));
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), app.key);
  return `${header}.${payload}.${base64url(signature)}`;
}

export interface TokenRequestOptions {
  /** ca.crt of the Secret, trusted in addition to the system roots (GitHub Enterprise). */
  caPem?: string;
  proxy?: ProxyConfig;
  timeoutMs: number;
}

interface Cached {
  token: string;
  refreshAt: number;
  expiresAt: number;
}

/** Installation tokens, fetched once per app configuration and reused until they near expiry. */
export class GitHubAppTokens {
  readonly #cache = new Map<string, Cached>();
  readonly #inFlight = new Map<string, Promise<Cached>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async token(app: GitHubApp, opts: TokenRequestOptions): Promise<string> {
    const key = cacheKey(app);
    const now = this.#now();
    for (const [k, c] of this.#cache) if (c.expiresAt <= now) this.#cache.delete(k);
    const cached = this.#cache.get(key);
    if (cached && now < cached.refreshAt) return cached.token;
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#fetch(app, opts).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    const fresh = await pending;
    this.#cache.set(key, fresh);
    return fresh.token;
  }

  async #fetch(app: GitHubApp, opts: TokenRequestOptions): Promise<Cached> {
    const fetchedAt = this.#now();
    // The JWT is judged by GitHub's clock, not by the cache's.
    const jwt = appJwt(app, Date.now());
    const installationID = 'id' in app.installation ? app.installation.id : await findInstallation(app, jwt, opts);
    const url = new URL(`${app.api}/app/installations/${installationID}/access_tokens`);
    const res = await apiRequest(url, 'POST', jwt, opts);
    if (res.status !== 201 && res.status !== 200) throw apiError(url, res, `installation ${installationID}`);
    const body = parseJson(url, res.body) as { token?: unknown; expires_at?: unknown };
    const expiresAt = typeof body.expires_at === 'string' ? Date.parse(body.expires_at) : Number.NaN;
    if (typeof body.token !== 'string' || !body.token || Number.isNaN(expiresAt)) {
      throw new TransportError('protocol', `${url.host} answered the token request without token and expires_at`);
    }
    // Refreshed once four fifths of its lifetime have passed (GitHub's tokens live an hour).
    const refreshAt = fetchedAt + Math.max(0, (expiresAt - fetchedAt) * 0.8);
    return { token: body.token, refreshAt, expiresAt };
  }
}

/** The process-wide cache, shared by all GitRepositories. */
export const githubAppTokens = new GitHubAppTokens();

/** The installation of `owner`, tried as an organisation and then as a user, as Flux does. */
async function findInstallation(app: GitHubApp, jwt: string, opts: TokenRequestOptions): Promise<string> {
  const owner = encodeURIComponent((app.installation as { owner: string }).owner);
  const failures: string[] = [];
  for (const kind of ['orgs', 'users']) {
    const url = new URL(`${app.api}/${kind}/${owner}/installation`);
    const res = await apiRequest(url, 'GET', jwt, opts);
    if (res.status === 200) {
      const { id } = parseJson(url, res.body) as { id?: unknown };
      if (typeof id === 'number' || (typeof id === 'string' && /^\d+$/.test(id))) return String(id);
      throw new TransportError('protocol', `${url.host} answered ${url.pathname} without an installation id`);
    }
    failures.push(`${kind === 'orgs' ? 'organization' : 'user'}: ${apiError(url, res, '').message}`);
  }
  throw new TransportError(
    'auth',
    `no installation of GitHub App ${app.appID} found for owner '${decodeURIComponent(owner)}' ` +
      `(${failures.join('; ')})`,
  );
}

interface ApiResponse {
  status: number;
  statusMessage: string;
  body: string;
}

function parseJson(url: URL, body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new TransportError('protocol', `${url.host} answered ${url.pathname} with invalid JSON`);
  }
}

function apiError(url: URL, res: ApiResponse, what: string): TransportError {
  let said = '';
  try {
    const m = (JSON.parse(res.body) as { message?: unknown }).message;
    if (typeof m === 'string') said = `: ${m.slice(0, 200)}`;
  } catch {}
  const status = `HTTP ${res.status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  const kind = res.status === 401 || res.status === 403 || res.status === 404 ? 'auth' : 'unreachable';
  return new TransportError(
    kind,
    `GitHub App token request${what ? ` for ${what}` : ''} to ${url.host} failed (${status})${said}`,
  );
}

function apiRequest(url: URL, method: string, jwt: string, opts: TokenRequestOptions): Promise<ApiResponse> {
  const headers: Record<string, string> = {
    accept: 'application/vnd.github+json',
    authorization: `Bearer ${jwt}`,
    'user-agent': 'tide-source-controller',
    'x-github-api-version': '2022-11-28',
  };
  const ca = opts.caPem ? [...tls.rootCertificates, opts.caPem] : undefined;
  const httpsAgent =
    url.protocol !== 'https:'
      ? undefined
      : opts.proxy
        ? new TunnelingAgent(opts.proxy, { ca })
        : new https.Agent({ ca });
  const req = requestTo(url, { method, headers, proxy: opts.proxy, httpsAgent });
  if (httpsAgent) req.once('close', () => httpsAgent.destroy());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => req.destroy(new TransportError('timeout', `${url.host} did not answer within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    timer.unref();
    req.once('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      reject(
        err instanceof TransportError
          ? err
          : new TransportError(
              'unreachable',
              `cannot reach ${url.host} for a GitHub App token: ${connectionCause(err)}`,
            ),
      );
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        clearTimeout(timer);
        if (res.statusCode === 407 && opts.proxy) {
          reject(proxyStatusError(opts.proxy, 407, res.statusMessage ?? ''));
          return;
        }
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
      res.once('error', (err) => {
        clearTimeout(timer);
        reject(new TransportError('unreachable', `reading from ${url.host} failed: ${err.message}`));
      });
    });
    req.end();
  });
}

function cacheKey(app: GitHubApp): string {
  const installation = 'id' in app.installation ? `id=${app.installation.id}` : `owner=${app.installation.owner}`;
  return createHash('sha256')
    .update([`app=${app.appID}`, installation, `api=${app.api}`, `key=${app.keyPem}`].join('\n'))
    .digest('hex');
}
