// The smart-HTTP transport: an isomorphic-git HttpClient on node:http/https that adds the
// credentials as headers, trusts the Secret's CA, enforces the deadline and size limit, follows a
// few redirects without carrying credentials to another origin, and turns failures into
// TransportErrors whose messages name the host and the cause but never a secret.
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { TunnelingAgent, proxyStatusError, requestTo, type ProxyConfig } from './proxy.ts';
import { TransportError, type GitCredentials, type Transport, type TransportOptions } from './types.ts';

const maxRedirects = 5;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);

export function openHttpTransport(url: URL, creds: GitCredentials, opts: TransportOptions): Transport {
  const client = new GitHttpClient(url.origin, creds, opts);
  // isomorphic-git appends `/info/refs?…` and `/git-upload-pack` to the URL.
  const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}${url.search}`;
  return { url: base, http: client, close: () => client.close() };
}

/**
 * One request's deadline and cancellation. The first failure (deadline, abort signal, or an
 * explicit `fail`) wins; it is handed to the registered teardown so that whatever is in flight
 * ends with that error. `done()` must be called once the request is over.
 */
export class RequestGuard {
  #failure: Error | undefined;
  #teardown: ((err: Error) => void) | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;

  constructor(opts: TransportOptions, describe: { host: string; timeoutMessage: string }) {
    this.#signal = opts.signal;
    this.#timer = setTimeout(() => this.fail(new TransportError('timeout', describe.timeoutMessage)), opts.timeoutMs);
    // A pending deadline must not keep the process alive on its own.
    this.#timer.unref();
    this.#onAbort = () => this.fail(abortError(opts.signal!, describe.host));
    if (opts.signal?.aborted) this.#onAbort();
    else opts.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  /** What to destroy on failure; called at once when the request has already failed. */
  onFail(teardown: (err: Error) => void): void {
    this.#teardown = teardown;
    if (this.#failure) teardown(this.#failure);
  }

  fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#teardown?.(err);
  }

  throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  done(): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}

/** The error for an aborted operation: a timeout signal counts as a timeout, anything else is rethrown. */
export function abortError(signal: AbortSignal, host: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new TransportError('timeout', `git operation on ${host} timed out`);
  }
  return reason instanceof Error ? reason : new Error(`git operation on ${host} was aborted`);
}

/** The error for a response body that grew past `TransportOptions.maxBytes`. */
export function sizeLimitError(host: string, maxBytes: number): TransportError {
  return new TransportError('too-large', `response from ${host} exceeds the size limit of ${maxBytes} bytes`);
}

const connectionCauses: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
};

/** Why a connection failed, in words, for errors from node:net (and ssh2's socket errors). */
export function connectionCause(err: Error & { code?: string }): string {
  return (err.code && connectionCauses[err.code]) || err.message;
}

class GitHttpClient implements HttpClient {
  readonly #origin: string;
  readonly #authorization: string | undefined;
  readonly #hasCredentials: boolean;
  readonly #caGiven: boolean;
  readonly #opts: TransportOptions;
  readonly #httpAgent = new http.Agent({ keepAlive: true });
  readonly #httpsAgent: https.Agent;
  readonly #proxy: ProxyConfig | undefined;

  constructor(origin: string, creds: GitCredentials, opts: TransportOptions) {
    this.#origin = origin;
    this.#authorization = authorizationHeader(creds);
    this.#hasCredentials = this.#authorization !== undefined;
    this.#caGiven = Boolean(creds.caPem);
    this.#opts = opts;
    this.#proxy = opts.proxy;
    // As go-git (Flux's git library) does: the Secret's CA is trusted in addition to the system roots.
    const agentOptions: https.AgentOptions = {
      keepAlive: true,
      ca: creds.caPem ? [...tls.rootCertificates, creds.caPem] : undefined,
    };
    this.#httpsAgent = opts.proxy ? new TunnelingAgent(opts.proxy, agentOptions) : new https.Agent(agentOptions);
  }

  request = async (req: GitHttpRequest): Promise<GitHttpResponse> => {
    let url = new URL(req.url);
    const guard = new RequestGuard(this.#opts, {
      host: url.host,
      timeoutMessage: `${url.host} did not answer within ${this.#opts.timeoutMs} ms`,
    });
    try {
      let method = (req.method ?? 'GET').toUpperCase();
      let body = req.body ? await collect(req.body) : undefined;
      const headers = lowerCaseKeys(req.headers ?? {});
      for (let hop = 0; ; hop++) {
        // Credentials belong to the configured origin; a redirect elsewhere must not receive them.
        delete headers.authorization;
        if (url.origin === this.#origin && this.#authorization) headers.authorization = this.#authorization;
        const res = await this.#send(url, method, headers, body, guard);
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (redirectStatuses.has(status) && location) {
          res.resume();
          if (hop >= maxRedirects)
            throw new TransportError('protocol', `${this.#origin} redirected more than ${maxRedirects} times`);
          const next = new URL(location, url);
          if (next.protocol !== 'http:' && next.protocol !== 'https:') {
            throw new TransportError('protocol', `${url.host} redirected to an unsupported scheme ${next.protocol}`);
          }
          if (status === 303) {
            method = 'GET';
            body = undefined;
          }
          url = next;
          continue;
        }
        if (status < 200 || status > 299) {
          res.resume();
          throw this.#statusError(url, status, res.statusMessage ?? '');
        }
        const response: GitHttpResponse = {
          url: url.toString(),
          method,
          statusCode: status,
          statusMessage: res.statusMessage ?? '',
          headers: flattenHeaders(res.headers),
          body: readBody(res, url.host, this.#opts.maxBytes, guard),
        };
        // A ref advertisement is small; reading it here lets its errors reach the caller, which
        // isomorphic-git's advertisement parser would otherwise take for the end of the stream.
        if (method === 'GET') response.body = once(await collect(response.body!));
        return response;
      }
    } catch (err) {
      guard.done();
      throw err;
    }
  };

  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  #send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    guard: RequestGuard,
  ): Promise<http.IncomingMessage> {
    guard.throwIfFailed();
    const requestHeaders = body ? { ...headers, 'content-length': String(body.byteLength) } : headers;
    return new Promise((resolve, reject) => {
      const req = requestTo(url, {
        method,
        headers: requestHeaders,
        proxy: this.#proxy,
        httpsAgent: this.#httpsAgent,
        httpAgent: this.#httpAgent,
      });
      guard.onFail((err) => req.destroy(err));
      req.once('error', (err) => reject(guard.failure ?? this.#networkError(url, err)));
      req.once('response', resolve);
      req.end(body);
    });
  }

  #statusError(url: URL, status: number, statusMessage: string): TransportError {
    if (status === 407 && this.#proxy) return proxyStatusError(this.#proxy, status, statusMessage);
    const what = `HTTP ${status}${statusMessage ? ` ${statusMessage}` : ''}`;
    if (status === 401) {
      // Through a proxy, plain-HTTP answers may be the proxy's own: some answer bad proxy credentials with 401.
      const proxied = this.#proxy && url.protocol === 'http:' ? ` (or proxy ${this.#proxy.url.host} refused)` : '';
      return new TransportError(
        'auth',
        this.#hasCredentials
          ? `${url.host} rejected the credentials (${what})${proxied}`
          : `${url.host} requires authentication (${what}) and no credentials were given${proxied}`,
      );
    }
    if (status === 403) return new TransportError('auth', `${url.host} denied access (${what})`);
    if (status === 404)
      return new TransportError('not-found', `no repository at ${url.host}${repoPath(url)} (${what})`);
    if (status >= 500) return new TransportError('unreachable', `${url.host} failed to answer (${what})`);
    return new TransportError('protocol', `${url.host} answered ${what} for ${repoPath(url)}`);
  }

  #networkError(url: URL, err: Error): TransportError {
    // A proxy's own failure (from the tunnel) already says what went wrong.
    if (err instanceof TransportError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code)) {
      const hint = this.#caGiven
        ? 'the CA in the Secret (ca.crt) did not sign it'
        : 'add the CA that signed it to the Secret as ca.crt';
      return new TransportError(
        'unreachable',
        `TLS certificate of ${url.host} is not trusted: ${err.message} (${code}); ${hint}`,
      );
    }
    if (this.#proxy && url.protocol === 'http:') {
      return new TransportError('unreachable', `cannot reach proxy ${this.#proxy.url.host}: ${connectionCause(err)}`);
    }
    return new TransportError('unreachable', `cannot reach ${url.host}: ${connectionCause(err)}`);
  }
}

