// Downloads from Helm HTTP(S) repositories (index.yaml and chart tarballs) straight to disk, hashed
// on the way, bounded in size and time, never held in the heap. Credentials go to the repository's
// own host only, unless passCredentials says otherwise (Helm's --pass-credentials).
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tls from 'node:tls';
import { connectionCause } from '../git/transport-http.ts';
import { digestMeter } from '../digest.ts';

export interface HttpAccess {
  username?: string;
  password?: string;
  /** PEM CA trusted in addition to the system roots. */
  ca?: string;
  /** PEM client certificate and key. */
  cert?: string;
  key?: string;
  /** Send the credentials to hosts other than the repository's (chart URLs elsewhere). */
  passCredentials?: boolean;
}

export type HttpErrorKind = 'auth' | 'not-found' | 'network' | 'tls' | 'too-large' | 'timeout' | 'status';

export class HttpFetchError extends Error {
  override name = 'HttpFetchError';
  readonly kind: HttpErrorKind;
  constructor(kind: HttpErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

export interface DownloadOptions {
  access: HttpAccess;
  /** The host (host:port) the credentials belong to: the repository URL's. */
  credentialsHost: string;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** The URL for messages: no credentials, no query (signed URLs carry tokens there). */
export function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * GETs `url` into `dest` (following up to 10 redirects) and returns the sha256 digest and size of
 * what was written. On any failure `dest` is removed and an HttpFetchError says why.
 */
export async function download(
  url: URL,
  dest: string,
  opts: DownloadOptions,
): Promise<{ digest: string; size: number }> {
  const signals = [AbortSignal.timeout(opts.timeoutMs), ...(opts.signal ? [opts.signal] : [])];
  const signal = AbortSignal.any(signals);
  try {
    let target = url;
    for (let hops = 0; hops <= 10; hops++) {
      const res = await get(target, opts, signal);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        target = new URL(res.headers.location, target);
        continue;
      }
      if (status !== 200) {
        res.resume();
        throw statusError(target, status, res.statusMessage ?? '', opts);
      }
      const declared = Number(res.headers['content-length'] ?? -1);
      if (declared > opts.maxBytes) {
        res.destroy();
        throw tooLarge(target, opts.maxBytes);
      }
      const meter = digestMeter();
      let seen = 0;
      const guard = new Transform({
        transform(chunk: Buffer, _enc, done) {
          seen += chunk.length;
          done(seen > opts.maxBytes ? tooLarge(target, opts.maxBytes) : null, chunk);
        },
      });
      await pipeline(res, guard, meter.stream, createWriteStream(dest), { signal });
      return meter.result();
    }
    throw new HttpFetchError('status', `too many redirects fetching ${displayUrl(url)}`);
  } catch (err) {
    await rm(dest, { force: true });
    throw asFetchError(err, url, signal, opts);
  }
}

function get(url: URL, opts: DownloadOptions, signal: AbortSignal): Promise<http.IncomingMessage> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new HttpFetchError('status', `unsupported URL scheme in ${displayUrl(url)}`));
  }
  const { access } = opts;
  const headers: Record<string, string> = { 'user-agent': 'tide-source-controller', accept: '*/*' };
  const sendCredentials = access.passCredentials || url.host === opts.credentialsHost;
  if (sendCredentials && access.username !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${access.username}:${access.password ?? ''}`).toString('base64')}`;
  }
  const options: https.RequestOptions = { method: 'GET', headers, signal };
  if (url.protocol === 'https:') {
    options.ca = access.ca ? [...tls.rootCertificates, access.ca] : undefined;
    options.cert = access.cert;
    options.key = access.key;
  }
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, options, resolve);
    req.on('error', reject);
    req.end();
  });
}

function tooLarge(url: URL, maxBytes: number): HttpFetchError {
  return new HttpFetchError('too-large', `${displayUrl(url)} exceeds the size limit of ${maxBytes} bytes`);
}

function statusError(url: URL, status: number, text: string, opts: DownloadOptions): HttpFetchError {
  const what = `failed to fetch ${displayUrl(url)} : ${status}${text ? ` ${text}` : ''}`;
  if (status === 401 || status === 403) {
    const hint =
      opts.access.username === undefined
        ? ' (no credentials given)'
        : url.host !== opts.credentialsHost && !opts.access.passCredentials
          ? ' (credentials are only sent to the repository host; see spec.passCredentials)'
          : '';
    return new HttpFetchError('auth', `${what}${hint}`);
  }
  if (status === 404) return new HttpFetchError('not-found', what);
  return new HttpFetchError('status', what);
}

function asFetchError(err: unknown, url: URL, signal: AbortSignal, opts: DownloadOptions): Error {
  if (err instanceof HttpFetchError) return err;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof Error && reason.name === 'TimeoutError') {
      return new HttpFetchError('timeout', `fetching ${displayUrl(url)} timed out after ${opts.timeoutMs / 1000}s`);
    }
    return reason instanceof Error ? reason : new Error(`fetching ${displayUrl(url)} was aborted`);
  }
  const e = err as Error & { code?: string };
  if (e.code && TLS_CODES.has(e.code)) {
    return new HttpFetchError('tls', `TLS handshake with ${url.host} failed: ${e.message}`);
  }
  return new HttpFetchError('network', `failed to fetch ${displayUrl(url)} : ${connectionCause(e)}`);
}
