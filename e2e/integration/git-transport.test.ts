// The git transports against real servers: `git http-backend` over HTTP(S) with basic and bearer
// auth, and OpenSSH's sshd with git-shell, driven by isomorphic-git as the GitRepository
// reconciler drives it: list the remote refs, then a shallow single-branch fetch.
import { expect } from 'chai';
import { createHmac, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import git from 'isomorphic-git';
import ssh2 from 'ssh2';
import { fingerprint } from '../../controllers/source/git/known-hosts.ts';
import type { ProxyConfig } from '../../controllers/source/git/proxy.ts';
import { openTransport } from '../../controllers/source/git/transport.ts';
import {
  TransportError,
  type GitCredentials,
  type Transport,
  type TransportErrorKind,
} from '../../controllers/source/git/types.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { branch, commit, createRepo, tag } from '../support/git/repos.ts';
import { startGitSshServer, type GitSshServer } from '../support/git/ssh-server.ts';
import { freePort } from '../support/net.ts';
import { startProxyServer, type ProxyServer } from '../support/proxy.ts';

interface Fixture {
  first: string;
  main: string;
  dev: string;
  annotatedTag: string;
  lightweightTag: string;
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-git-transport-'));
const root = path.join(scratch, 'repos');
const opened: Transport[] = [];

function open(url: string, creds: GitCredentials, timeoutMs = 20_000, maxBytes?: number): Transport {
  const t = openTransport(url, creds, { timeoutMs, maxBytes });
  opened.push(t);
  return t;
}

async function refsOf(t: Transport): Promise<Record<string, string>> {
  const refs = await git.listServerRefs({ http: t.http, url: t.url, peelTags: true });
  return Object.fromEntries(refs.map((r) => [r.ref, r.peeled ?? r.oid]));
}

/** A depth-1 fetch of one ref into a fresh bare gitdir, as the reconciler does it. */
async function fetchShallow(t: Transport, ref: string): Promise<{ gitdir: string; fetchHead: string }> {
  const gitdir = fs.mkdtempSync(path.join(scratch, 'fetch-'));
  await git.init({ fs, gitdir, bare: true });
  // git.fetch needs a fetch refspec, which only a configured remote provides.
  await git.addRemote({ fs, gitdir, remote: 'origin', url: t.url });
  const res = await git.fetch({
    fs,
    http: t.http,
    gitdir,
    remote: 'origin',
    ref,
    singleBranch: true,
    depth: 1,
    tags: false,
  });
  return { gitdir, fetchHead: res.fetchHead! };
}

async function expectTransportError(p: Promise<unknown>, kind: TransportErrorKind): Promise<TransportError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected the operation to fail').to.be.instanceOf(TransportError);
  const err = caught as TransportError;
  expect(err.kind, err.message).to.equal(kind);
  return err;
}

/** A listing through a transport that `make` opens, where opening may already fail. */
function listRefsVia(make: () => Transport): Promise<Record<string, string>> {
  return Promise.resolve().then(() => refsOf(make()));
}

/** openTransport may refuse at once (an unreadable key) or the first request fails; either counts. */
function listRefs(url: string, creds: GitCredentials): Promise<Record<string, string>> {
  return Promise.resolve().then(() => refsOf(open(url, creds)));
}

describe('git transports', function () {
  this.timeout(60_000);
  let repo: Fixture;
  let bigCommit: string;

  before(async () => {
    const created = await createRepo(root, 'app', {
      files: { 'README.md': '# app\n', 'deploy/app.yaml': 'kind: ConfigMap\n' },
    });
    const main = await commit(created.path, {
      branch: 'main',
      files: { 'deploy/app.yaml': 'kind: ConfigMap\nversion: 2\n' },
      message: 'version 2',
    });
    await branch(created.path, 'dev', created.commit);
    const dev = await commit(created.path, { branch: 'dev', files: { 'DEV.md': 'dev\n' }, message: 'dev work' });
    const annotatedTag = await tag(created.path, 'v1.0.0', { target: created.commit, message: 'release 1.0.0' });
    const lightweightTag = await tag(created.path, 'v1.1.0', { target: main });
    repo = { first: created.commit, main, dev, annotatedTag, lightweightTag };
    // base64 of random bytes hardly compresses: the pack stays well above the 64 KiB limit below.
    bigCommit = (await createRepo(root, 'big', { files: { 'blob.txt': randomBytes(256 * 1024).toString('base64') } }))
      .commit;
  });

  after(() => {
    for (const t of opened.splice(0)) t.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  function expectAppRefs(refs: Record<string, string>): void {
    expect(refs).to.include({
      HEAD: repo.main,
      'refs/heads/main': repo.main,
      'refs/heads/dev': repo.dev,
      'refs/tags/v1.0.0': repo.first,
      'refs/tags/v1.1.0': repo.main,
    });
  }

  async function expectShallowMain(t: Transport): Promise<void> {
    const { gitdir, fetchHead } = await fetchShallow(t, 'main');
    expect(fetchHead).to.equal(repo.main);
    const { commit: head } = await git.readCommit({ fs, gitdir, oid: fetchHead });
    expect(head.message).to.equal('version 2\n');
    // depth 1: the tip is a shallow boundary and its parent was not transferred.
    expect(fs.readFileSync(path.join(gitdir, 'shallow'), 'utf8').trim()).to.equal(repo.main);
    await git.readCommit({ fs, gitdir, oid: repo.first }).then(
      () => expect.fail('the parent commit should not have been fetched'),
      (err: { code?: string }) => expect(err.code).to.equal('NotFoundError'),
    );
  }

  describe('HTTP with basic auth', () => {
    let server: GitHttpServer;
    before(async () => {
      server = await startGitHttpServer({ root, auth: { username: 'flux', password: 'open-sesame-42' } });
    });
    after(() => server?.close());

    it('lists refs and fetches a branch shallowly with the right password', async () => {
      const t = open(server.url('app'), { username: 'flux', password: 'open-sesame-42' });
      expectAppRefs(await refsOf(t));
      await expectShallowMain(t);
    });

    it('fails with kind auth for a wrong password, without repeating it', async () => {
      const err = await expectTransportError(
        listRefs(server.url('app'), { username: 'flux', password: 'wrong-guess-17' }),
        'auth',
      );
      expect(err.message).to.contain(`127.0.0.1:${new URL(server.baseUrl).port}`);
      expect(err.message).not.to.contain('wrong-guess-17');
      expect(err.message).not.to.contain(Buffer.from('flux:wrong-guess-17').toString('base64'));
    });

    it('fails with kind auth without credentials', async () => {
      await expectTransportError(listRefs(server.url('app'), {}), 'auth');
    });

    it('fails with kind not-found for a repository that does not exist', async () => {
      await expectTransportError(
        listRefs(server.url('missing'), { username: 'flux', password: 'open-sesame-42' }),
        'not-found',
      );
    });

    it('stops a fetch whose pack passes maxBytes', async () => {
      const t = open(server.url('big'), { username: 'flux', password: 'open-sesame-42' }, 20_000, 64 * 1024);
      expect((await refsOf(t))['refs/heads/main']).to.equal(bigCommit);
      await expectTransportError(fetchShallow(t, 'main'), 'too-large');
    });
  });

  describe('HTTP with a bearer token', () => {
    let server: GitHttpServer;
    before(async () => {
      server = await startGitHttpServer({ root, auth: { bearerToken: 'tkn-7f3a9c' } });
    });
    after(() => server?.close());

    it('lists refs and fetches with the right token', async () => {
      const t = open(server.url('app'), { bearerToken: 'tkn-7f3a9c' });
      expectAppRefs(await refsOf(t));
      await expectShallowMain(t);
      expect(server.requests.map((r) => [r.method, r.authorization, r.status])).to.deep.include.members([
        ['GET', 'Bearer tkn-7f3a9c', 200],
        ['POST', 'Bearer tkn-7f3a9c', 200],
      ]);
    });

    it('fails with kind auth for a wrong token, without repeating it', async () => {
      const err = await expectTransportError(listRefs(server.url('app'), { bearerToken: 'tkn-guessed' }), 'auth');
      expect(err.message).not.to.contain('tkn-guessed');
    });
  });

  describe('HTTPS with a private CA', () => {
    let server: GitHttpServer;
    before(async () => {
      server = await startGitHttpServer({ root, tls: true, auth: { username: 'flux', password: 'open-sesame-42' } });
    });
    after(() => server?.close());

    it('lists refs and fetches when the CA is given', async () => {
      const t = open(server.url('app'), { username: 'flux', password: 'open-sesame-42', caPem: server.caPem });
      expectAppRefs(await refsOf(t));
      await expectShallowMain(t);
    });

    it('fails with a message naming the untrusted certificate when the CA is not given', async () => {
      const err = await expectTransportError(
        listRefs(server.url('app'), { username: 'flux', password: 'open-sesame-42' }),
        'unreachable',
      );
      expect(err.message).to.match(/TLS certificate of 127\.0\.0\.1:\d+ is not trusted/);
      expect(err.message).to.contain('ca.crt');
      expect(err.message).not.to.contain('open-sesame-42');
    });

    it('fails when the given CA did not sign the certificate', async () => {
      const other = await startGitHttpServer({ root, tls: true });
      try {
        const err = await expectTransportError(
          listRefs(server.url('app'), { username: 'flux', password: 'open-sesame-42', caPem: other.caPem }),
          'unreachable',
        );
        expect(err.message).to.contain('did not sign it');
      } finally {
        await other.close();
      }
    });
  });

  describe('SSH', () => {
    let server: GitSshServer;
    let creds: GitCredentials;
    before(async () => {
      server = await startGitSshServer({ root });
      creds = { identity: server.clientKey.privateKey, knownHosts: server.knownHosts };
    });
    after(() => server?.close());

    it('lists refs with the client key', async () => {
      expectAppRefs(await refsOf(open(server.url('app'), creds)));
    });

    it('fetches branches shallowly (depth 1)', async () => {
      const t = open(server.url('app'), creds);
      await expectShallowMain(t);
      const { fetchHead } = await fetchShallow(t, 'dev');
      expect(fetchHead).to.equal(repo.dev);
    });

    it('fetches annotated and lightweight tags', async () => {
      const t = open(server.url('app'), creds);
      const annotated = await fetchShallow(t, 'v1.0.0');
      expect(annotated.fetchHead).to.equal(repo.annotatedTag);
      const { tag: tagObject } = await git.readTag({ fs, gitdir: annotated.gitdir, oid: annotated.fetchHead });
      expect(tagObject.object).to.equal(repo.first);
      expect((await git.readCommit({ fs, gitdir: annotated.gitdir, oid: repo.first })).commit.message).to.equal(
        'initial commit\n',
      );
      const lightweight = await fetchShallow(t, 'v1.1.0');
      expect(lightweight.fetchHead).to.equal(repo.main);
    });

    it('checks the host key it can verify when known_hosts lists only one of the server keys', async () => {
      const ecdsaOnly = server.hostKeys.find((k) => k.type.startsWith('ecdsa-'))!.knownHostsLine;
      expectAppRefs(await refsOf(open(server.url('app'), { ...creds, knownHosts: `${ecdsaOnly}\n` })));
    });

    it('accepts the host through a hashed known_hosts line', async () => {
      const line = server.hostKeys[0]!.knownHostsLine;
      const [name, ...key] = line.split(' ');
      const salt = Buffer.from('0123456789abcdefghij');
      const hash = createHmac('sha1', salt).update(name!).digest('base64');
      const hashed = `|1|${salt.toString('base64')}|${hash} ${key.join(' ')}\n`;
      expectAppRefs(await refsOf(open(server.url('app'), { ...creds, knownHosts: hashed })));
    });

    it('refuses a host key that does not match known_hosts, naming its fingerprint', async () => {
      const ed25519 = server.hostKeys.find((k) => k.type === 'ssh-ed25519')!;
      const otherKey = ssh2.utils.generateKeyPairSync('ed25519').public;
      const knownHosts = `[127.0.0.1]:${server.port} ${otherKey}\n`;
      const err = await expectTransportError(listRefs(server.url('app'), { ...creds, knownHosts }), 'hostkey');
      const offered = fingerprint(Buffer.from(ed25519.knownHostsLine.split(' ')[2]!, 'base64'));
      expect(err.message).to.contain(`127.0.0.1:${server.port}`);
      expect(err.message).to.contain('does not match');
      expect(err.message).to.contain(offered);
    });

    it('refuses a host that known_hosts does not list', async () => {
      const knownHosts = server.knownHosts.replaceAll(`[127.0.0.1]:${server.port}`, '[127.0.0.1]:1');
      const err = await expectTransportError(listRefs(server.url('app'), { ...creds, knownHosts }), 'hostkey');
      expect(err.message).to.contain('not in known_hosts');
      expect(err.message).to.match(/SHA256:[A-Za-z0-9+/]{43}/);
    });

    it('refuses to connect without known_hosts', async () => {
      const err = await expectTransportError(listRefs(server.url('app'), { identity: creds.identity }), 'hostkey');
      expect(err.message).to.contain('no known_hosts');
    });

    it('fails with kind auth for a key the server does not authorize, or none', async () => {
      const stranger = ssh2.utils.generateKeyPairSync('ed25519').private;
      const err = await expectTransportError(listRefs(server.url('app'), { ...creds, identity: stranger }), 'auth');
      expect(err.message).to.contain('rejected the SSH identity');
      await expectTransportError(listRefs(server.url('app'), { knownHosts: creds.knownHosts }), 'auth');
    });

    it('uses an encrypted key with the right passphrase and refuses a wrong one', async () => {
      const { privateKey, passphrase } = server.encryptedClientKey;
      expectAppRefs(
        await refsOf(open(server.url('app'), { ...creds, identity: privateKey, identityPassphrase: passphrase })),
      );
      const err = await expectTransportError(
        listRefs(server.url('app'), { ...creds, identity: privateKey, identityPassphrase: 'not it' }),
        'auth',
      );
      expect(err.message).to.contain('passphrase');
      expect(err.message).not.to.contain('not it');
    });

    it('fails with kind not-found for a repository that does not exist', async () => {
      const err = await expectTransportError(listRefs(server.url('missing'), creds), 'not-found');
      expect(err.message).to.contain('missing.git');
    });

    it('stops a fetch whose pack passes maxBytes', async () => {
      const t = open(server.url('big'), creds, 20_000, 64 * 1024);
      await expectTransportError(fetchShallow(t, 'main'), 'too-large');
    });

    it('times out on a server that never completes the handshake', async () => {
      const silent = net.createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const { port } = silent.address() as net.AddressInfo;
      try {
        const knownHosts = `[127.0.0.1]:${port} ${ssh2.utils.generateKeyPairSync('ed25519').public}`;
        const t = open(`ssh://git@127.0.0.1:${port}/repo.git`, { ...creds, knownHosts }, 500);
        const err = await expectTransportError(refsOf(t), 'timeout');
        expect(err.message).to.contain(`127.0.0.1:${port}`);
      } finally {
        silent.close();
      }
    });
  });

  describe('through an HTTP proxy (tinyproxy with basic auth)', () => {
    const proxyAuth = { username: 'proxy-user', password: 'pr0xy-pa55' };
    let proxy: ProxyServer;
    let plain: GitHttpServer;
    let tls: GitHttpServer;
    let sshd: GitSshServer;
    before(async () => {
      [proxy, plain, tls, sshd] = await Promise.all([
        startProxyServer({ auth: proxyAuth }),
        startGitHttpServer({ root, auth: { username: 'flux', password: 'open-sesame-42' } }),
        startGitHttpServer({ root, tls: true }),
        startGitSshServer({ root }),
      ]);
    });
    after(() => Promise.all([proxy, plain, tls, sshd].map((s) => s?.close())));

    const proxied = (url: string, creds: GitCredentials, config: Partial<ProxyConfig> = {}): Transport => {
      const t = openTransport(url, creds, {
        timeoutMs: 20_000,
        proxy: { url: new URL(proxy.address), ...proxyAuth, ...config },
      });
      opened.push(t);
      return t;
    };
    const hostOf = (url: string) => new URL(url).host;

    it('fetches over plain HTTP with absolute-form requests through the proxy', async () => {
      const t = proxied(plain.url('app'), { username: 'flux', password: 'open-sesame-42' });
      expectAppRefs(await refsOf(t));
      await expectShallowMain(t);
      const seen = proxy.requests().filter((r) => r.includes(hostOf(plain.baseUrl)));
      expect(seen).to.include(`GET http://${hostOf(plain.baseUrl)}/app.git/info/refs?service=git-upload-pack`);
      expect(seen).to.include(`POST http://${hostOf(plain.baseUrl)}/app.git/git-upload-pack`);
    });

    it('tunnels HTTPS with CONNECT, checking the server certificate end to end', async () => {
      expectAppRefs(await refsOf(proxied(tls.url('app'), { caPem: tls.caPem! })));
      expect(proxy.requests()).to.include(`CONNECT ${hostOf(tls.baseUrl)}`);
      await expectTransportError(
        listRefsVia(() => proxied(tls.url('app'), {})),
        'unreachable',
      );
    });

    it('tunnels SSH with CONNECT, as go-git does', async () => {
      const t = proxied(sshd.url('app'), { identity: sshd.clientKey.privateKey, knownHosts: sshd.knownHosts });
      expectAppRefs(await refsOf(t));
      await expectShallowMain(t);
      expect(proxy.requests()).to.include(`CONNECT 127.0.0.1:${sshd.port}`);
    });

    it('fails with kind auth for wrong or missing proxy credentials, without repeating them', async () => {
      for (const url of [tls.url('app'), sshd.url('app')]) {
        const creds = { caPem: tls.caPem!, identity: sshd.clientKey.privateKey, knownHosts: sshd.knownHosts };
        const wrong = await expectTransportError(
          listRefsVia(() => proxied(url, creds, { password: 'wr0ng-pa55' })),
          'auth',
        );
        expect(wrong.message).to.contain(`proxy ${hostOf(proxy.address)} rejected the proxy credentials`);
        expect(wrong.message).not.to.contain('wr0ng-pa55');
        const missing = await expectTransportError(
          listRefsVia(() => proxied(url, creds, { username: undefined, password: undefined })),
          'auth',
        );
        expect(missing.message).to.contain('requires authentication');
      }
    });

    it('reports a proxy that does not listen as unreachable, naming the proxy', async () => {
      const port = await freePort();
      for (const url of [plain.url('app'), tls.url('app')]) {
        const t = openTransport(url, {}, { timeoutMs: 5000, proxy: { url: new URL(`http://127.0.0.1:${port}`) } });
        opened.push(t);
        const err = await expectTransportError(refsOf(t), 'unreachable');
        expect(err.message).to.contain(`proxy 127.0.0.1:${port}`).and.contain('connection refused');
      }
    });
  });

  describe('failures before any server answers', () => {
    it('reports a closed port as unreachable, over HTTP and SSH', async () => {
      const port = await freePort();
      const http = await expectTransportError(listRefs(`http://127.0.0.1:${port}/app.git`, {}), 'unreachable');
      expect(http.message).to.contain('connection refused');
      const ssh = await expectTransportError(
        listRefs(`ssh://git@127.0.0.1:${port}/app.git`, {
          knownHosts: `[127.0.0.1]:${port} ${ssh2.utils.generateKeyPairSync('ed25519').public}`,
        }),
        'unreachable',
      );
      expect(ssh.message).to.contain('connection refused');
    });

    it('refuses unsupported schemes with kind protocol', async () => {
      await expectTransportError(listRefs('git://127.0.0.1/app.git', {}), 'protocol');
      await expectTransportError(listRefs('ftp://127.0.0.1/app.git', {}), 'protocol');
    });
  });
});
