// A client for the OCI distribution API (what OCIRepository and HelmRepository type oci pull
// from): list tags, resolve a tag to a digest, fetch manifests, stream blobs to disk. HTTP runs
// on node:http/https as the git transport does (the CA trusted in addition to the system roots,
// an optional client certificate, an optional proxy). Requests go anonymously first; a 401
// names the scheme: Bearer gets a token from the realm (with the credentials, if any) that is
// kept per scope until it expires, Basic gets the credentials. Every failure is a RegistryError
// whose kind the reconcilers map to a Flux reason, and whose message names the registry and the
// repository but never a password, a token, or a signed URL's query.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tls from 'node:tls';
import { TunnelingAgent, proxyStatusError, requestTo, type ProxyConfig } from '../git/proxy.ts';
import { connectionCause } from '../git/transport-http.ts';
import { TransportError } from '../git/types.ts';
import type { RegistryCredentials, RegistryTls } from './auth.ts';
import { InvalidReferenceError, checkDigest, checkReference, checkRepositoryPath, isDigest } from './reference.ts';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const manifestMediaTypes: ReadonlySet<string> = new Set(Object.values(MediaType));
const manifestAccept = Object.values(MediaType).join(', ');

export type RegistryErrorKind = 'auth' | 'notFound' | 'tls' | 'network' | 'invalid';

/**
 * What went wrong, by kind: `auth` (401/403 once credentials or a token were tried, or none
 * were given), `notFound` (404: repository, tag, manifest or blob), `tls` (certificate or
 * handshake), `network` (connection, timeout, 5xx or another unexpected answer), `invalid`
 * (bad reference, bad manifest, digest mismatch, size limit).
 */
export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly kind: RegistryErrorKind;
  /** The HTTP status, when the error is a registry's answer. */
  readonly status: number | undefined;
  /** The registry's error code (MANIFEST_UNKNOWN, DENIED, …), when it sent one. */
  readonly code: string | undefined;

  constructor(
    kind: RegistryErrorKind,
    message: string,
    opts: { status?: number; code?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.status = opts.status;
    this.code = opts.code;
  }
}

export interface RegistryClientOptions {
  /** Undefined: anonymous (a Bearer challenge still gets an anonymous token). */
  credentials?: RegistryCredentials | undefined;
  tls?: RegistryTls | undefined;
  /** Plain HTTP instead of HTTPS (Flux's spec.insecure). */
  insecure?: boolean | undefined;
  /** An HTTP(S) proxy for every connection. */
  proxy?: ProxyConfig | undefined;
  /** Deadline of each call (listTags, resolve, manifest, blobToFile); default 60 s. */
  timeoutMs?: number | undefined;
  userAgent?: string | undefined;
  /** Tags asked for per page (`?n=`); undefined lets the registry choose. */
  pageSize?: number | undefined;
  /** Largest manifest accepted; default 4 MiB, distribution's own limit. */
  maxManifestBytes?: number | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeoutMs for this call. */
  timeoutMs?: number | undefined;
}

export interface BlobOptions extends CallOptions {
  /** Refuse blobs larger than this many bytes. */
  maxSize?: number | undefined;
}

export interface Descriptor {
  digest: string;
  mediaType: string;
  size: number;
}

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: { architecture: string; os: string; variant?: string };
}

/** An OCI image manifest or index, or a Docker v2 manifest or manifest list. */
export interface ManifestJson {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config?: OciDescriptor;
  layers?: OciDescriptor[];
  manifests?: OciDescriptor[];
  subject?: OciDescriptor;
  annotations?: Record<string, string>;
}

export interface Manifest extends Descriptor {
  json: ManifestJson;
  bytes: Buffer;
}

const defaultTimeoutMs = 60_000;
const defaultMaxManifestBytes = 4 * 1024 * 1024;
const maxTagPageBytes = 4 * 1024 * 1024;
const maxTokenBytes = 1024 * 1024;
const maxErrorBodyBytes = 64 * 1024;
const maxRedirects = 10;
const maxTagPages = 10_000;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
/** A token is dropped this long before the registry would stop taking it. */
const tokenExpiryMarginMs = 10_000;

