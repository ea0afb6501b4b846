// A real OCI registry for tests: the CNCF distribution registry (`registry serve`, built by
// e2e/controlplane/build.sh) on 127.0.0.1 with its storage in a temp dir, optionally with TLS
// (a certificate for 127.0.0.1 and localhost from a fresh test CA), htpasswd basic auth, or
// token auth (a Bearer realm served here, issuing JWTs signed with a test key the registry
// trusts). Also: pushArtifact uploads blobs and an OCI image manifest through the registry's
// HTTP API, and helmPush runs the real `helm push`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, sign, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import YAML from 'yaml';
import { resolveBinDir } from '../cluster/cluster.ts';
import { testCluster } from './cluster.ts';
import { eventually } from './eventually.ts';
import { makeTestCertificates } from './git/tls.ts';
import { freePort } from './net.ts';

export interface RegistryOptions {
  /** Require these credentials: htpasswd basic auth, or the token server's when tokenAuth. */
  auth?: { username: string; password: string };
  /** HTTPS with a certificate from a fresh CA (see `ca`). */
  tls?: boolean;
  /** Token auth (Bearer realm) instead of htpasswd; anonymous tokens grant nothing when `auth` is set. */
  tokenAuth?: boolean;
  /** Where the `registry` binary is; default: the test cluster's bin dir, else resolveBinDir(). */
  binDir?: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** `oci://127.0.0.1:PORT`. */
  url: string;
  /** `https://127.0.0.1:PORT` or `http://…`. */
  origin: string;
  tls: boolean;
  /** The CA that signed the registry's (and the token server's) certificate; TLS only. */
  ca?: string;
  auth?: { username: string; password: string };
  /** The token realm, when tokenAuth. */
  realm?: string;
  /** The token requests answered so far, when tokenAuth. */
  tokenRequests: TokenRequest[];
  /** The registry's log so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface TokenRequest {
  method: string;
  scopes: string[];
  /** Who asked: the user name, '' when anonymous, undefined when refused. */
  account: string | undefined;
  status: number;
}

export interface Artifact {
  layers: { mediaType: string; bytes: Buffer | string; annotations?: Record<string, string> }[];
  /** Default: the OCI empty config (`{}`, application/vnd.oci.empty.v1+json). */
  config?: { mediaType: string; bytes: Buffer | string };
  artifactType?: string;
  annotations?: Record<string, string>;
}

