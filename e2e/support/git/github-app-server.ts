// GitHub's App token endpoints for tests, on 127.0.0.1: POST /app/installations/{id}/access_tokens
// and GET /orgs|users/{owner}/installation, each checking the app JWT as GitHub does (RS256
// signature against the app's public key, iss = app ID, a short validity that covers now). The
// token it hands out is fixed, so a git server can be started to accept only that token.
import { generateKeyPairSync, verify } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubAppKeyPair {
  /** PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), the form GitHub hands out. */
  privateKeyPem: string;
  publicKeyPem: string;
}

export function generateAppKey(): GitHubAppKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export interface GitHubAppServerOptions {
  appID: string;
  installationID: string;
  /** The account the app is installed on, found under /orgs/… or /users/…. */
  owner?: { login: string; kind: 'orgs' | 'users' };
  publicKeyPem: string;
  /** The installation token every successful request returns. */
  token: string;
  /** Lifetime of the tokens handed out; GitHub's is an hour. */
  ttlSeconds?: number;
}

export interface GitHubAppServer {
  /** The API root, for githubAppBaseURL: `http://127.0.0.1:PORT/api/v3`. */
  apiUrl: string;
  /** Tokens handed out so far. */
  issued(): number;
  /** Every request: method, path, status and why it was refused. */
  requests: { method: string; path: string; status: number; refusal?: string }[];
  close(): Promise<void>;
}

const prefix = '/api/v3';

export async function startGitHubAppServer(opts: GitHubAppServerOptions): Promise<GitHubAppServer> {
  let issued = 0;
  const requests: GitHubAppServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const answer = (status: number, body: object, refusal?: string) => {
      requests.push({ method: req.method ?? '', path, status, ...(refusal ? { refusal } : {}) });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    req.resume();
    const refusal = checkJwt(req.headers.authorization, opts);
    if (refusal) return answer(401, { message: 'A JSON web token could not be decoded' }, refusal);
    const tokenPath = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path.slice(prefix.length));
    if (req.method === 'POST' && path.startsWith(prefix) && tokenPath) {
      if (tokenPath[1] !== opts.installationID) return answer(404, { message: 'Not Found' }, 'unknown installation');
      issued++;
      const expiresAt = new Date(Date.now() + (opts.ttlSeconds ?? 3600) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
      return answer(201, { token: opts.token, expires_at: expiresAt, permissions: { contents: 'read' } });
    }
    const ownerPath = /^\/(orgs|users)\/([^/]+)\/installation$/.exec(path.slice(prefix.length));
    if (req.method === 'GET' && path.startsWith(prefix) && ownerPath) {
      const found = opts.owner && ownerPath[1] === opts.owner.kind && ownerPath[2] === opts.owner.login;
      if (!found) return answer(404, { message: 'Not Found' }, 'no installation for that owner');
      return answer(200, { id: Number(opts.installationID), account: { login: opts.owner!.login } });
    }
    return answer(404, { message: 'Not Found' }, 'no such endpoint');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}${prefix}`,
    issued: () => issued,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Why GitHub would refuse the Authorization header, or undefined when it holds a valid app JWT. */
function checkJwt(header: string | undefined, opts: GitHubAppServerOptions): string | undefined {
  const jwt = /^Bearer (.+)$/.exec(header ?? '')?.[1];
  if (!jwt) return 'no bearer JWT';
  const parts = jwt.split('.');
  if (parts.length !== 3) return 'not a JWT';
  const [h, p, sig] = parts as [string, string, string];
  let head: { alg?: string };
  let claims: { iat?: number; exp?: number; iss?: string | number };
  try {
    head = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return 'JWT does not decode';
  }
  if (head.alg !== 'RS256') return `alg ${head.alg}, not RS256`;
  if (!verify('sha256', Buffer.from(`${h}.${p}`), opts.publicKeyPem, Buffer.from(sig, 'base64url')))
    return 'bad signature';
  if (String(claims.iss) !== opts.appID) return `iss ${claims.iss} is not the app`;
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number') return 'iat or exp missing';
  if (claims.iat > now + 60 || claims.exp <= now) return 'JWT not valid now';
  if (claims.exp - claims.iat > 600) return 'JWT valid for more than 10 minutes';
  return undefined;
}
