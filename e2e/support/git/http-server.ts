// A smart-HTTP git server for tests: `git http-backend` run as a CGI program behind a node
// http(s) server on 127.0.0.1, with optional basic or bearer authentication and TLS.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTestCertificates } from './tls.ts';

export type HttpAuth = { username: string; password: string } | { bearerToken: string };

export interface GitHttpServerOptions {
  /** Directory holding the bare repositories (`<name>.git`), served as `/<name>.git`. */
  root: string;
  /** Without it every request is served anonymously. */
  auth?: HttpAuth;
  /** Serve HTTPS with a certificate from a fresh CA (see `caPem`). */
  tls?: boolean;
  /** Runs before an authenticated request reaches git http-backend (a test moving a branch under a push). */
  beforeBackend?: (req: { method: string; path: string }) => Promise<void>;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  baseUrl: string;
  /** The clone URL of `<root>/<name>.git`. */
  url(repoName: string): string;
  /** The CA that signed the server certificate (TLS only). */
  caPem?: string;
  /** Requests answered so far, with the Authorization header they carried, for assertions. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  status: number;
}

export async function startGitHttpServer(opts: GitHttpServerOptions): Promise<GitHttpServer> {
  const root = path.resolve(opts.root);
  const requests: RecordedRequest[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://server.invalid');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      authorization: req.headers.authorization,
      status: 0,
    };
    requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const user = opts.auth ? authenticate(opts.auth, req.headers.authorization) : '';
    if (user === undefined) {
      const scheme = opts.auth && 'bearerToken' in opts.auth ? 'Bearer' : 'Basic';
      res.writeHead(401, { 'WWW-Authenticate': `${scheme} realm="tide-git"`, 'Content-Type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }
    if (!opts.beforeBackend) {
      runHttpBackend(root, url, user, req, res);
      return;
    }
    req.pause();
    opts.beforeBackend({ method: record.method, path: url.pathname }).then(
      () => runHttpBackend(root, url, user, req, res),
      (err: Error) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`beforeBackend: ${err.message}\n`);
      },
    );
  };

  let server: http.Server;
  let caPem: string | undefined;
  let certDir: string | undefined;
  if (opts.tls) {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-git-tls-'));
    const certs = await makeTestCertificates(certDir);
    caPem = certs.caPem;
    server = https.createServer({ cert: certs.certPem, key: certs.keyPem }, handler);
  } else {
    server = http.createServer(handler);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    baseUrl,
    url: (name) => `${baseUrl}/${name}.git`,
    caPem,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
    },
  };
}

/** The authenticated user name ('' for a bearer token), or undefined when the header does not match. */
function authenticate(auth: HttpAuth, header: string | undefined): string | undefined {
  if ('bearerToken' in auth) return header === `Bearer ${auth.bearerToken}` ? '' : undefined;
  const expected = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  return header === expected ? auth.username : undefined;
}

/** Runs `git http-backend` for one request, per its CGI contract, and relays its answer. */
function runHttpBackend(
  root: string,
  url: URL,
  user: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    REMOTE_USER: user,
  };
  if (req.headers['content-type']) env.CONTENT_TYPE = req.headers['content-type'];
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  // http-backend turns these into GIT_PROTOCOL and gunzips the body itself.
  const gitProtocol = req.headers['git-protocol'];
  if (typeof gitProtocol === 'string') env.HTTP_GIT_PROTOCOL = gitProtocol;
  const encoding = req.headers['content-encoding'];
  if (encoding) env.HTTP_CONTENT_ENCODING = encoding;

  const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  cgi.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  cgi.on('error', (err) => {
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(`git http-backend: ${err.message}\n`);
  });
  req.pipe(cgi.stdin);
  cgi.stdin.on('error', () => {});
  // A client that hung up (a size limit, a timeout) needs no more of the answer.
  res.on('close', () => {
    if (!res.writableFinished) cgi.kill();
  });

  let head = Buffer.alloc(0);
  let headersDone = false;
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      if (!res.write(chunk)) {
        cgi.stdout.pause();
        res.once('drain', () => cgi.stdout.resume());
      }
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = headerEnd(head);
    if (end === undefined) return;
    headersDone = true;
    const { status, headers } = parseCgiHeaders(head.subarray(0, end.start).toString('latin1'));
    res.writeHead(status, headers);
    res.write(head.subarray(end.bodyStart));
  });
  cgi.stdout.on('end', () => {
    if (!headersDone && !res.headersSent) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`git http-backend wrote no headers: ${stderr}`);
      return;
    }
    res.end();
  });
}

function headerEnd(buf: Buffer): { start: number; bodyStart: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { start: crlf, bodyStart: crlf + 4 };
  if (lf >= 0) return { start: lf, bodyStart: lf + 2 };
  return undefined;
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers };
}
