// The registry client against the real CNCF distribution registry (e2e/support/registry.ts):
// anonymous over plain HTTP, htpasswd basic auth over TLS, token auth over TLS; plus small
// in-process servers for what a well-behaved registry never does (wrong digests, redirects
// elsewhere, silence).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  helmPush,
  ociManifestMediaType,
  pushArtifact,
  pushManifest,
  startRegistry,
  type TestRegistry,
} from '../../../e2e/support/registry.ts';
import { startProxyServer } from '../../../e2e/support/proxy.ts';
import { MediaType, RegistryClient, RegistryError, type RegistryClientOptions } from './client.ts';

const fluxConfig = 'application/vnd.cncf.flux.config.v1+json';
const fluxContent = 'application/vnd.cncf.flux.content.v1.tar+gzip';
const auth = { username: 'flux', password: 'hunter2-secret' };
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function rejection(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(RegistryError);
    return err as RegistryError;
  }
  throw new Error('expected a rejection');
}

describe('RegistryClient', function () {
  this.timeout(30_000);
  let dir: string;
  const registries: TestRegistry[] = [];
  const clients: RegistryClient[] = [];

  const client = (reg: TestRegistry | string, opts: RegistryClientOptions = {}) => {
    const host = typeof reg === 'string' ? reg : reg.host;
    const c = new RegistryClient(host, { timeoutMs: 10_000, ...opts });
    clients.push(c);
    return c;
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-oci-client-'));
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(registries.map((r) => r.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(opts: Parameters<typeof startRegistry>[0]): Promise<TestRegistry> {
    const reg = await startRegistry(opts);
    registries.push(reg);
    return reg;
  }

  describe('anonymous, plain HTTP', () => {
    let reg: TestRegistry;
    const layer = Buffer.from('the content layer '.repeat(1000));
    const config = Buffer.from('{"kind":"config"}');
    let digest: string;

    before(async () => {
      reg = await start({});
      digest = await pushArtifact(reg, 'org/app', 'v1.0.0', {
        config: { mediaType: fluxConfig, bytes: config },
        layers: [{ mediaType: fluxContent, bytes: layer, annotations: { 'org.opencontainers.image.title': 'x.tgz' } }],
        annotations: { 'org.opencontainers.image.revision': 'main@sha1:abc' },
      });
      for (const tag of ['v1.1.0', 'v2.0.0', 'latest', 'v0.1.0']) {
        await pushArtifact(reg, 'org/app', tag, { layers: [{ mediaType: fluxContent, bytes: tag }] });
      }
    });

    it('lists every tag, following the Link header page by page', async () => {
      const paged = await client(reg, { insecure: true, pageSize: 2 }).listTags('org/app');
      expect(paged).to.have.members(['v1.0.0', 'v1.1.0', 'v2.0.0', 'latest', 'v0.1.0']);
      expect(paged).to.have.length(5);
      expect(await client(reg, { insecure: true }).listTags('org/app')).to.deep.equal(paged);
    });

    it('resolves a tag and a digest to the manifest descriptor', async () => {
      const c = client(reg, { insecure: true });
      const byTag = await c.resolve('org/app', 'v1.0.0');
      expect(byTag.digest).to.equal(digest);
      expect(byTag.mediaType).to.equal(MediaType.ociManifest);
      expect(await c.resolve('org/app', digest)).to.deep.equal(byTag);
    });

    it('fetches the manifest, its digest verified', async () => {
      const c = client(reg, { insecure: true });
      const m = await c.manifest('org/app', 'v1.0.0');
      expect(m.digest).to.equal(digest);
      expect(sha256(m.bytes)).to.equal(digest);
      expect(m.size).to.equal(m.bytes.byteLength);
      expect(m.mediaType).to.equal(ociManifestMediaType);
      expect(m.json.config).to.deep.include({ mediaType: fluxConfig, digest: sha256(config), size: config.length });
      expect(m.json.layers).to.have.length(1);
      expect(m.json.layers![0]).to.deep.include({ mediaType: fluxContent, digest: sha256(layer), size: layer.length });
      expect(m.json.annotations).to.deep.equal({ 'org.opencontainers.image.revision': 'main@sha1:abc' });
      const byDigest = await c.manifest('org/app', digest);
      expect(byDigest.bytes.equals(m.bytes)).to.equal(true);
    });

    it('streams a blob to disk and verifies it', async () => {
      const dest = path.join(dir, 'layer.tgz');
      const got = await client(reg, { insecure: true }).blobToFile('org/app', sha256(layer), dest, {
        maxSize: layer.length,
      });
      expect(got).to.deep.equal({ digest: sha256(layer), size: layer.length });
      expect(fs.readFileSync(dest).equals(layer)).to.equal(true);
    });

    it('refuses a blob over maxSize and leaves no file', async () => {
      const dest = path.join(dir, 'too-large.tgz');
      const err = await rejection(
        client(reg, { insecure: true }).blobToFile('org/app', sha256(layer), dest, { maxSize: 100 }),
      );
      expect(err.kind).to.equal('invalid');
      expect(err.message).to.match(
        /blob sha256:[a-f0-9]{64} of 127\.0\.0\.1:\d+\/org\/app is larger than .* 100 bytes/,
      );
      expect(fs.existsSync(dest)).to.equal(false);
    });

    it('answers notFound for an unknown tag, digest, blob or repository', async () => {
      const c = client(reg, { insecure: true });
      const tag = await rejection(c.resolve('org/app', 'v9.9.9'));
      expect(tag.kind).to.equal('notFound');
      expect(tag.message).to.equal(`tag 'v9.9.9' not found in ${reg.host}/org/app`);
      const m = await rejection(c.manifest('org/app', 'v9.9.9'));
      expect(m.kind).to.equal('notFound');
      expect(m.message).to.equal(`tag 'v9.9.9' not found in ${reg.host}/org/app (MANIFEST_UNKNOWN)`);
      const missing = sha256('missing');
      expect((await rejection(c.manifest('org/app', missing))).message).to.include(`manifest '${missing}' not found`);
      const blob = await rejection(c.blobToFile('org/app', missing, path.join(dir, 'missing')));
      expect(blob.kind).to.equal('notFound');
      expect(blob.message).to.include(`blob ${missing} not found in ${reg.host}/org/app`);
      expect(fs.existsSync(path.join(dir, 'missing'))).to.equal(false);
      const repo = await rejection(c.listTags('org/nothing'));
      expect(repo.kind).to.equal('notFound');
      expect(repo.message).to.include(`repository ${reg.host}/org/nothing not found`);
    });

    it('resolves an OCI index', async () => {
      const child = await c0().manifest('org/app', 'v1.0.0');
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [{ mediaType: child.mediaType, digest: child.digest, size: child.size }],
      });
      const digest = await pushManifest(reg, 'org/app', 'multi', index, MediaType.ociIndex);
      const got = await c0().manifest('org/app', 'multi');
      expect(got).to.deep.include({ digest, mediaType: MediaType.ociIndex });
      expect(got.json.manifests).to.have.length(1);
      expect(await c0().resolve('org/app', 'multi')).to.deep.equal({
        digest,
        mediaType: MediaType.ociIndex,
        size: index.length,
      });
    });

    const c0 = () => client(reg, { insecure: true });

    it('rejects bad references before asking', async () => {
      const err = await rejection(c0().resolve('org/app', 'sha256:short'));
      expect(err.kind).to.equal('invalid');
      expect(err.message).to.match(/invalid digest/);
    });

    it('says when the registry is not there', async () => {
      const port = reg.host.split(':')[1];
      const stopped = await start({});
      await stopped.stop();
      const err = await rejection(client(stopped, { insecure: true }).listTags('org/app'));
      expect(err.kind).to.equal('network');
      expect(err.message).to.equal(`cannot reach ${stopped.host}: connection refused`);
      expect((err.cause as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
      expect(port).to.be.a('string');
    });

    it('says TLS when HTTPS meets a plain HTTP registry', async () => {
      const err = await rejection(client(reg).listTags('org/app'));
      expect(err.kind).to.equal('tls');
      expect(err.message).to.match(/TLS handshake with 127\.0\.0\.1:\d+ failed .*set insecure/);
    });
  });

  describe('htpasswd basic auth over TLS', () => {
    let reg: TestRegistry;
    let digest: string;

    before(async () => {
      reg = await start({ tls: true, auth });
      digest = await pushArtifact(reg, 'secure/app', 'v1', { layers: [{ mediaType: fluxContent, bytes: 'data' }] });
    });

    it('pulls with the credentials and the CA', async () => {
      const c = client(reg, { credentials: auth, tls: { ca: reg.ca! } });
      expect(await c.listTags('secure/app')).to.deep.equal(['v1']);
      expect((await c.resolve('secure/app', 'v1')).digest).to.equal(digest);
      const dest = path.join(dir, 'secure.tgz');
      await c.blobToFile('secure/app', sha256('data'), dest);
      expect(fs.readFileSync(dest, 'utf8')).to.equal('data');
    });

    it('fails auth with a wrong password, without the password in the message', async () => {
      const wrong = { username: auth.username, password: 'wrong-pa55word' };
      const err = await rejection(
        client(reg, { credentials: wrong, tls: { ca: reg.ca! } }).resolve('secure/app', 'v1'),
      );
      expect(err.kind).to.equal('auth');
      expect(err.status).to.equal(401);
      expect(err.message).to.match(/^authentication failed: 127\.0\.0\.1:\d+ rejected the credentials for secure\/app/);
      expect(err.message).not.to.include('wrong-pa55word');
      expect(JSON.stringify(err)).not.to.include('wrong-pa55word');
    });

    it('fails auth without credentials, saying none were given', async () => {
      const err = await rejection(client(reg, { tls: { ca: reg.ca! } }).listTags('secure/app'));
      expect(err.kind).to.equal('auth');
      expect(err.message).to.match(/requires authentication for secure\/app and no credentials were given/);
    });

    it('fails TLS without the CA', async () => {
      const err = await rejection(client(reg, { credentials: auth }).listTags('secure/app'));
      expect(err.kind).to.equal('tls');
      expect(err.message).to.match(/TLS certificate of 127\.0\.0\.1:\d+ is not trusted: .*add the CA/);
      const other = await start({ tls: true });
      const wrongCa = await rejection(
        client(reg, { credentials: auth, tls: { ca: other.ca! } }).listTags('secure/app'),
      );
      expect(wrongCa.kind).to.equal('tls');
      expect(wrongCa.message).to.match(/the given CA did not sign it/);
    });

    it('says TLS when plain HTTP meets an HTTPS registry', async () => {
      const err = await rejection(client(reg, { credentials: auth, insecure: true }).listTags('secure/app'));
      expect(err.kind).to.equal('tls');
      expect(err.message).to.match(/serves HTTPS/);
    });
  });

  describe('token auth over TLS', () => {
    let reg: TestRegistry;
    let digest: string;

    before(async () => {
      reg = await start({ tls: true, tokenAuth: true, auth });
      digest = await pushArtifact(reg, 'tok/app', 'v1', { layers: [{ mediaType: fluxContent, bytes: 'tok' }] });
    });

    it('gets a token from the realm with the credentials and keeps it for the scope', async () => {
      const c = client(reg, { credentials: auth, tls: { ca: reg.ca! } });
      const before = reg.tokenRequests.length;
      expect(await c.listTags('tok/app')).to.deep.equal(['v1']);
      expect((await c.resolve('tok/app', 'v1')).digest).to.equal(digest);
      const m = await c.manifest('tok/app', digest);
      await c.blobToFile('tok/app', m.json.layers![0]!.digest, path.join(dir, 'tok.tgz'));
      const asked = reg.tokenRequests.slice(before);
      expect(asked).to.deep.equal([
        { method: 'GET', scopes: ['repository:tok/app:pull'], account: auth.username, status: 200 },
      ]);
    });

    it('trades an identity token (OAuth2 refresh token) for an access token', async () => {
      const c = client(reg, { credentials: { identityToken: auth.password }, tls: { ca: reg.ca! } });
      expect((await c.resolve('tok/app', 'v1')).digest).to.equal(digest);
      expect(reg.tokenRequests.at(-1)).to.deep.include({ method: 'POST', account: auth.username });
    });

    it('fails auth when the token server rejects the password, without the password in the message', async () => {
      const wrong = { username: auth.username, password: 'wrong-t0ken-pass' };
      const err = await rejection(client(reg, { credentials: wrong, tls: { ca: reg.ca! } }).listTags('tok/app'));
      expect(err.kind).to.equal('auth');
      expect(err.message).to.match(
        new RegExp(
          '^authentication failed: token server 127\\.0\\.0\\.1:\\d+ ' +
            'rejected the credentials for 127\\.0\\.0\\.1:\\d+ \\(HTTP 401\\)$',
        ),
      );
      expect(err.message).not.to.include('wrong-t0ken-pass');
    });

    it('fails auth anonymously: the anonymous token grants nothing', async () => {
      const err = await rejection(client(reg, { tls: { ca: reg.ca! } }).resolve('tok/app', 'v1'));
      expect(err.kind).to.equal('auth');
      expect(err.message).to.match(/requires authentication for tok\/app and no credentials were given/);
    });
  });

  describe('token auth anonymous, plain HTTP', () => {
    it('pulls with an anonymous token', async () => {
      const reg = await start({ tokenAuth: true });
      const digest = await pushArtifact(reg, 'pub/app', 'v1', { layers: [{ mediaType: fluxContent, bytes: 'pub' }] });
      expect((await client(reg, { insecure: true }).resolve('pub/app', 'v1')).digest).to.equal(digest);
      expect(reg.tokenRequests.at(-1)).to.deep.include({ account: '', scopes: ['repository:pub/app:pull'] });
    });
  });

  describe('through an HTTP proxy', () => {
    it('tunnels HTTPS with CONNECT and sends plain HTTP in absolute form', async () => {
      const proxy = await startProxyServer();
      try {
        const secure = await start({ tls: true, auth });
        await pushArtifact(secure, 'via/proxy', 'v1', { layers: [{ mediaType: fluxContent, bytes: 'p' }] });
        const viaProxy = { url: new URL(proxy.address) };
        const c = client(secure, { credentials: auth, tls: { ca: secure.ca! }, proxy: viaProxy });
        expect(await c.listTags('via/proxy')).to.deep.equal(['v1']);
        expect(proxy.requests()).to.include(`CONNECT ${secure.host}`);
        const plain = await start({});
        await pushArtifact(plain, 'via/proxy', 'v2', { layers: [{ mediaType: fluxContent, bytes: 'q' }] });
        expect(await client(plain, { insecure: true, proxy: viaProxy }).listTags('via/proxy')).to.deep.equal(['v2']);
        expect(proxy.requests()).to.include(`GET http://${plain.host}/v2/via/proxy/tags/list`);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('a chart pushed by the real helm', () => {
    it('resolves and fetches it', async function () {
      this.timeout(60_000);
      const reg = await start({ tls: true, auth });
      const chartDir = path.join(dir, 'chart', 'demo');
      fs.mkdirSync(path.join(chartDir, 'templates'), { recursive: true });
      fs.writeFileSync(path.join(chartDir, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 0.1.0\n');
      fs.writeFileSync(path.join(chartDir, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\n');
      const tgz = path.join(dir, 'demo-0.1.0.tgz');
      // helm package needs nothing but tar: a chart is a gzipped tar of its directory.
      execFileSync('tar', ['-czf', tgz, '-C', path.dirname(chartDir), 'demo']);
      const pushed = await helmPush(tgz, `${reg.url}/charts`, { ...auth, ca: reg.ca! });
      expect(pushed.ref).to.equal(`${reg.host}/charts/demo:0.1.0`);
      const c = client(reg, { credentials: auth, tls: { ca: reg.ca! } });
      expect(await c.listTags('charts/demo')).to.deep.equal(['0.1.0']);
      const m = await c.manifest('charts/demo', '0.1.0');
      expect(m.digest).to.equal(pushed.digest);
      expect(m.json.config?.mediaType).to.equal('application/vnd.cncf.helm.config.v1+json');
      const layer = m.json.layers![0]!;
      expect(layer.mediaType).to.equal('application/vnd.cncf.helm.chart.content.v1.tar+gzip');
      const dest = path.join(dir, 'pulled.tgz');
      await c.blobToFile('charts/demo', layer.digest, dest);
      expect(fs.readFileSync(dest).equals(fs.readFileSync(tgz))).to.equal(true);
    });
  });

  describe('against a misbehaving server', () => {
    let server: http.Server;
    let origin: string;
    let seen: { method?: string; url: string; authorization?: string; host?: string }[];
    let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;

    before(async () => {
      server = http.createServer((req, res) => {
        seen.push({
          method: req.method,
          url: req.url ?? '',
          authorization: req.headers.authorization,
          host: req.headers.host,
        });
        handler(req, res);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    beforeEach(() => {
      seen = [];
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    const manifestBytes = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: fluxConfig, digest: sha256('{}'), size: 2 },
      layers: [],
    });

    it('resolves by HEAD, and by GET when HEAD does not tell the digest', async () => {
      let tellDigest = true;
      handler = (req, res) => {
        res.writeHead(200, {
          'content-type': MediaType.ociManifest,
          'content-length': String(Buffer.byteLength(manifestBytes)),
          ...(tellDigest ? { 'docker-content-digest': sha256(manifestBytes) } : {}),
        });
        res.end(req.method === 'HEAD' ? undefined : manifestBytes);
      };
      const want = { digest: sha256(manifestBytes), mediaType: MediaType.ociManifest, size: manifestBytes.length };
      expect(await client(origin, { insecure: true }).resolve('x/y', 'v1')).to.deep.equal(want);
      expect(seen.map((s) => s.method)).to.deep.equal(['HEAD']);
      tellDigest = false;
      seen = [];
      expect(await client(origin, { insecure: true }).resolve('x/y', 'v1')).to.deep.equal(want);
      expect(seen.map((s) => s.method)).to.deep.equal(['HEAD', 'GET']);
    });

    it('refuses a repository name that is not one before asking', async () => {
      const err = await rejection(client(origin, { insecure: true }).listTags('x/../../admin'));
      expect(err.kind).to.equal('invalid');
      expect(seen).to.deep.equal([]);
    });

    it('refuses a manifest whose bytes do not match the digest asked for', async () => {
      handler = (_req, res) => res.writeHead(200, { 'content-type': MediaType.ociManifest }).end(manifestBytes);
      const asked = sha256('something else');
      const err = await rejection(client(origin, { insecure: true }).manifest('x/y', asked));
      expect(err.kind).to.equal('invalid');
      expect(err.message).to.include(`failed verification: its content has digest ${sha256(manifestBytes)}`);
      const ok = await client(origin, { insecure: true }).manifest('x/y', 'v1');
      expect(ok.digest).to.equal(sha256(manifestBytes));
    });

    it('refuses a blob whose bytes do not match its digest, and removes the file', async () => {
      handler = (_req, res) => res.writeHead(200).end('tampered');
      const dest = path.join(dir, 'tampered');
      const err = await rejection(client(origin, { insecure: true }).blobToFile('x/y', sha256('original'), dest));
      expect(err.kind).to.equal('invalid');
      expect(err.message).to.include(`its content has digest ${sha256('tampered')}`);
      expect(fs.existsSync(dest)).to.equal(false);
    });

    it('refuses a blob that grows past maxSize without announcing its length', async () => {
      handler = (_req, res) => {
        res.writeHead(200);
        res.write('x'.repeat(1000));
        res.end('x'.repeat(1000));
      };
      const dest = path.join(dir, 'chunked');
      const err = await rejection(
        client(origin, { insecure: true }).blobToFile('x/y', sha256('x'.repeat(2000)), dest, { maxSize: 1500 }),
      );
      expect(err.kind).to.equal('invalid');
      expect(fs.existsSync(dest)).to.equal(false);
    });

    it('follows a blob redirect to storage without carrying the credentials there', async () => {
      const storage = origin.replace('127.0.0.1', 'localhost');
      handler = (req, res) => {
        if (req.url?.startsWith('/v2/x/y/blobs/')) {
          res.writeHead(307, { location: `http://${storage}/storage/blob?X-Signature=secret-sig` }).end();
        } else {
          res.writeHead(200).end('stored');
        }
      };
      const dest = path.join(dir, 'redirected');
      const c = client(origin, { insecure: true, credentials: { registryToken: 'tkn' } });
      await c.blobToFile('x/y', sha256('stored'), dest);
      expect(fs.readFileSync(dest, 'utf8')).to.equal('stored');
      expect(seen.map((s) => s.authorization)).to.deep.equal(['Bearer tkn', undefined]);
      expect(seen[1]!.host).to.equal(storage);
    });

    it('follows absolute and relative next links', async () => {
      handler = (req, res) => {
        const url = new URL(req.url!, 'http://x');
        const last = url.searchParams.get('last');
        const pages: Record<string, [string[], string | undefined]> = {
          '': [['a', 'b'], `<http://${origin}/v2/x/y/tags/list?last=b&n=2>; rel="next"`],
          b: [['c', 'd'], '</v2/x/y/tags/list?last=d&n=2>; rel="next"'],
          d: [['e'], undefined],
        };
        const [tags, link] = pages[last ?? '']!;
        res.writeHead(200, { 'content-type': 'application/json', ...(link ? { link } : {}) });
        res.end(JSON.stringify({ name: 'x/y', tags }));
      };
      expect(await client(origin, { insecure: true, pageSize: 2 }).listTags('x/y')).to.deep.equal([
        'a',
        'b',
        'c',
        'd',
        'e',
      ]);
      expect(seen.map((s) => s.url)).to.deep.equal([
        '/v2/x/y/tags/list?n=2',
        '/v2/x/y/tags/list?last=b&n=2',
        '/v2/x/y/tags/list?last=d&n=2',
      ]);
    });

    it('gives up at the deadline, and on the caller abort with its reason', async () => {
      handler = () => {};
      const err = await rejection(client(origin, { insecure: true, timeoutMs: 200 }).listTags('x/y'));
      expect(err.kind).to.equal('network');
      expect(err.message).to.equal(`request to ${origin} timed out after 200 ms`);
      const abort = new AbortController();
      const reason = new Error('reconcile cancelled');
      setTimeout(() => abort.abort(reason), 50);
      try {
        await client(origin, { insecure: true }).listTags('x/y', { signal: abort.signal });
        expect.fail('expected a rejection');
      } catch (e) {
        expect(e).to.equal(reason);
      }
    });

    it('refuses a manifest that is not one', async () => {
      handler = (_req, res) =>
        res.writeHead(200, { 'content-type': MediaType.ociManifest }).end('{"schemaVersion":2,"layers":"x"}');
      const err = await rejection(client(origin, { insecure: true }).manifest('x/y', 'v1'));
      expect(err.kind).to.equal('invalid');
      expect(err.message).to.match(/is not a valid manifest: layers is not a list/);
    });
  });
});
