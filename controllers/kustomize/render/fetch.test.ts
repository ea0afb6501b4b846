import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { closeServer } from '../../runtime/http.ts';
import { ArtifactError, ArtifactNotFoundError } from './errors.ts';
import { ExtractError, extractTarball } from '../../runtime/extract.ts';
import { fetchArtifact } from './fetch.ts';

type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
interface TarEntry {
  name: string;
  type?: EntryType;
  body?: string;
  linkname?: string;
  mode?: number;
}

/** A .tar.gz of `entries`, in order, exactly as given (no sanitising: some are hostile). */
async function tarball(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  const done = pipeline(pack, createGzip(), sink);
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      linkname: e.linkname,
      mtime: new Date(0),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, e.body ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const limits = { maxBytes: 1 << 20, maxEntries: 1000 };

describe('artifact unpacking', () => {
  let base: string;
  let dest: string;
  let attempt = 0;

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'tide-extract-'));
    dest = join(base, 'out');
    attempt = 0;
  });

  const unpack = async (entries: TarEntry[], lim = limits, into = dest) =>
    extractTarball(Readable.from([await tarball(entries)]), into, lim);
  const refused = async (entries: TarEntry[], pattern: RegExp, lim = limits) => {
    const err = await unpack(entries, lim, join(base, `attempt-${++attempt}`)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'expected the archive to be refused').to.be.instanceOf(ExtractError);
    expect((err as Error).message).to.match(pattern);
  };

  it('unpacks files, directories, modes and symlinks that stay inside', async () => {
    const summary = await unpack([
      { name: 'app/', type: 'directory' },
      { name: 'app/deploy.yaml', body: 'kind: Deployment\n' },
      { name: 'scripts/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
      { name: 'app/current', type: 'symlink', linkname: '../scripts' },
      { name: 'latest.yaml', type: 'symlink', linkname: 'app/deploy.yaml' },
      { name: './top.yaml', body: 'x' },
    ]);
    expect(summary).to.deep.equal({ files: 3, bytes: 'kind: Deployment\n'.length + '#!/bin/sh\n'.length + 1 });
    expect(readFileSync(join(dest, 'app/deploy.yaml'), 'utf8')).to.equal('kind: Deployment\n');
    expect(statSync(join(dest, 'scripts/run.sh')).mode & 0o777).to.equal(0o755);
    expect(statSync(join(dest, 'app/deploy.yaml')).mode & 0o777).to.equal(0o644);
    expect(readlinkSync(join(dest, 'app/current'))).to.equal('../scripts');
    expect(readFileSync(join(dest, 'app/current/run.sh'), 'utf8')).to.equal('#!/bin/sh\n');
    expect(readFileSync(join(dest, 'latest.yaml'), 'utf8')).to.equal('kind: Deployment\n');
    expect(readFileSync(join(dest, 'top.yaml'), 'utf8')).to.equal('x');
  });

  it('refuses entries that climb out with ..', async () => {
    await refused([{ name: '../evil', body: 'x' }], /"\.\.\/evil" points outside the artifact/);
    await refused([{ name: 'a/../../evil', body: 'x' }], /"a\/\.\.\/\.\.\/evil" points outside/);
    expect(existsSync(join(base, 'evil'))).to.equal(false);
  });

  it('refuses absolute paths', async () => {
    await refused([{ name: '/tmp/tide-evil', body: 'x' }], /"\/tmp\/tide-evil" has an absolute path/);
  });

  it('refuses symlinks that lead outside, directly or through other symlinks', async () => {
    await refused(
      [{ name: 'etc', type: 'symlink', linkname: '/etc' }],
      /"etc" is a symlink to the absolute path "\/etc"/,
    );
    await refused(
      [{ name: 'a/up', type: 'symlink', linkname: '../../..' }],
      /"a\/up" is a symlink to "\.\.\/\.\.\/\.\.", outside/,
    );
    await refused(
      [
        { name: 'here', type: 'symlink', linkname: '.' },
        { name: 'sneaky', type: 'symlink', linkname: 'here/..' },
      ],
      /"sneaky" is a symlink to "here\/\.\.", outside/,
    );
    await refused(
      [
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'a' },
      ],
      /symlink loop/,
    );
    for (let i = 1; i <= attempt; i++) {
      const dir = join(base, `attempt-${i}`);
      expect(
        readdirSync(dir).some((n) => lstatSync(join(dir, n)).isSymbolicLink()),
        `attempt ${i} created a symlink`,
      ).to.equal(false);
    }
  });

  it('refuses writing through a symlink, even one that points inside', async () => {
    await refused(
      [
        { name: 'sub/', type: 'directory' },
        { name: 'link', type: 'symlink', linkname: 'sub' },
        { name: 'link/file.yaml', body: 'x' },
      ],
      /"link\/file\.yaml" lies below the symlink "link"/,
    );
  });

  it('refuses hard links and device files', async () => {
    await refused(
      [
        { name: 'a.yaml', body: 'x' },
        { name: 'b.yaml', type: 'link', linkname: 'a.yaml' },
      ],
      /"b\.yaml" is a hard link/,
    );
    await refused([{ name: 'null', type: 'character-device' }], /"null" is a character-device/);
    await refused([{ name: 'pipe', type: 'fifo' }], /"pipe" is a fifo/);
  });

  it('refuses duplicate entries', async () => {
    await refused(
      [
        { name: 'a.yaml', body: 'x' },
        { name: 'a.yaml', body: 'y' },
      ],
      /"a\.yaml" appears twice/,
    );
    await refused(
      [
        { name: 'a/b.yaml', body: 'x' },
        { name: 'a', type: 'symlink', linkname: 'c' },
      ],
      /"a" appears twice/,
    );
  });

  it('enforces the unpacked size and the entry count, naming the entry that crossed them', async () => {
    await refused(
      [
        { name: 'small', body: 'x'.repeat(60) },
        { name: 'big', body: 'x'.repeat(60) },
      ],
      /"big" takes the unpacked size past the limit of 100 bytes/,
      { maxBytes: 100, maxEntries: 10 },
    );
    await refused(
      [1, 2, 3, 4].map((i) => ({ name: `f${i}`, body: '' })),
      /"f4" exceeds the limit of 3 entries/,
      { maxBytes: 100, maxEntries: 3 },
    );
  });

  it('refuses a corrupt stream and a directory that is not empty', async () => {
    const err = await extractTarball(Readable.from([Buffer.from('not gzip at all')]), dest, limits).catch(
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ExtractError);
    expect((err as Error).message).to.match(/unpacking the artifact/);
    mkdirSync(join(base, 'full'));
    writeFileSync(join(base, 'full', 'x'), '');
    const full = await extractTarball(Readable.from([await tarball([])]), join(base, 'full'), limits).catch(
      (e: unknown) => e,
    );
    expect((full as Error).message).to.match(/not empty/);
  });
});