interface Challenge {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
  scope?: string;
}

interface Response {
  res: http.IncomingMessage;
  status: number;
  url: URL;
}

export class RegistryClient {
  readonly registry: string;
  readonly #origin: string;
  readonly #credentials: RegistryCredentials | undefined;
  readonly #caGiven: boolean;
  readonly #insecure: boolean;
  readonly #proxy: ProxyConfig | undefined;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #pageSize: number | undefined;
  readonly #maxManifestBytes: number;
  readonly #httpAgent = new http.Agent({ keepAlive: true });
  readonly #httpsAgent: https.Agent;
  /** What the registry asked for the last time it answered 401. */
  #challenge: Challenge | undefined;
  readonly #tokens = new Map<string, { token: string; expiresAt: number }>();

  /** `registry` is `host[:port]`, as parseOciUrl returns it. */
  constructor(registry: string, opts: RegistryClientOptions = {}) {
    this.registry = registry;
    this.#insecure = opts.insecure ?? false;
    this.#origin = `${this.#insecure ? 'http' : 'https'}://${registry}`;
    this.#credentials = opts.credentials;
    this.#caGiven = Boolean(opts.tls?.ca);
    this.#proxy = opts.proxy;
    this.#timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
    this.#userAgent = opts.userAgent ?? 'tide-source-controller';
    this.#pageSize = opts.pageSize;
    this.#maxManifestBytes = opts.maxManifestBytes ?? defaultMaxManifestBytes;
    const agentOptions: https.AgentOptions = {
      keepAlive: true,
      // As Flux does: the given CA is trusted in addition to the system roots.
      ca: opts.tls?.ca ? [...tls.rootCertificates, opts.tls.ca] : undefined,
      cert: opts.tls?.cert,
      key: opts.tls?.key,
    };
    this.#httpsAgent = opts.proxy ? new TunnelingAgent(opts.proxy, agentOptions) : new https.Agent(agentOptions);
  }

  /** Every tag of `repo`, in the registry's order, following `Link: <…>; rel="next"` pages. */
  async listTags(repo: string, opts: CallOptions = {}): Promise<string[]> {
    return this.#call(opts, async (signal) => {
      const tags: string[] = [];
      const first = this.#url(`/v2/${repo}/tags/list`);
      if (this.#pageSize !== undefined) first.searchParams.set('n', String(this.#pageSize));
      let url: URL | undefined = first;
      for (let page = 0; url; page++) {
        if (page >= maxTagPages) {
          throw new RegistryError('invalid', `${this.#name(repo)} lists more than ${maxTagPages} pages of tags`);
        }
        const r = await this.#request('GET', url, repo, { accept: 'application/json' }, signal);
        if (r.status !== 200) throw await this.#statusError(r, repo, { what: 'repository' });
        const body = await readLimited(r.res, maxTagPageBytes, () => this.#tooLarge(repo, 'tag list', maxTagPageBytes));
        const doc = parseJson(body);
        const pageTags = isRecord(doc) ? doc.tags : undefined;
        if (pageTags !== null && pageTags !== undefined && !isStringArray(pageTags)) {
          throw new RegistryError('invalid', `${this.#name(repo)} answered a tag list that is not a list of strings`);
        }
        if (pageTags) tags.push(...pageTags);
        url = nextLink(header(r.res, 'link'), r.url);
      }
      return tags;
    });
  }