export const ociManifestMediaType = 'application/vnd.oci.image.manifest.v1+json';
const emptyConfig = { mediaType: 'application/vnd.oci.empty.v1+json', bytes: '{}' };
const service = 'tide-test-registry';
const issuer = 'tide-test-token-issuer';

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const binary = path.join(opts.binDir ?? registryBinDir(), 'registry');
  if (!fs.existsSync(binary)) {
    throw new Error(`registry not found at ${binary}; run \`make controlplane\` (e2e/controlplane/build.sh)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-registry-'));
  const cleanups: (() => Promise<void> | void)[] = [() => fs.rmSync(dir, { recursive: true, force: true })];
  let stopping: Promise<void> | undefined;
  const cleanup = () => {
    stopping ??= (async () => {
      for (const c of cleanups.reverse()) await c();
    })();
    return stopping;
  };
  try {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const origin = `${opts.tls ? 'https' : 'http'}://${host}`;
    let ca: string | undefined;
    let serverTls: { cert: string; key: string } | undefined;
    const httpConfig: Record<string, unknown> = {
      addr: host,
      secret: randomBytes(16).toString('hex'),
    };
    if (opts.tls) {
      const certDir = path.join(dir, 'tls');
      fs.mkdirSync(certDir);
      const certs = await makeTestCertificates(certDir, 'tide test registry CA');
      ca = certs.caPem;
      serverTls = { cert: certs.certPem, key: certs.keyPem };
      httpConfig.tls = { certificate: path.join(certDir, 'server.crt'), key: path.join(certDir, 'server.key') };
    }

    let auth: Record<string, unknown> | undefined;
    const tokenRequests: TokenRequest[] = [];
    let realm: string | undefined;
    if (opts.tokenAuth) {
      const issuerKeys = await makeSigningKey(dir);
      const tokens = await startTokenServer({ auth: opts.auth, tls: serverTls, signer: issuerKeys, tokenRequests });
      cleanups.push(tokens.close);
      realm = `${tokens.origin}/token`;
      auth = { token: { realm, service, issuer, rootcertbundle: issuerKeys.certPath } };
    } else if (opts.auth) {
      const htpasswd = path.join(dir, 'htpasswd');
      const hash = bcrypt.hashSync(opts.auth.password, 4);
      fs.writeFileSync(htpasswd, `${opts.auth.username}:${hash}\n`);
      auth = { htpasswd: { realm: service, path: htpasswd } };
    }

    const config = {
      version: 0.1,
      log: { level: 'warn', formatter: 'text', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: path.join(dir, 'data') },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: httpConfig,
      ...(auth ? { auth } : {}),
    };
    const configPath = path.join(dir, 'config.yml');
    fs.writeFileSync(configPath, YAML.stringify(config));

    const proc = spawnRegistry(binary, configPath, dir);
    cleanups.push(() => stopProc(proc));
    const logPath = proc.logPath;
    await eventually(
      async () => {
        if (proc.exit) throw exitError(proc);
        const status = await probe(`${origin}/v2/`, ca);
        if (status !== 200 && status !== 401) throw new Error(`GET /v2/ answered ${status}`);
      },
      { timeoutMs: 20_000, intervalMs: 100, message: `registry on ${host} did not become ready` },
    );
    return {
      host,
      url: `oci://${host}`,
      origin,
      tls: Boolean(opts.tls),
      ...(ca ? { ca } : {}),
      ...(opts.auth ? { auth: opts.auth } : {}),
      ...(realm ? { realm } : {}),
      tokenRequests,
      log: () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : ''),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Pushes an OCI image manifest with `artifact`'s config and layers as `repo:tag` through the
 * registry's HTTP API (blob uploads by POST then PUT, then the manifest by PUT), with the
 * registry's own credentials unless others are given. Returns the manifest's digest.
 */
export async function pushArtifact(
  registry: TestRegistry,
  repo: string,
  tag: string,
  artifact: Artifact,
  credentials: { username: string; password: string } | undefined = registry.auth,
): Promise<string> {
  const api = new RegistryApi(registry, repo, credentials);
  const config = artifact.config ?? emptyConfig;
  const configDesc = await api.uploadBlob(config.mediaType, toBuffer(config.bytes));
  const layers = [];
  for (const layer of artifact.layers) {
    const desc = await api.uploadBlob(layer.mediaType, toBuffer(layer.bytes));
    layers.push({ ...desc, ...(layer.annotations ? { annotations: layer.annotations } : {}) });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: ociManifestMediaType,
    ...(artifact.artifactType ? { artifactType: artifact.artifactType } : {}),
    config: configDesc,
    layers,
    ...(artifact.annotations ? { annotations: artifact.annotations } : {}),
  };
  return api.putManifest(tag, Buffer.from(JSON.stringify(manifest)), ociManifestMediaType);
}

/** A manifest of any media type (an index, say) as `repo:reference`; returns its digest. */
export async function pushManifest(
  registry: TestRegistry,
  repo: string,
  reference: string,
  manifest: Buffer | string,
  mediaType: string,
  credentials: { username: string; password: string } | undefined = registry.auth,
): Promise<string> {
  return new RegistryApi(registry, repo, credentials).putManifest(reference, toBuffer(manifest), mediaType);
}

export interface HelmPushOptions {
  username?: string;
  password?: string;
  /** PEM CA of the registry; without it (and without plainHttp: false) the push is plain HTTP. */
  ca?: string;
  plainHttp?: boolean;
  binDir?: string;
}

/**
 * `helm push chartTgz ociUrl` with the real Helm 4 CLI, after `helm registry login` when
 * credentials are given; Helm's config, cache and registry login live in a temp dir that is
 * removed afterwards. Returns the pushed reference and digest Helm reports.
 */
export async function helmPush(
  chartTgz: string,
  ociUrl: string,
  opts: HelmPushOptions = {},
): Promise<{ ref: string; digest: string }> {
  const helm = path.join(opts.binDir ?? registryBinDir(), 'helm');
  if (!fs.existsSync(helm)) throw new Error(`helm not found at ${helm}; run \`make controlplane\``);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-helm-push-'));
  try {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      HELM_CONFIG_HOME: path.join(home, 'config'),
      HELM_CACHE_HOME: path.join(home, 'cache'),
      HELM_DATA_HOME: path.join(home, 'data'),
      HELM_CONTENT_CACHE: path.join(home, 'cache', 'content'),
      HELM_REGISTRY_CONFIG: path.join(home, 'registry.json'),
      HELM_REPOSITORY_CONFIG: path.join(home, 'repositories.yaml'),
      HELM_REPOSITORY_CACHE: path.join(home, 'cache', 'repository'),
      NO_PROXY: '127.0.0.1,localhost',
    };
    const tlsArgs: string[] = [];
    if (opts.ca) {
      const caFile = path.join(home, 'ca.crt');
      fs.writeFileSync(caFile, opts.ca);
      tlsArgs.push('--ca-file', caFile);
    }
    if (opts.plainHttp ?? opts.ca === undefined) tlsArgs.push('--plain-http');
    if (opts.username !== undefined) {
      const host = ociUrl.replace(/^oci:\/\//, '').split('/')[0]!;
      await run(helm, ['registry', 'login', host, '--username', opts.username, '--password-stdin', ...tlsArgs], {
        env,
        input: opts.password ?? '',
      });
    }
    const out = await run(helm, ['push', chartTgz, ociUrl, ...tlsArgs], { env });
    const ref = /Pushed:\s*(\S+)/.exec(out)?.[1];
    const digest = /Digest:\s*(sha256:[a-f0-9]{64})/.exec(out)?.[1];
    if (!ref || !digest) throw new Error(`helm push printed no reference and digest:\n${out}`);
    return { ref, digest };
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** The test cluster's bin dir when a cluster runs (integration tests), else build.sh's (unit tests). */
function registryBinDir(): string {
  try {
    return testCluster().binDir;
  } catch {
    cachedBinDir ??= resolveBinDir();
    return cachedBinDir;
  }
}
let cachedBinDir: string | undefined;

interface RegistryProcess {
  child: ChildProcess;
  logPath: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function spawnRegistry(binary: string, configPath: string, dir: string): RegistryProcess {
  const logPath = path.join(dir, 'registry.log');
  const out = fs.openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, ['serve', configPath], {
      cwd: dir,
      stdio: ['ignore', out, out],
      // The registry makes no outbound calls in this configuration; OpenTelemetry's exporter would.
      env: {
        ...process.env,
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_LOGS_EXPORTER: 'none',
        OTEL_SDK_DISABLED: 'true',
      },
    });
  } finally {
    fs.closeSync(out);
  }
  const proc: RegistryProcess = { child, logPath, exit: undefined };
  // A crashed or interrupted test run must not leave a registry behind.
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  running.add(child);
  child.on('exit', (code, signal) => {
    running.delete(child);
    proc.exit = { code, signal };
  });
  return proc;
}

function exitError(proc: RegistryProcess): Error {
  const how = proc.exit?.signal ? `signal ${proc.exit.signal}` : `code ${proc.exit?.code}`;
  const log = fs.existsSync(proc.logPath) ? fs.readFileSync(proc.logPath, 'utf8').trim().split('\n').slice(-8) : [];
  return new Error(`registry exited with ${how} while starting:\n${log.map((l) => `  | ${l}`).join('\n')}`);
}

async function stopProc(proc: RegistryProcess): Promise<void> {
  if (proc.exit) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function probe(url: string, ca: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { ...(ca ? { ca } : {}), agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', reject);
  });
}

// ---- token auth ----------------------------------------------------------------------------

interface SigningKey {
  certPath: string;
  keyPem: string;
  certDer: Buffer;
}

/** A self-signed EC P-256 certificate and key: the registry trusts the certificate (rootcertbundle). */
async function makeSigningKey(dir: string): Promise<SigningKey> {
  const certPath = path.join(dir, 'token-issuer.crt');
  const keyPath = path.join(dir, 'token-issuer.key');
  await new Promise<void>((resolve, reject) => {
    execFile(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '7',
        '-subj',
        `/CN=${issuer}`,
      ],
      (err, _out, stderr) =>
        err ? reject(new Error(`openssl req failed: ${stderr.trim() || err.message}`)) : resolve(),
    );
  });
  return {
    certPath,
    keyPem: fs.readFileSync(keyPath, 'utf8'),
    certDer: Buffer.from(new X509Certificate(fs.readFileSync(certPath)).raw),
  };
}

/**
 * The token realm: checks basic credentials (or an OAuth2 refresh token equal to the password)
 * and answers with a JWT granting pull and push on the repositories asked for; anonymous
 * requests get a token granting nothing when credentials are required, and everything otherwise.
 */
async function startTokenServer(opts: {
  auth: { username: string; password: string } | undefined;
  tls: { cert: string; key: string } | undefined;
  signer: SigningKey;
  tokenRequests: TokenRequest[];
}): Promise<{ origin: string; close: () => Promise<void> }> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://token.invalid');
      const params = req.method === 'POST' ? new URLSearchParams(Buffer.concat(chunks).toString()) : url.searchParams;
      const scopes = params
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean);
      const account = authenticate(req.headers.authorization, params, opts.auth);
      opts.tokenRequests.push({
        method: req.method ?? 'GET',
        scopes,
        account,
        status: account === undefined ? 401 : 200,
      });
      if (url.pathname !== '/token') {
        res.writeHead(404).end();
        return;
      }
      if (account === undefined) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }));
        return;
      }
      const granted = account !== '' || !opts.auth;
      const access = scopes.flatMap((s) => {
        const parts = s.split(':');
        if (parts.length < 3 || !granted) return [];
        return [{ type: parts[0], name: parts.slice(1, -1).join(':'), actions: parts.at(-1)!.split(',') }];
      });
      const now = Math.floor(Date.now() / 1000);
      const token = signJwt(opts.signer, {
        iss: issuer,
        sub: account,
        aud: params.get('service') ?? service,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      const body = req.method === 'POST' ? { access_token: token } : { token };
      res.end(JSON.stringify({ ...body, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }));
    });
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The account name ('' when anonymous), or undefined for wrong credentials. */
function authenticate(
  header: string | undefined,
  params: URLSearchParams,
  auth: { username: string; password: string } | undefined,
): string | undefined {
  if (params.get('grant_type') === 'refresh_token') {
    return auth && params.get('refresh_token') === auth.password ? auth.username : undefined;
  }
  if (!header || !auth) return '';
  if (!header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  return decoded === `${auth.username}:${auth.password}` ? auth.username : undefined;
}

function signJwt(signer: SigningKey, claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'ES256', typ: 'JWT', x5c: [signer.certDer.toString('base64')] });
  const data = `${head}.${b64(claims)}`;
  const signature = sign('sha256', Buffer.from(data), { key: signer.keyPem, dsaEncoding: 'ieee-p1363' });
  return `${data}.${signature.toString('base64url')}`;
}