describe('artifact download', () => {
  let server: Server;
  let url: string;
  let dest: string;
  const files = new Map<string, Buffer>();

  before(async () => {
    files.set('/good.tar.gz', await tarball([{ name: 'app/cm.yaml', body: 'kind: ConfigMap\n' }]));
    files.set('/evil.tar.gz', await tarball([{ name: '../evil', body: 'x' }]));
    server = createServer((req, res) => {
      if (req.url === '/slow') return;
      if (req.url === '/broken') return void res.writeHead(500).end('storage down');
      const body = files.get(req.url ?? '');
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await closeServer(server);
  });

  beforeEach(() => {
    dest = join(mkdtempSync(join(tmpdir(), 'tide-fetch-')), 'out');
  });

  const opts = (digest: string, extra = {}) => ({ digest, maxBytes: 1 << 20, timeoutMs: 5000, ...extra });

  it('downloads, verifies and unpacks an artifact', async () => {
    const summary = await fetchArtifact(`${url}/good.tar.gz`, opts(sha256(files.get('/good.tar.gz')!)), dest);
    expect(summary.files).to.equal(1);
    expect(readFileSync(join(dest, 'app/cm.yaml'), 'utf8')).to.equal('kind: ConfigMap\n');
  });

  it('verifies the digest before unpacking anything, naming both digests', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    const err = await fetchArtifact(`${url}/good.tar.gz`, opts(wrong), dest).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ArtifactError);
    expect((err as Error).message).to.include(`expected digest ${wrong}, got ${sha256(files.get('/good.tar.gz')!)}`);
    expect(existsSync(dest)).to.equal(false);
  });

  it('checks sha512 digests too and refuses unknown algorithms', async () => {
    const body = files.get('/good.tar.gz')!;
    await fetchArtifact(`${url}/good.tar.gz`, opts(`sha512:${createHash('sha512').update(body).digest('hex')}`), dest);
    const err = await fetchArtifact(`${url}/good.tar.gz`, opts('md5:abc'), join(dest, 'x')).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/unsupported artifact digest "md5:abc"/);
  });

  it('reports a missing artifact as ArtifactNotFoundError and a server error as ArtifactError', async () => {
    const missing = await fetchArtifact(`${url}/gone.tar.gz`, opts(sha256(Buffer.from(''))), dest).catch(
      (e: unknown) => e,
    );
    expect(missing).to.be.instanceOf(ArtifactNotFoundError);
    const broken = await fetchArtifact(`${url}/broken`, opts(sha256(Buffer.from(''))), dest).catch((e: unknown) => e);
    expect(broken).to.be.instanceOf(ArtifactError).and.not.instanceOf(ArtifactNotFoundError);
    expect((broken as Error).message).to.match(/HTTP 500/);
  });

  it('gives up after the timeout', async () => {
    const err = await fetchArtifact(`${url}/slow`, opts(sha256(Buffer.from('')), { timeoutMs: 200 }), dest).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/timed out after 200ms/);
  });

  it('stops a download larger than maxBytes', async () => {
    const body = files.get('/good.tar.gz')!;
    const err = await fetchArtifact(`${url}/good.tar.gz`, opts(sha256(body), { maxBytes: 10 }), dest).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/larger than the limit of 10 bytes/);
  });

  it('refuses a verified artifact with a hostile entry', async () => {
    const err = await fetchArtifact(`${url}/evil.tar.gz`, opts(sha256(files.get('/evil.tar.gz')!)), dest).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/"\.\.\/evil" points outside the artifact/);
  });
});
