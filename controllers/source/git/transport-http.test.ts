// The HTTP client against small in-process HTTP servers: headers, redirects, limits and the
// mapping of failures. The real git server is exercised in e2e/integration/git-transport.test.ts.
import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GitHttpResponse } from 'isomorphic-git';
import { openHttpTransport } from './transport-http.ts';
import { TransportError, type GitCredentials, type TransportOptions } from './types.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

interface TestServer {
  port: number;
  /** `http://<host>:<port>`; 127.0.0.1 and localhost are different origins to the client. */
  origin(host?: string): string;
  seen: { url: string; authorization?: string; method?: string; body: string }[];
  close(): Promise<void>;
}

const servers: TestServer[] = [];

async function serve(handler: Handler): Promise<TestServer> {
  const seen: TestServer['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization, method: req.method, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const s: TestServer = {
    port,
    origin: (host = '127.0.0.1') => `http://${host}:${port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  servers.push(s);
  return s;
}

const advertisement = (res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement' });
  res.end('001e# service=git-upload-pack\n0000');
};

function transport(url: string, creds: GitCredentials = {}, opts: Partial<TransportOptions> = {}) {
  return openHttpTransport(new URL(url), creds, { timeoutMs: 5000, ...opts });
}

async function bodyText(res: GitHttpResponse): Promise<string> {
  let text = '';
  for await (const chunk of res.body!) text += Buffer.from(chunk).toString();
  return text;
}

async function transportError(p: Promise<unknown>): Promise<TransportError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(TransportError);
    return err as TransportError;
  }
  throw new Error('expected a TransportError');
}

const infoRefs = (base: string) => ({ url: `${base}/info/refs?service=git-upload-pack`, method: 'GET', headers: {} });

describe('HTTP transport', () => {
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('sends basic auth and returns the advertisement', async () => {
    const server = await serve((_req, res) => advertisement(res));
    const t = transport(`${server.origin()}/repo.git/`, { username: 'alice', password: 's3cret' });
    expect(t.url).to.equal(`${server.origin()}/repo.git`);
    const res = await t.http.request(infoRefs(t.url));
    expect(res.statusCode).to.equal(200);
    expect(res.headers?.['content-type']).to.equal('application/x-git-upload-pack-advertisement');
    expect(await bodyText(res)).to.equal('001e# service=git-upload-pack\n0000');
    expect(server.seen[0]!.authorization).to.equal(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    t.close();
  });

  it('sends a bearer token, and no Authorization header without credentials', async () => {
    const server = await serve((_req, res) => advertisement(res));
    const withToken = transport(`${server.origin()}/repo.git`, { bearerToken: 'tok-123' });
    await withToken.http.request(infoRefs(withToken.url));
    const anonymous = transport(`${server.origin()}/repo.git`);
    await anonymous.http.request(infoRefs(anonymous.url));
    expect(server.seen.map((s) => s.authorization)).to.deep.equal(['Bearer tok-123', undefined]);
    withToken.close();
    anonymous.close();
  });

  it('posts the whole request body with a length and streams the answer', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-result' });
      res.end('0008NAK\n');
    });
    const t = transport(`${server.origin()}/repo.git`);
    const res = await t.http.request({
      url: `${t.url}/git-upload-pack`,
      method: 'POST',
      headers: { 'content-type': 'application/x-git-upload-pack-request' },
      body: [
        Buffer.from('0032want '),
        Buffer.from(`${'x'.repeat(40)}\n00000009done\n`),
      ] as unknown as AsyncIterableIterator<Uint8Array>,
    });
    expect(await bodyText(res)).to.equal('0008NAK\n');
    expect(server.seen[0]).to.include({ method: 'POST', body: `0032want ${'x'.repeat(40)}\n00000009done\n` });
    t.close();
  });

  it('keeps credentials on a redirect within the origin and drops them for another host', async () => {
    const target = await serve((_req, res) => advertisement(res));
    const origin = await serve((req, res) => {
      const location = req.url!.startsWith('/old/')
        ? req.url!.replace('/old/', '/moved/')
        : `${target.origin('localhost')}${req.url}`;
      res.writeHead(req.url!.startsWith('/old/') ? 301 : 307, { location });
      res.end();
    });
    const t = transport(`${origin.origin()}/old/repo.git`, { username: 'alice', password: 's3cret' });
    const res = await t.http.request(infoRefs(t.url));
    expect(res.url).to.equal(`${target.origin('localhost')}/moved/repo.git/info/refs?service=git-upload-pack`);
    expect(origin.seen.map((s) => [s.url, Boolean(s.authorization)])).to.deep.equal([
      ['/old/repo.git/info/refs?service=git-upload-pack', true],
      ['/moved/repo.git/info/refs?service=git-upload-pack', true],
    ]);
    expect(target.seen.map((s) => s.authorization)).to.deep.equal([undefined]);
    t.close();
  });

  it('gives up after a few redirects', async () => {
    const server = await serve((req, res) => {
      res.writeHead(302, { location: req.url });
      res.end();
    });
    const t = transport(`${server.origin()}/loop.git`);
    const err = await transportError(t.http.request(infoRefs(t.url)));
    expect(err.kind).to.equal('protocol');
    expect(err.message).to.contain('redirected more than');
    expect(server.seen.length).to.equal(6);
    t.close();
  });

  it('maps answers to error kinds that name the host but never the secret', async () => {
    const status: Record<string, number> = { '/401': 401, '/403': 403, '/404': 404, '/500': 500, '/418': 418 };
    const server = await serve((req, res) => {
      res.writeHead(status[req.url!.split('.git')[0]!]!, { 'www-authenticate': 'Basic realm="x"' });
      res.end('body that is not shown');
    });
    const errors: Record<string, TransportError> = {};
    for (const path of Object.keys(status)) {
      const t = transport(`${server.origin()}${path}.git`, { username: 'alice', password: 'hunter2-secret' });
      errors[path] = await transportError(t.http.request(infoRefs(t.url)));
      t.close();
    }
    expect(Object.values(errors).map((e) => e.kind)).to.deep.equal([
      'auth',
      'auth',
      'not-found',
      'unreachable',
      'protocol',
    ]);
    for (const err of Object.values(errors)) {
      expect(err.message).to.contain(`127.0.0.1:${server.port}`);
      expect(err.message).not.to.contain('hunter2-secret');
      expect(err.message).not.to.contain(Buffer.from('alice:hunter2-secret').toString('base64'));
    }
    expect(errors['/401']!.message).to.contain('rejected the credentials');
    expect(errors['/404']!.message).to.contain('/404.git');
  });

  it('says so when a server wants credentials and none were given', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(401);
      res.end();
    });
    const t = transport(`${server.origin()}/repo.git`);
    const err = await transportError(t.http.request(infoRefs(t.url)));
    expect(err.kind).to.equal('auth');
    expect(err.message).to.contain('no credentials were given');
    t.close();
  });

  it('fails a request that takes longer than the timeout', async () => {
    const server = await serve(() => {});
    const t = transport(`${server.origin()}/slow.git`, {}, { timeoutMs: 200 });
    const started = Date.now();
    const err = await transportError(t.http.request(infoRefs(t.url)));
    expect(err.kind).to.equal('timeout');
    expect(err.message).to.contain(`127.0.0.1:${server.port}`);
    expect(Date.now() - started).to.be.lessThan(3000);
    t.close();
  });

  it('applies the timeout to a body that stops arriving', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-result' });
      res.write('0008NAK\n');
    });
    const t = transport(`${server.origin()}/stall.git`, {}, { timeoutMs: 300 });
    const res = await t.http.request({ url: `${t.url}/git-upload-pack`, method: 'POST', headers: {} });
    const err = await transportError(bodyText(res));
    expect(err.kind).to.equal('timeout');
    t.close();
  });

  it('stops on the abort signal with its reason', async () => {
    const server = await serve(() => {});
    const controller = new AbortController();
    const t = transport(`${server.origin()}/repo.git`, {}, { signal: controller.signal });
    const pending = t.http.request(infoRefs(t.url));
    controller.abort(new Error('reconcile cancelled'));
    const err = await pending.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.equal('reconcile cancelled');
    t.close();
  });

  it('refuses bodies past maxBytes, for advertisements and streamed packs alike', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(64 * 1024, 'a'));
    });
    const t = transport(`${server.origin()}/big.git`, {}, { maxBytes: 1024 });
    const getErr = await transportError(t.http.request(infoRefs(t.url)));
    expect(getErr.kind).to.equal('too-large');
    const res = await t.http.request({ url: `${t.url}/git-upload-pack`, method: 'POST', headers: {} });
    const postErr = await transportError(bodyText(res));
    expect(postErr.kind).to.equal('too-large');
    expect(postErr.message).to.contain('1024 bytes');
    t.close();
  });

  it('reports a refused connection as unreachable', async () => {
    const server = await serve(() => {});
    const port = server.port;
    await server.close();
    const t = transport(`http://127.0.0.1:${port}/repo.git`);
    const err = await transportError(t.http.request(infoRefs(t.url)));
    expect(err.kind).to.equal('unreachable');
    expect(err.message).to.equal(`cannot reach 127.0.0.1:${port}: connection refused`);
    t.close();
  });
});