// ---- pushing ------------------------------------------------------------------------------

/** Just enough of the distribution API to push, with basic or bearer auth, for one repository. */
class RegistryApi {
  readonly #registry: TestRegistry;
  readonly #repo: string;
  readonly #credentials: { username: string; password: string } | undefined;
  #authorization: string | undefined;

  constructor(registry: TestRegistry, repo: string, credentials: { username: string; password: string } | undefined) {
    this.#registry = registry;
    this.#repo = repo;
    this.#credentials = credentials;
  }

  async uploadBlob(mediaType: string, bytes: Buffer): Promise<{ mediaType: string; digest: string; size: number }> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const desc = { mediaType, digest, size: bytes.byteLength };
    const head = await this.#send('HEAD', `/v2/${this.#repo}/blobs/${digest}`);
    if (head.status === 200) return desc;
    const start = await this.#send('POST', `/v2/${this.#repo}/blobs/uploads/`);
    const location = start.headers.location;
    if (start.status !== 202 || typeof location !== 'string') {
      throw new Error(`starting a blob upload to ${this.#repo} answered ${start.status}: ${start.body}`);
    }
    const url = new URL(location, this.#registry.origin);
    url.searchParams.set('digest', digest);
    const put = await this.#send('PUT', url.pathname + url.search, bytes, 'application/octet-stream');
    if (put.status !== 201)
      throw new Error(`uploading blob ${digest} to ${this.#repo} answered ${put.status}: ${put.body}`);
    return desc;
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const res = await this.#send('PUT', `/v2/${this.#repo}/manifests/${reference}`, bytes, mediaType);
    if (res.status !== 201)
      throw new Error(`putting manifest ${this.#repo}:${reference} answered ${res.status}: ${res.body}`);
    const answered = res.headers['docker-content-digest'];
    if (answered !== undefined && answered !== digest) {
      throw new Error(`registry took manifest ${this.#repo}:${reference} as ${answered}, expected ${digest}`);
    }
    return digest;
  }

