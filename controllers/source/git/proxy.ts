// HTTP(S) proxies for the git transports (spec.proxySecretRef): a CONNECT tunnel for HTTPS and SSH
// targets, absolute-form requests for plain HTTP targets, as Go's net/http (and so Flux) does. The
// proxy's password travels only in the Proxy-Authorization header, never in a message.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { connectionCause } from './transport-http.ts';
import { TransportError } from './types.ts';

export interface ProxyConfig {
  /** The proxy's origin, `http://host:port` or `https://host:port`, without credentials. */
  url: URL;
  username?: string;
  password?: string;
}

/** `host:port` of the proxy, for messages. */
export function proxyLabel(proxy: ProxyConfig): string {
  return proxy.url.host;
}

/** The Proxy-Authorization header value, when the proxy has credentials. */
export function proxyAuthorization(proxy: ProxyConfig): string | undefined {
  if (proxy.username === undefined) return undefined;
  return `Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}`;
}

function proxyPort(proxy: ProxyConfig): number {
  if (proxy.url.port) return Number(proxy.url.port);
  return proxy.url.protocol === 'https:' ? 443 : 80;
}

/** Request options that send a plain-HTTP request through the proxy in absolute form. */
export function viaProxy(proxy: ProxyConfig, target: URL, headers: Record<string, string>): http.RequestOptions {
  const auth = proxyAuthorization(proxy);
  return {
    protocol: proxy.url.protocol,
    hostname: proxy.url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: proxyPort(proxy),
    path: target.href,
    headers: { ...headers, host: target.host, ...(auth ? { 'proxy-authorization': auth } : {}) },
  };
}

/**
 * A request to `url`, through `proxy` when one is set: plain HTTP goes to the proxy in absolute
 * form, one connection per request (proxies may close a client connection after each answer
 * without saying so, as tinyproxy does, and a reused one then hangs up); HTTPS goes over
 * `httpsAgent`, a TunnelingAgent when proxied. Unproxied plain HTTP uses `httpAgent`.
 */
export function requestTo(
  url: URL,
  opts: {
    method: string;
    headers: Record<string, string>;
    proxy?: ProxyConfig | undefined;
    httpsAgent?: https.Agent | undefined;
    httpAgent?: http.Agent | undefined;
  },
): http.ClientRequest {
  const { method, headers, proxy } = opts;
  if (url.protocol === 'https:') return https.request(url, { method, headers, agent: opts.httpsAgent });
  if (!proxy) return http.request(url, { method, headers, agent: opts.httpAgent });
  const transport = proxy.url.protocol === 'https:' ? https : http;
  return transport.request({ ...viaProxy(proxy, url, headers), method, agent: false });
}

/** The error for a proxy's answer other than 2xx, without its credentials. */
export function proxyStatusError(proxy: ProxyConfig, status: number, statusMessage: string): TransportError {
  const what = `HTTP ${status}${statusMessage ? ` ${statusMessage}` : ''}`;
  // 407 is the standard answer; some proxies (tinyproxy) answer wrong credentials with 401.
  if (status === 407 || status === 401) {
    return new TransportError(
      'auth',
      proxy.username === undefined
        ? `proxy ${proxyLabel(proxy)} requires authentication (${what}); set username and password in the proxy Secret`
        : `proxy ${proxyLabel(proxy)} rejected the proxy credentials (${what})`,
    );
  }
  return new TransportError('unreachable', `proxy ${proxyLabel(proxy)} refused the connection (${what})`);
}

/**
 * Opens a CONNECT tunnel through `proxy` to `host:port`. Rejects with a TransportError: 'auth'
 * for a 407, 'unreachable' when the proxy cannot be reached or refuses, or with `abort`'s error.
 */
export function connectTunnel(
  proxy: ProxyConfig,
  host: string,
  port: number,
  onAbort: (destroy: (err: Error) => void) => void,
): Promise<Socket> {
  const auth = proxyAuthorization(proxy);
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const req = (proxy.url.protocol === 'https:' ? https : http).request({
      method: 'CONNECT',
      hostname: proxy.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: proxyPort(proxy),
      path: authority,
      headers: { host: authority, ...(auth ? { 'proxy-authorization': auth } : {}) },
      agent: false,
    });
    let settled = false;
    onAbort((err) => {
      if (settled) return;
      settled = true;
      req.destroy(err);
      reject(err);
    });
    req.once('connect', (res, socket, head) => {
      if (settled) {
        socket.destroy();
        return;
      }
      settled = true;
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(proxyStatusError(proxy, res.statusCode ?? 0, res.statusMessage ?? ''));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('response', (res) => {
      res.resume();
      if (settled) return;
      settled = true;
      reject(proxyStatusError(proxy, res.statusCode ?? 0, res.statusMessage ?? ''));
    });
    req.once('error', (err: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      reject(new TransportError('unreachable', `cannot reach proxy ${proxyLabel(proxy)}: ${connectionCause(err)}`));
    });
    req.end();
  });
}

/**
 * An https.Agent whose connections are TLS sessions inside CONNECT tunnels through `proxy`; the
 * TLS options (CA, server name) are those of the request, so certificate checks are end to end.
 */
export class TunnelingAgent extends https.Agent {
  readonly #proxy: ProxyConfig;

  constructor(proxy: ProxyConfig, opts: https.AgentOptions) {
    super(opts);
    this.#proxy = proxy;
  }

  override createConnection(
    options: http.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    const tlsOptions = options as tls.ConnectionOptions;
    const host = (options.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
    const port = Number(options.port ?? 443);
    connectTunnel(this.#proxy, host, port, () => {}).then(
      (socket) => {
        const servername = tlsOptions.servername || tlsServerName(host);
        callback?.(null, tls.connect({ ...tlsOptions, socket, ...(servername ? { servername } : {}) }));
      },
      // Node's agent reads only the error when there is one.
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** SNI takes host names only, never IP addresses. */
function tlsServerName(host: string): string | undefined {
  return /^[\d.]+$|:/.test(host) ? undefined : host;
}