function authorizationHeader(creds: GitCredentials): string | undefined {
  if (creds.bearerToken) return `Bearer ${creds.bearerToken}`;
  if (creds.username === undefined && creds.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${creds.username ?? ''}:${creds.password ?? ''}`).toString('base64')}`;
}

/** The repository part of a smart-HTTP URL, for messages. */
function repoPath(url: URL): string {
  return url.pathname.replace(/\/(info\/refs|git-upload-pack|git-receive-pack)$/, '');
}

async function* readBody(
  res: http.IncomingMessage,
  host: string,
  maxBytes: number | undefined,
  guard: RequestGuard,
): AsyncGenerator<Uint8Array> {
  guard.onFail((err) => res.destroy(err));
  let total = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (maxBytes !== undefined && total > maxBytes) throw sizeLimitError(host, maxBytes);
      yield chunk;
    }
    guard.throwIfFailed();
  } catch (err) {
    throw (
      guard.failure ??
      (err instanceof TransportError
        ? err
        : new TransportError('unreachable', `reading from ${host} failed: ${(err as Error).message}`))
    );
  } finally {
    guard.done();
    // An unfinished body would otherwise hold the connection; a finished one stays reusable.
    if (!res.complete) res.destroy();
  }
}

async function collect(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

async function* once(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield chunk;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}