  async #send(method: string, pathAndQuery: string, body?: Buffer, contentType?: string): Promise<RawResponse> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (this.#authorization) headers.authorization = this.#authorization;
      if (contentType) headers['content-type'] = contentType;
      const res = await rawRequest(
        method,
        new URL(pathAndQuery, this.#registry.origin),
        headers,
        body,
        this.#registry.ca,
      );
      if (res.status !== 401 || attempt > 0) return res;
      const challenge = res.headers['www-authenticate'] ?? '';
      if (/^Basic/i.test(challenge)) {
        if (!this.#credentials) return res;
        const { username, password } = this.#credentials;
        this.#authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      } else {
        this.#authorization = `Bearer ${await this.#token(challenge)}`;
      }
    }
  }

  async #token(challenge: string): Promise<string> {
    const param = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(challenge)?.[1];
    const realm = param('realm');
    if (!realm) throw new Error(`registry asked for a token without a realm: ${challenge}`);
    const url = new URL(realm);
    url.searchParams.set('service', param('service') ?? '');
    url.searchParams.set('scope', `repository:${this.#repo}:pull,push`);
    const headers: Record<string, string> = {};
    if (this.#credentials) {
      const { username, password } = this.#credentials;
      headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    const res = await rawRequest('GET', url, headers, undefined, this.#registry.ca);
    if (res.status !== 200) throw new Error(`token request answered ${res.status}: ${res.body}`);
    const doc = JSON.parse(res.body) as { token?: string; access_token?: string };
    const token = doc.token ?? doc.access_token;
    if (!token) throw new Error('token response has no token');
    return token;
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

function rawRequest(
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: Buffer | undefined,
  ca: string | undefined,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.request(
      url,
      {
        method,
        headers: { ...headers, 'content-length': String(body?.byteLength ?? 0) },
        ...(ca ? { ca } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const flat: Record<string, string | undefined> = {};
          for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers: flat, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

async function run(command: string, args: string[], opts: { env: NodeJS.ProcessEnv; input?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { env: opts.env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err)
        reject(
          new Error(`${path.basename(command)} ${args.slice(0, 2).join(' ')} failed: ${stderr.trim() || err.message}`),
        );
      else resolve(`${stdout}${stderr}`);
    });
    child.stdin?.end(opts.input ?? '');
  });
}

function toBuffer(b: Buffer | string): Buffer {
  return typeof b === 'string' ? Buffer.from(b) : b;
}