  /** The descriptor `reference` (a tag or a digest) points at, by HEAD, else by GET. */
  async resolve(repo: string, reference: string, opts: CallOptions = {}): Promise<Descriptor> {
    this.#checkReference(reference);
    return this.#call(opts, async (signal) => {
      const url = this.#url(`/v2/${repo}/manifests/${reference}`);
      const r = await this.#request('HEAD', url, repo, { accept: manifestAccept }, signal);
      r.res.resume();
      if (r.status === 404) throw this.#notFound(repo, reference, r.status);
      const digest = header(r.res, 'docker-content-digest');
      const mediaType = header(r.res, 'content-type')?.split(';')[0]?.trim();
      const size = Number(header(r.res, 'content-length'));
      if (r.status === 200 && digest && mediaType && manifestMediaTypes.has(mediaType) && Number.isFinite(size)) {
        if (isDigest(reference) && digest !== reference) {
          throw new RegistryError('invalid', `${this.#name(repo)} answered digest ${digest} for manifest ${reference}`);
        }
        return { digest, mediaType, size };
      }
      // Registries that do not answer HEAD fully: GET it (and verify what came).
      const m = await this.#getManifest(repo, reference, signal);
      return { digest: m.digest, mediaType: m.mediaType, size: m.size };
    });
  }

  /**
   * The manifest `reference` points at: its bytes, parsed JSON, media type and digest. The digest
   * is computed from the bytes; by digest, it must be the one asked for.
   */
  async manifest(repo: string, reference: string, opts: CallOptions = {}): Promise<Manifest> {
    this.#checkReference(reference);
    return this.#call(opts, (signal) => this.#getManifest(repo, reference, signal));
  }

  /**
   * Streams blob `digest` of `repo` into `destPath`, verifying its digest and refusing more than
   * `maxSize` bytes. On any failure the file is removed.
   */
  async blobToFile(
    repo: string,
    digest: string,
    destPath: string,
    opts: BlobOptions = {},
  ): Promise<{ digest: string; size: number }> {
    this.#checkReference(digest, 'digest');
    const algorithm = digest.slice(0, digest.indexOf(':'));
    if (algorithm !== 'sha256' && algorithm !== 'sha512') {
      throw new RegistryError('invalid', `unsupported digest algorithm '${algorithm}' of blob ${digest}`);
    }
    const { maxSize } = opts;
    let created = false;
    try {
      return await this.#call(opts, async (signal) => {
        const url = this.#url(`/v2/${repo}/blobs/${digest}`);
        const r = await this.#request('GET', url, repo, { accept: '*/*' }, signal);
        if (r.status !== 200) throw await this.#statusError(r, repo, { what: 'blob', reference: digest });
        const length = Number(header(r.res, 'content-length') ?? Number.NaN);
        const tooLarge = () =>
          new RegistryError(
            'invalid',
            `blob ${digest} of ${this.#name(repo)} is larger than the limit of ${maxSize} bytes`,
          );
        if (maxSize !== undefined && Number.isFinite(length) && length > maxSize) {
          r.res.destroy();
          throw tooLarge();
        }
        const hash = createHash(algorithm);
        const meter = new BlobMeter(hash, maxSize, tooLarge);
        created = true;
        await pipeline(r.res, meter, createWriteStream(destPath), { signal });
        const actual = `${algorithm}:${hash.digest('hex')}`;
        if (actual !== digest) {
          throw new RegistryError(
            'invalid',
            `blob ${digest} of ${this.#name(repo)} failed verification: its content has digest ${actual}`,
          );
        }
        if (Number.isFinite(length) && length !== meter.size) {
          throw new RegistryError(
            'invalid',
            `blob ${digest} of ${this.#name(repo)} is ${meter.size} bytes, the registry announced ${length}`,
          );
        }
        return { digest, size: meter.size };
      });
    } catch (err) {
      if (created) await rm(destPath, { force: true });
      throw err;
    }
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  async #getManifest(repo: string, reference: string, signal: AbortSignal): Promise<Manifest> {
    const url = this.#url(`/v2/${repo}/manifests/${reference}`);
    const r = await this.#request('GET', url, repo, { accept: manifestAccept }, signal);
    if (r.status === 404) throw this.#notFound(repo, reference, r.status, await registryErrorCode(r.res));
    if (r.status !== 200) throw await this.#statusError(r, repo, { what: 'manifest', reference });
    const bytes = await readLimited(r.res, this.#maxManifestBytes, () =>
      this.#tooLarge(repo, `manifest ${reference}`, this.#maxManifestBytes),
    );
    const announced = header(r.res, 'docker-content-digest');
    // The digest of what came, in the algorithm the reference (or else the registry) names.
    const algorithm = [reference, announced].find((d) => d && isDigest(d))?.split(':')[0];
    const digest = digestOf(bytes, algorithm === 'sha512' ? 'sha512' : 'sha256');
    if (isDigest(reference) && digest !== reference) {
      throw new RegistryError(
        'invalid',
        `manifest ${reference} of ${this.#name(repo)} failed verification: its content has digest ${digest}`,
      );
    }
    const json = parseManifest(bytes, `manifest ${reference} of ${this.#name(repo)}`);
    const contentType = header(r.res, 'content-type')?.split(';')[0]?.trim();
    const mediaType = json.mediaType ?? contentType ?? '';
    if (!manifestMediaTypes.has(mediaType)) {
      throw new RegistryError(
        'invalid',
        `manifest ${reference} of ${this.#name(repo)} has unsupported media type '${mediaType}'`,
      );
    }
    return { digest, mediaType, size: bytes.byteLength, json, bytes };
  }

  /** Runs `fn` under the call's deadline and the caller's signal, mapping every failure to a RegistryError. */
  async #call<T>(opts: CallOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    try {
      if (opts.signal?.aborted) throw opts.signal.reason;
      return await fn(signal);
    } catch (err) {
      if (opts.signal?.aborted) throw abortReason(opts.signal, this.registry);
      if (timeout.aborted) {
        throw new RegistryError('network', `request to ${this.registry} timed out after ${timeoutMs} ms`, {
          cause: err,
        });
      }
      if (err instanceof RegistryError) throw err;
      if (err instanceof InvalidReferenceError) throw new RegistryError('invalid', err.message);
      if (err instanceof TransportError) {
        throw new RegistryError(err.kind === 'auth' ? 'auth' : 'network', err.message, { cause: err });
      }
      throw this.#networkError(err as Error & { code?: string });
    }
  }

  /**
   * Sends a request for `repo` with the authorization known to work, and on a 401 answers the
   * challenge once: a Bearer token from the realm, or the basic credentials.
   */
  async #request(
    method: string,
    url: URL,
    repo: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    const scope = `repository:${repo}:pull`;
    checkRepositoryPath(repo);
    let authorization = await this.#knownAuthorization(scope, signal);
    for (let attempt = 0; ; attempt++) {
      const r = await this.#send(method, url, { ...headers }, authorization, signal);
      if (r.status !== 401 && r.status !== 403) return r;
      const info = await registryError(r.res);
      const challenge = parseChallenge(header(r.res, 'www-authenticate'));
      if (r.status === 403 || attempt > 0 || !challenge) throw this.#authError(r.status, info, repo);
      this.#challenge = challenge;
      // A token the registry no longer takes (revoked, or expired early) must not be offered again.
      if (authorization?.startsWith('Bearer ')) this.#forgetTokens(scope);
      const next = await this.#answer(challenge, scope, signal);
      if (next === undefined) throw this.#authError(r.status, info, repo);
      authorization = next;
    }
  }

  #forgetTokens(scope: string): void {
    for (const key of this.#tokens.keys()) if (key.endsWith(`\n${scope}`)) this.#tokens.delete(key);
  }

  /** The Authorization for `scope` before asking: a cached token, or basic when the registry wants basic. */
  async #knownAuthorization(scope: string, signal: AbortSignal): Promise<string | undefined> {
    const creds = this.#credentials;
    if (creds && 'registryToken' in creds) return `Bearer ${creds.registryToken}`;
    const challenge = this.#challenge;
    if (!challenge) return undefined;
    return this.#answer(challenge, scope, signal);
  }

  /** The Authorization that answers `challenge` for `scope`, or undefined when there is none to give. */
  async #answer(challenge: Challenge, scope: string, signal: AbortSignal): Promise<string | undefined> {
    const creds = this.#credentials;
    if (challenge.scheme === 'basic') {
      return creds && 'password' in creds ? basic(creds.username, creds.password) : undefined;
    }
    if (creds && 'registryToken' in creds) return undefined;
    return `Bearer ${await this.#token(challenge, scope, signal)}`;
  }

  /** A token for `scope` from the challenge's realm, from the cache while it lasts. */
  async #token(challenge: Challenge, scope: string, signal: AbortSignal): Promise<string> {
    const key = `${challenge.realm}\n${challenge.service ?? ''}\n${scope}`;
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.token;
    this.#tokens.delete(key);
    if (!challenge.realm) {
      throw new RegistryError('auth', `authentication failed: ${this.registry} asked for a token without a realm`);
    }
    let realm: URL;
    try {
      realm = new URL(challenge.realm);
    } catch {
      throw new RegistryError('auth', `authentication failed: ${this.registry} named an invalid token realm`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw new RegistryError('auth', `authentication failed: token realm of ${this.registry} is not http(s)`);
    }
    const scopes = [...new Set([scope, ...(challenge.scope ? [challenge.scope] : [])])];
    const params = new URLSearchParams();
    if (challenge.service) params.set('service', challenge.service);
    for (const s of scopes) params.append('scope', s);
    const creds = this.#credentials;
    let method = 'GET';
    let body: Buffer | undefined;
    const headers: Record<string, string> = { accept: 'application/json' };
    let authorization: string | undefined;
    if (creds && 'identityToken' in creds) {
      // docker's OAuth2 flow: trade the refresh token for an access token.
      method = 'POST';
      params.set('grant_type', 'refresh_token');
      params.set('refresh_token', creds.identityToken);
      params.set('client_id', 'tide');
      body = Buffer.from(params.toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      for (const [k, v] of params) realm.searchParams.append(k, v);
      if (creds && 'password' in creds) authorization = basic(creds.username, creds.password);
    }
    const requested = Date.now();
    const r = await this.#send(method, realm, headers, authorization, signal, body);
    const server = `token server ${realm.host}`;
    if (r.status === 401 || r.status === 403) {
      r.res.resume();
      throw new RegistryError(
        'auth',
        creds
          ? `authentication failed: ${server} rejected the credentials for ${this.registry} (HTTP ${r.status})`
          : `authentication failed: ${server} refused an anonymous token for ${this.registry} (HTTP ${r.status})`,
        { status: r.status },
      );
    }
    if (r.status !== 200) {
      r.res.resume();
      throw new RegistryError(
        'network',
        `${server} answered HTTP ${r.status} to a token request for ${this.registry}`,
        {
          status: r.status,
        },
      );
    }
    const text = await readLimited(
      r.res,
      maxTokenBytes,
      () => new RegistryError('network', `${server} answered more than ${maxTokenBytes} bytes to a token request`),
    );
    const doc = parseJson(text);
    const token = isRecord(doc) ? (doc.token ?? doc.access_token) : undefined;
    if (typeof token !== 'string' || token === '') {
      throw new RegistryError('network', `${server} answered a token request for ${this.registry} without a token`);
    }
    const expiresIn = isRecord(doc) && typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    const lifetimeMs = expiresIn * 1000;
    const expiresAt = requested + Math.max(lifetimeMs - tokenExpiryMarginMs, lifetimeMs / 2);
    this.#tokens.set(key, { token, expiresAt });
    return token;
  }

  /** One request, following redirects; the authorization goes to the registry's origin only. */
  async #send(
    method: string,
    url: URL,
    headers: Record<string, string>,
    authorization: string | undefined,
    signal: AbortSignal,
    body?: Buffer,
  ): Promise<Response> {
    let target = url;
    let verb = method;
    let payload = body;
    for (let hop = 0; ; hop++) {
      signal.throwIfAborted();
      const h: Record<string, string> = { ...headers, 'user-agent': this.#userAgent };
      if (authorization) h.authorization = authorization;
      if (payload) h['content-length'] = String(payload.byteLength);
      const res = await this.#once(verb, target, h, signal, payload);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (!redirectStatuses.has(status) || !location) return { res, status, url: target };
      res.resume();
      if (hop >= maxRedirects) {
        throw new RegistryError('network', `${this.registry} redirected more than ${maxRedirects} times`);
      }
      const next = new URL(location, target);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new RegistryError('network', `${target.host} redirected to an unsupported scheme ${next.protocol}`);
      }
      if (status === 303) {
        verb = verb === 'HEAD' ? 'HEAD' : 'GET';
        payload = undefined;
        delete headers['content-type'];
      }
      // A redirect keeps the authorization only while it stays on the origin it was meant for.
      if (next.origin !== url.origin) authorization = undefined;
      target = next;
    }
  }

  #once(
    method: string,
    url: URL,
    headers: Record<string, string>,
    signal: AbortSignal,
    body?: Buffer,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = requestTo(url, {
        method,
        headers,
        proxy: this.#proxy,
        httpsAgent: this.#httpsAgent,
        httpAgent: this.#httpAgent,
      });
      const onAbort = () => req.destroy(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      const done = () => signal.removeEventListener('abort', onAbort);
      req.once('error', (err) => {
        done();
        reject(err);
      });
      req.once('response', (res) => {
        done();
        if (res.statusCode === 407 && this.#proxy) {
          res.resume();
          reject(proxyStatusError(this.#proxy, 407, res.statusMessage ?? ''));
          return;
        }
        // The body is the caller's to read; the deadline must still be able to end it.
        const onBodyAbort = () => res.destroy(signal.reason as Error);
        signal.addEventListener('abort', onBodyAbort, { once: true });
        res.once('close', () => signal.removeEventListener('abort', onBodyAbort));
        resolve(res);
      });
      req.end(body);
    });
  }

  #url(path: string): URL {
    return new URL(`${this.#origin}${path}`);
  }

  #name(repo: string): string {
    return `${this.registry}/${repo}`;
  }

  #checkReference(reference: string, what?: 'digest'): void {
    try {
      if (what === 'digest') checkDigest(reference);
      else checkReference(reference);
    } catch (err) {
      throw new RegistryError('invalid', (err as Error).message);
    }
  }

  #notFound(repo: string, reference: string, status: number, code?: string): RegistryError {
    const detail = code ? ` (${code})` : '';
    const what = isDigest(reference) ? `manifest '${reference}'` : `tag '${reference}'`;
    return new RegistryError('notFound', `${what} not found in ${this.#name(repo)}${detail}`, {
      status,
      ...(code ? { code } : {}),
    });
  }

  #tooLarge(repo: string, what: string, limit: number): RegistryError {
    return new RegistryError('invalid', `${what} of ${this.#name(repo)} is larger than the limit of ${limit} bytes`);
  }

  #authError(status: number, info: { code?: string; message?: string }, repo: string): RegistryError {
    const { code, message } = info;
    const what = `HTTP ${status}${code ? `, ${code}${message ? `: ${message}` : ''}` : ''}`;
    const opts = { status, ...(code ? { code } : {}) };
    if (status === 403) {
      return new RegistryError(
        'auth',
        `authentication failed: ${this.registry} denied access to ${repo} (${what})`,
        opts,
      );
    }
    return new RegistryError(
      'auth',
      this.#credentials
        ? `authentication failed: ${this.registry} rejected the credentials for ${repo} (${what})`
        : `authentication failed: ${this.registry} requires authentication for ${repo} ` +
            `and no credentials were given (${what})`,
      opts,
    );
  }

  async #statusError(r: Response, repo: string, ctx: { what: string; reference?: string }): Promise<RegistryError> {
    const { code, message } = await registryError(r.res);
    const what = `HTTP ${r.status}${code ? `, ${code}${message ? `: ${message}` : ''}` : ''}`;
    const opts = { status: r.status, ...(code ? { code } : {}) };
    const subject = ctx.reference ? `${ctx.what} ${ctx.reference} of ${this.#name(repo)}` : this.#name(repo);
    if (r.status === 404) {
      return new RegistryError(
        'notFound',
        ctx.reference
          ? `${ctx.what} ${ctx.reference} not found in ${this.#name(repo)} (${what})`
          : `repository ${subject} not found (${what})`,
        opts,
      );
    }
    if (r.status === 400 && /HTTP request to an HTTPS server/i.test(message ?? '')) {
      return new RegistryError(
        'tls',
        `${this.registry} serves HTTPS, but the client was told to use plain HTTP (insecure)`,
        opts,
      );
    }
    if (r.status === 400 && (code === 'NAME_INVALID' || code === 'DIGEST_INVALID' || code === 'TAG_INVALID')) {
      return new RegistryError('invalid', `${this.registry} refused ${subject} (${what})`, opts);
    }
    return new RegistryError('network', `${this.registry} answered ${what} for ${subject}`, opts);
  }

  #networkError(err: Error & { code?: string }): RegistryError {
    const code = err.code ?? '';
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/.test(code)) {
      const hint = this.#caGiven
        ? 'the given CA did not sign it'
        : 'add the CA that signed it (ca.crt of the certSecretRef)';
      return new RegistryError(
        'tls',
        `TLS certificate of ${this.registry} is not trusted: ${nodeHintless(err.message)} (${code}); ${hint}`,
        { cause: err },
      );
    }
    // OpenSSL's messages carry source paths; its reason phrase is what a reader needs.
    const sslReason = /SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1]?.trim();
    if (
      /wrong version number|packet length too long/.test(sslReason ?? err.message) ||
      code === 'ERR_SSL_WRONG_VERSION_NUMBER'
    ) {
      return new RegistryError(
        'tls',
        `TLS handshake with ${this.registry} failed (${sslReason ?? code}): ` +
          'it may serve plain HTTP; if so, set insecure',
        { cause: err },
      );
    }
    if (sslReason || /^ERR_SSL_|^ERR_TLS_|EPROTO/.test(code)) {
      return new RegistryError(
        'tls',
        `TLS handshake with ${this.registry} failed: ${sslReason ?? err.message} (${code})`,
        {
          cause: err,
        },
      );
    }
    if (this.#proxy && this.#insecure) {
      // Plain HTTP goes to the proxy itself; HTTPS tunnels fail with the proxy's own TransportError.
      return new RegistryError('network', `cannot reach proxy ${this.#proxy.url.host}: ${connectionCause(err)}`, {
        cause: err,
      });
    }
    return new RegistryError('network', `cannot reach ${this.registry}: ${connectionCause(err)}`, { cause: err });
  }
}

