// The SSH transport against an in-process ssh2 server that plays git-upload-pack: what command
// runs, which bytes go each way, connection reuse, and failures a real sshd cannot easily stage
// (a command that hangs, one that dies mid-pack). Real OpenSSH: e2e/integration/git-transport.test.ts.
import { expect } from 'chai';
import type { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import ssh2, { type Connection, type ServerChannel } from 'ssh2';
import type { GitHttpResponse } from 'isomorphic-git';
import { openSshTransport } from './transport-ssh.ts';
import { TransportError, type TransportOptions } from './types.ts';

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

  it('refuses requests that are not a fetch', async () => {
    const server = await serve(answerFetch);
    const t = transport(server);
    const err = await transportError(
      t.http.request({ url: `${t.url}/info/refs?service=git-receive-pack`, method: 'GET' }),
    );
    expect(err.kind).to.equal('protocol');
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
