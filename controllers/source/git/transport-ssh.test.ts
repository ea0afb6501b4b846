// The SSH transport against an in-process ssh2 server that plays git-upload-pack and
// git-receive-pack: what command runs, which bytes go each way, connection reuse, and failures a
// real sshd cannot easily stage (a command that hangs, one that dies mid-pack). Then pushes with
// isomorphic-git to OpenSSH's sshd running the real git-receive-pack, when sshd is installed.
// Fetches over real OpenSSH: e2e/integration/git-transport.test.ts.
import { expect } from 'chai';
import type { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import ssh2, { type Connection, type ServerChannel } from 'ssh2';
import git, { type GitHttpResponse } from 'isomorphic-git';
import { createRepo, git as gitCli } from '../../../e2e/support/git/repos.ts';
import { makeWritable, sshdPath, startGitSshServer, type GitSshServer } from '../../../e2e/support/git/ssh-server.ts';
import { openSshTransport } from './transport-ssh.ts';
import { TransportError, type Transport, type TransportOptions } from './types.ts';

const { utils } = ssh2;
const hostKey = utils.generateKeyPairSync('ed25519');
const clientKey = utils.generateKeyPairSync('ed25519');
const clientPublic = utils.parseKey(clientKey.public) as ssh2.ParsedKey;

const sha = 'a'.repeat(40);
const advertisement = [
  pkt(`${sha} HEAD\0shallow side-band-64k symref=HEAD:refs/heads/main\n`),
  pkt(`${sha} refs/heads/main\n`),
  '0000',
].join('');

function pkt(s: string): string {
  return (Buffer.byteLength(s) + 4).toString(16).padStart(4, '0') + s;
}

/** What the fake git-upload-pack does once its advertisement is out. */
type Behaviour = (channel: ServerChannel, stdin: () => string) => void;

interface FakeServer {
  port: number;
  commands: string[];
  connections: Connection[];
  close(): Promise<void>;
}

async function fakeGitServer(behaviour: Behaviour): Promise<FakeServer> {
  const commands: string[] = [];
  const connections: Connection[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (conn) => {
    connections.push(conn);
    // Without it every turn waits for a delayed ACK (ssh2's Connection has it; its types do not).
    (conn as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || !ctx.key.data.equals(clientPublic.getPublicSSH()))
        return ctx.reject(['publickey']);
      if (ctx.signature && clientPublic.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true)
        return ctx.reject(['publickey']);
      ctx.accept();
    });
    conn.on('session', (acceptSession) => {
      acceptSession().on('exec', (accept, _reject, info) => {
        commands.push(info.command);
        const channel = accept();
        let input = '';
        channel.on('data', (d: Buffer) => {
          input += d.toString('latin1');
        });
        if (info.command.includes('missing')) {
          channel.stderr.write("fatal: '/srv/missing.git' does not appear to be a git repository\n");
          channel.exit(128);
          channel.end();
          return;
        }
        channel.write(advertisement);
        behaviour(channel, () => input);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    commands,
    connections,
    close: async () => {
      for (const c of connections) c.end();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Answers a request that ends with `done` with NAK and a one-packet side-band "pack". */
const answerFetch: Behaviour = (channel, stdin) => {
  channel.on('data', () => {
    if (stdin() === '0000') {
      channel.exit(0);
      channel.end();
    } else if (stdin().endsWith('0009done\n')) {
      channel.write(`${pkt('NAK\n') + pkt('\x01PACK-bytes')}0000`);
      channel.exit(0);
      channel.end();
    }
  });
};

/**
 * Plays git-receive-pack: exits on a bare flush-pkt (no commands); otherwise reads the request to
 * EOF, as the real one reads the whole pack before it reports, and answers with a side-band
 * report-status. `pushed` gets each request.
 */
function answerPush(pushed: string[]): Behaviour {
  return (channel, stdin) => {
    channel.on('data', () => {
      if (stdin() !== '0000') return;
      channel.exit(0);
      channel.end();
    });
    channel.on('end', () => {
      if (stdin() === '0000') return;
      pushed.push(stdin());
      channel.write(`${pkt(`\x01${pkt('unpack ok\n')}${pkt('ok refs/heads/main\n')}0000`)}0000`);
      channel.exit(0);
      channel.end();
    });
  };
}

const servers: FakeServer[] = [];
async function serve(behaviour: Behaviour): Promise<FakeServer> {
  const s = await fakeGitServer(behaviour);
  servers.push(s);
  return s;
}

function transport(server: FakeServer, path = '/srv/app.git', opts: Partial<TransportOptions> = {}) {
  const knownHosts = `[127.0.0.1]:${server.port} ${hostKey.public}`;
  return openSshTransport(
    new URL(`ssh://git@127.0.0.1:${server.port}${path}`),
    { identity: clientKey.private, knownHosts },
    { timeoutMs: 5000, ...opts },
  );
}

const wants = `${pkt(`want ${sha} shallow side-band-64k\n`)}${pkt('deepen 1\n')}0000${pkt('done\n')}`;

function infoRefs(url: string) {
  return { url: `${url}/info/refs?service=git-upload-pack`, method: 'GET' };
}

function uploadPack(url: string) {
  return {
    url: `${url}/git-upload-pack`,
    method: 'POST',
    body: [Buffer.from(wants)] as unknown as AsyncIterableIterator<Uint8Array>,
  };
}

async function text(res: GitHttpResponse): Promise<string> {
  let s = '';
  for await (const chunk of res.body!) s += Buffer.from(chunk).toString('latin1');
  return s;
}

async function transportError(p: Promise<unknown>): Promise<TransportError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).to.be.instanceOf(TransportError);
  return err as TransportError;
}

describe('SSH transport', () => {
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('turns the advertisement of git-upload-pack into a smart-HTTP one', async () => {
    const server = await serve(answerFetch);
    const t = transport(server);
    const res = await t.http.request(infoRefs(t.url));
    expect(res.statusCode).to.equal(200);
    expect(res.headers?.['content-type']).to.equal('application/x-git-upload-pack-advertisement');
    expect(await text(res)).to.equal(`${pkt('# service=git-upload-pack\n')}0000${advertisement}`);
    expect(server.commands).to.deep.equal(["git-upload-pack '/srv/app.git'"]);
    t.close();
  });

  it('sends the request after the advertisement and streams the answer, over one connection', async () => {
    const server = await serve(answerFetch);
    const t = transport(server);
    await text(await t.http.request(infoRefs(t.url)));
    const res = await t.http.request(uploadPack(t.url));
    expect(res.headers?.['content-type']).to.equal('application/x-git-upload-pack-result');
    expect(await text(res)).to.equal(`${pkt('NAK\n') + pkt('\x01PACK-bytes')}0000`);
    expect(server.commands.length).to.equal(2);
    expect(server.connections.length).to.equal(1);
    t.close();
  });

  it('quotes the repository path for the remote shell and keeps ~user paths relative', async () => {
    const server = await serve(answerFetch);
    for (const path of ["/srv/it's%20here.git", '/~alice/app.git']) {
      const t = transport(server, path);
      await text(await t.http.request(infoRefs(t.url)));
      t.close();
    }
    expect(server.commands).to.deep.equal([
      "git-upload-pack '/srv/it'\\''s here.git'",
      "git-upload-pack '~alice/app.git'",
    ]);
  });

  it('reports a missing repository as not-found with what the server said', async () => {
    const server = await serve(answerFetch);
    const t = transport(server, '/srv/missing.git');
    const err = await transportError(t.http.request(infoRefs(t.url)));
    expect(err.kind).to.equal('not-found');
    expect(err.message).to.contain('does not appear to be a git repository');
    t.close();
  });

  it('times out a command that stops answering', async () => {
    const server = await serve(() => {});
    const t = transport(server, '/srv/app.git', { timeoutMs: 500 });
    // Connected first, so the deadline runs out while the pack is awaited, not in the handshake.
    await text(await t.http.request(infoRefs(t.url)));
    const res = await t.http.request(uploadPack(t.url));
    const err = await transportError(text(res));
    expect(err.kind).to.equal('timeout');
    expect(err.message).to.contain(`127.0.0.1:${server.port}`);
    t.close();
  });

  it('fails a pack stream when the command exits with an error', async () => {
    const server = await serve((channel, stdin) => {
      channel.on('data', () => {
        if (!stdin().endsWith('0009done\n')) return;
        channel.write(pkt('NAK\n'));
        channel.stderr.write('fatal: pack-objects died\n');
        channel.exit(128);
        channel.end();
      });
    });
    const t = transport(server);
    const err = await transportError(t.http.request(uploadPack(t.url)).then(text));
    expect(err.kind).to.equal('protocol');
    expect(err.message).to.contain('fatal: pack-objects died');
    t.close();
  });

  it('stops on the abort signal', async () => {
    const server = await serve(() => {});
    const controller = new AbortController();
    const t = transport(server, '/srv/app.git', { signal: controller.signal });
    const res = await t.http.request(uploadPack(t.url));
    const pending = text(res).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    controller.abort(new Error('reconcile cancelled'));
    expect((await pending)?.message).to.equal('reconcile cancelled');
    t.close();
  });

  it('maps a push onto git-receive-pack: its advertisement, then commands and pack in, the report out', async () => {
    const pushed: string[] = [];
    const server = await serve(answerPush(pushed));
    const t = transport(server);
    const adv = await t.http.request({ url: `${t.url}/info/refs?service=git-receive-pack`, method: 'GET' });
    expect(adv.headers?.['content-type']).to.equal('application/x-git-receive-pack-advertisement');
    expect(await text(adv)).to.equal(`${pkt('# service=git-receive-pack\n')}0000${advertisement}`);
    const push = `${pkt(`${sha} ${'b'.repeat(40)} refs/heads/main\0report-status side-band-64k\n`)}0000PACK-bytes`;
    const res = await t.http.request({
      url: `${t.url}/git-receive-pack`,
      method: 'POST',
      body: [Buffer.from(push, 'latin1')] as unknown as AsyncIterableIterator<Uint8Array>,
    });
    expect(res.headers?.['content-type']).to.equal('application/x-git-receive-pack-result');
    expect(await text(res)).to.equal(`${pkt(`\x01${pkt('unpack ok\n')}${pkt('ok refs/heads/main\n')}0000`)}0000`);
    expect(pushed).to.deep.equal([push]);
    expect(server.commands).to.deep.equal(["git-receive-pack '/srv/app.git'", "git-receive-pack '/srv/app.git'"]);
    expect(server.connections.length).to.equal(1);
    t.close();
  });

  it('refuses requests for other services, running nothing', async () => {
    const server = await serve(answerFetch);
    const t = transport(server);
    for (const req of [
      { url: `${t.url}/info/refs?service=git-upload-archive`, method: 'GET' },
      { url: `${t.url}/git-upload-archive`, method: 'POST' },
      { url: `${t.url}/info/refs`, method: 'GET' },
    ]) {
      const err = await transportError(t.http.request(req));
      expect(err.kind).to.equal('protocol');
      expect(err.message).to.contain('only serves git-upload-pack (fetch) and git-receive-pack (push)');
      expect(err.message).to.contain(`it cannot ${req.method} `);
    }
    expect(server.commands).to.deep.equal([]);
    t.close();
  });

  it('ends the connection on close()', async () => {
    const server = await serve(answerFetch);
    const t = transport(server);
    await text(await t.http.request(infoRefs(t.url)));
    const ended = new Promise((resolve) => (server.connections[0] as EventEmitter).once('close', resolve));
    t.close();
    await ended;
    const err = await transportError(t.http.request(infoRefs(t.url)));
    expect(err.message).to.contain('closed');
  });
});

describe('SSH transport pushing to OpenSSH', function () {
  this.timeout(60_000);
  const author = { name: 'Tide Test', email: 'test@tide.invalid', timestamp: 1_704_067_200, timezoneOffset: 0 };
  let scratch: string;
  let root: string;
  let server: GitSshServer | undefined;
  const opened: Transport[] = [];

  before(async function () {
    if (!fs.existsSync(sshdPath)) return this.skip();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-ssh-push-'));
    root = path.join(scratch, 'repos');
    for (const name of ['app', 'guarded', 'hooked']) {
      await createRepo(root, name, { files: { 'README.md': `# ${name}\n` } });
    }
    await gitCli(['--git-dir', path.join(root, 'guarded.git'), 'config', 'receive.denyNonFastForwards', 'true']);
    fs.writeFileSync(
      path.join(root, 'hooked.git', 'hooks', 'pre-receive'),
      '#!/bin/sh\necho "pushes are closed today" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    try {
      server = await startGitSshServer({ root, writable: true });
    } catch (err) {
      // Not root, and the git user was never created: nothing to push to.
      if (/needs a system user/.test((err as Error).message)) return this.skip();
      throw err;
    }
  });

  after(async () => {
    for (const t of opened.splice(0)) t.close();
    await server?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  function open(name: string): Transport {
    const s = server!;
    const t = openSshTransport(
      new URL(s.url(name)),
      { identity: s.clientKey.privateKey, knownHosts: s.knownHosts },
      { timeoutMs: 20_000 },
    );
    opened.push(t);
    return t;
  }

  /** The commit `refs/heads/<branch>` of `<root>/<name>.git` points at, as git itself reads it. */
  function tip(name: string, branch = 'main'): Promise<string> {
    return gitCli(['--git-dir', path.join(root, `${name}.git`), 'rev-parse', `refs/heads/${branch}`]);
  }

  /** A fresh local repository (isomorphic-git) with one commit on main, unrelated to any remote. */
  async function localRepo(file: string, content: string): Promise<{ dir: string; oid: string }> {
    const dir = fs.mkdtempSync(path.join(scratch, 'local-'));
    await git.init({ fs, dir, defaultBranch: 'main' });
    fs.writeFileSync(path.join(dir, file), content);
    await git.add({ fs, dir, filepath: file });
    return { dir, oid: await git.commit({ fs, dir, message: `add ${file}`, author }) };
  }

  async function pushError(p: Promise<unknown>): Promise<Error & { code?: string }> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err, 'expected the push to fail').to.be.instanceOf(Error);
    return err!;
  }

  it('pushes a commit onto a branch of a clone: git sees the ref move and the new objects', async () => {
    const t = open('app');
    const dir = fs.mkdtempSync(path.join(scratch, 'clone-'));
    await git.clone({ fs, http: t.http, dir, url: t.url, ref: 'main', singleBranch: true });
    fs.writeFileSync(path.join(dir, 'deploy.yaml'), 'kind: ConfigMap\n');
    await git.add({ fs, dir, filepath: 'deploy.yaml' });
    const oid = await git.commit({ fs, dir, message: 'add deploy.yaml', author });
    const res = await git.push({ fs, http: t.http, dir, url: t.url, ref: 'main' });
    expect(res.ok).to.equal(true);
    expect(res.refs['refs/heads/main']?.ok).to.equal(true);
    expect(await tip('app')).to.equal(oid);
    expect(await gitCli(['--git-dir', path.join(root, 'app.git'), 'show', 'main:deploy.yaml'])).to.equal(
      'kind: ConfigMap',
    );
    // And a second branch over the same transport.
    await git.push({ fs, http: t.http, dir, url: t.url, ref: 'main', remoteRef: 'release' });
    expect(await tip('app', 'release')).to.equal(oid);
  });

  it('pushes into an empty repository made writable after the server started', async () => {
    const bare = path.join(root, 'empty.git');
    await gitCli(['init', '--quiet', '--bare', '--initial-branch=main', bare]);
    await makeWritable(bare);
    const { dir, oid } = await localRepo('README.md', '# empty no more\n');
    const t = open('empty');
    await git.push({ fs, http: t.http, dir, url: t.url, ref: 'main' });
    expect(await tip('empty')).to.equal(oid);
  });

  it('fails a forced non-fast-forward push the server denies, naming the reason, and leaves the ref', async () => {
    const before = await tip('guarded');
    const { dir } = await localRepo('other.txt', 'unrelated history\n');
    const t = open('guarded');
    const err = await pushError(git.push({ fs, http: t.http, dir, url: t.url, ref: 'main', force: true }));
    expect(err.code).to.equal('GitPushError');
    expect(err.message).to.contain('refs/heads/main: non-fast-forward');
    expect(await tip('guarded')).to.equal(before);
  });

  it('fails a push that a pre-receive hook declines, and leaves the ref', async () => {
    const t = open('hooked');
    const dir = fs.mkdtempSync(path.join(scratch, 'clone-'));
    await git.clone({ fs, http: t.http, dir, url: t.url, ref: 'main', singleBranch: true });
    fs.writeFileSync(path.join(dir, 'late.txt'), 'too late\n');
    await git.add({ fs, dir, filepath: 'late.txt' });
    await git.commit({ fs, dir, message: 'add late.txt', author });
    const before = await tip('hooked');
    const messages: string[] = [];
    const err = await pushError(
      git.push({ fs, http: t.http, dir, url: t.url, ref: 'main', onMessage: (m) => void messages.push(m) }),
    );
    expect(err.code).to.equal('GitPushError');
    expect(err.message).to.contain('pre-receive hook declined');
    expect(messages.join('')).to.contain('pushes are closed today');
    expect(await tip('hooked')).to.equal(before);
  });
});