/** Counts and hashes a blob on its way to disk, failing once it grows past the limit. */
class BlobMeter extends Transform {
  size = 0;
  readonly #hash: Hash;
  readonly #maxSize: number | undefined;
  readonly #tooLarge: () => Error;

  constructor(hash: Hash, maxSize: number | undefined, tooLarge: () => Error) {
    super();
    this.#hash = hash;
    this.#maxSize = maxSize;
    this.#tooLarge = tooLarge;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.size += chunk.byteLength;
    if (this.#maxSize !== undefined && this.size > this.#maxSize) {
      done(this.#tooLarge());
      return;
    }
    this.#hash.update(chunk);
    done(null, chunk);
  }
}

/** Parses `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (or Basic). */
export function parseChallenge(value: string | undefined): Challenge | undefined {
  if (!value) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'basic') return undefined;
  const challenge: Challenge = { scheme };
  const params = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (const p of m[2]!.matchAll(params)) {
    const name = p[1]!.toLowerCase();
    const v = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
    if (name === 'realm' || name === 'service' || name === 'scope') challenge[name] = v;
  }
  return challenge;
}

/** The next page of a `Link: <url>; rel="next"` header, resolved against the request URL. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(m[2]!)) return new URL(m[1]!, base);
  }
  return undefined;
}

function parseManifest(bytes: Buffer, what: string): ManifestJson {
  const doc = parseJson(bytes);
  const fail = (why: string) => new RegistryError('invalid', `${what} is not a valid manifest: ${why}`);
  if (!isRecord(doc)) throw fail('not a JSON object');
  if (doc.schemaVersion !== 2) throw fail(`schemaVersion ${JSON.stringify(doc.schemaVersion)}, expected 2`);
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') throw fail('mediaType is not a string');
  const descriptors = (field: 'layers' | 'manifests') => {
    const list = doc[field];
    if (list === undefined) return;
    if (!Array.isArray(list)) throw fail(`${field} is not a list`);
    for (const [i, d] of list.entries()) checkDescriptor(d, `${field}[${i}]`, fail);
  };
  descriptors('layers');
  descriptors('manifests');
  if (doc.config !== undefined) checkDescriptor(doc.config, 'config', fail);
  if (doc.subject !== undefined) checkDescriptor(doc.subject, 'subject', fail);
  if (doc.manifests === undefined && (doc.config === undefined || doc.layers === undefined)) {
    throw fail('neither an image manifest (config and layers) nor an index (manifests)');
  }
  return doc as unknown as ManifestJson;
}

function checkDescriptor(d: unknown, where: string, fail: (why: string) => Error): void {
  if (!isRecord(d)) throw fail(`${where} is not an object`);
  if (typeof d.mediaType !== 'string') throw fail(`${where}.mediaType is not a string`);
  if (typeof d.digest !== 'string') throw fail(`${where}.digest is not a string`);
  try {
    checkDigest(d.digest);
  } catch (err) {
    throw fail(`${where}: ${(err as Error).message}`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw fail(`${where}.size is not a non-negative integer`);
  }
}

async function readLimited(res: http.IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > limit) throw tooLarge();
      chunks.push(chunk);
    }
  } finally {
    if (!res.complete) res.destroy();
  }
  return Buffer.concat(chunks);
}

/** The first error of a registry's JSON error body (`{"errors":[{"code","message"}]}`), if any. */
async function registryError(res: http.IncomingMessage): Promise<{ code?: string; message?: string }> {
  let body: Buffer;
  try {
    body = await readLimited(res, maxErrorBodyBytes, () => new Error('too large'));
  } catch {
    return {};
  }
  try {
    const doc: unknown = JSON.parse(body.toString('utf8'));
    const first = isRecord(doc) && Array.isArray(doc.errors) ? doc.errors[0] : undefined;
    if (!isRecord(first)) return {};
    return {
      ...(typeof first.code === 'string' ? { code: first.code } : {}),
      ...(typeof first.message === 'string' ? { message: first.message.slice(0, 200) } : {}),
    };
  } catch {
    // Not JSON: Go's TLS server answers plain HTTP with a line of text; keep a short one.
    const text = body.toString('utf8').trim();
    return text && text.length <= 200 && !text.includes('\n') ? { message: text } : {};
  }
}

async function registryErrorCode(res: http.IncomingMessage): Promise<string | undefined> {
  return (await registryError(res)).code;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RegistryError('invalid', `the registry answered invalid JSON: ${(err as Error).message}`);
  }
}

function digestOf(bytes: Buffer, algorithm: 'sha256' | 'sha512'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Node's own advice (run with --use-system-ca) is for its users, not for a cluster's. */
function nodeHintless(message: string): string {
  return message.replace(/;\s*if the root CA is installed locally.*$/s, '');
}

function abortReason(signal: AbortSignal, registry: string): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`request to ${registry} was aborted`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
