import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  mkdirSync,
  symlinkSync,
  chmodSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { writeArtifact } from './archive.ts';
import { GIT_TEST_ENV } from './test-env.ts';

const ENV = GIT_TEST_ENV;

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: ENV, encoding: 'utf8' }).trim();
}

function put(root: string, path: string, content: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

function commitAll(repo: string, message: string): string {
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', message);
  return git(repo, 'rev-parse', 'HEAD');
}

interface TarItem {
  name: string;
  type: string;
  mode: number;
  linkname?: string;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  content: string;
}

async function readTarball(gz: Buffer): Promise<TarItem[]> {
  const items: TarItem[] = [];
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c) => chunks.push(c as Buffer));
      stream.on('end', () => {
        items.push({
          name: h.name,
          type: h.type,
          mode: h.mode,
          linkname: h.linkname || undefined,
          uid: h.uid,
          gid: h.gid,
          uname: h.uname,
          gname: h.gname,
          mtime: h.mtime.getTime(),
          content: Buffer.concat(chunks).toString('utf8'),
        });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(gunzipSync(gz));
  await done;
  return items;
}

const LONG = `deploy/${'a-very-long-directory-name-that-goes-on/'.repeat(3)}manifest.yaml`;

describe('writeArtifact', function () {
  this.timeout(30000);
  let tmp: string;
  let repo: string;
  let gitdir: string;
  let plain: string; // no .sourceignore anywhere
  let withIgnores: string; // root and deploy/ .sourceignore files
  let escaping: string; // a symlink straight out of the root
  let chained: string; // a symlink that escapes only through another symlink
  let n = 0;
  const out = () => join(tmp, `artifact-${++n}.tar.gz`);

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tide-archive-'));
    repo = join(tmp, 'repo');
    mkdirSync(repo);
    git(repo, 'init', '-q', '-b', 'main');
    put(repo, 'README.md', '# readme\n');
    put(repo, 'notes.txt', 'root notes\n');
    put(repo, '.gitignore', 'tmp/\n');
    put(repo, '.github/workflows/ci.yml', 'on: push\n');
    put(repo, 'deploy/app.yaml', 'kind: ConfigMap\n');
    put(repo, 'deploy/logo.png', 'not really a png\n');
    put(repo, 'deploy/notes.txt', 'deploy notes\n');
    put(repo, 'deploy/sub/more.txt', 'more\n');
    put(repo, 'deploy/sub/.sops.yaml', 'creation_rules: []\n');
    put(repo, 'deploy/ünïcode.yaml', 'kind: Secret\n');
    put(repo, LONG, 'kind: Namespace\n');
    put(repo, 'other/notes.txt', 'other notes\n');
    put(repo, 'scripts/run.sh', '#!/bin/sh\necho hi\n');
    chmodSync(join(repo, 'scripts/run.sh'), 0o755);
    symlinkSync('deploy/app.yaml', join(repo, 'link-inside'));
    symlinkSync('../README.md', join(repo, 'deploy/link-up'));
    git(repo, 'add', '-A');
    // A submodule is only a gitlink in the tree; it has no content here.
    git(repo, 'update-index', '--add', '--cacheinfo', `160000,${'1'.repeat(40)},vendor/module`);
    git(repo, 'commit', '-q', '-m', 'plain');
    plain = git(repo, 'rev-parse', 'HEAD');

    put(repo, '.sourceignore', '# root rules\n/notes.txt\n');
    put(repo, 'deploy/.sourceignore', '*.txt\n');
    withIgnores = commitAll(repo, 'ignores');

    symlinkSync('../outside', join(repo, 'escape'));
    escaping = commitAll(repo, 'escape');

    git(repo, 'rm', '-q', 'escape');
    symlinkSync('..', join(repo, 'deploy/up'));
    symlinkSync('up/../etc', join(repo, 'deploy/sneaky'));
    chained = commitAll(repo, 'chained');
    gitdir = join(repo, '.git');
  });

  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('packs the tree with the default exclusions, directories before their contents', async () => {
    const path = out();
    const res = await writeArtifact({ fs, gitdir, commit: plain, out: path });
    const items = await readTarball(readFileSync(path));
    const longDirs = LONG.split('/')
      .slice(1, -1)
      .map((_, i, a) => `deploy/${a.slice(0, i + 1).join('/')}/`);
    expect(items.map((i) => i.name)).to.deep.equal([
      'README.md',
      'deploy/',
      ...longDirs,
      LONG,
      'deploy/app.yaml',
      'deploy/link-up',
      'deploy/notes.txt',
      'deploy/sub/',
      'deploy/sub/more.txt',
      'deploy/ünïcode.yaml',
      'link-inside',
      'notes.txt',
      'other/',
      'other/notes.txt',
      'scripts/',
      'scripts/run.sh',
    ]);
    expect(res.files).to.equal(11);
    expect(res.size).to.equal(readFileSync(path).length);
  });

  it('writes fixed, environment-free headers and git modes', async () => {
    const path = out();
    await writeArtifact({ fs, gitdir, commit: plain, out: path });
    const items = new Map((await readTarball(readFileSync(path))).map((i) => [i.name, i]));
    for (const i of items.values()) {
      expect(i, i.name).to.include({ uid: 0, gid: 0, uname: '', gname: '', mtime: 0 });
    }
    expect(items.get('scripts/run.sh')).to.include({ type: 'file', mode: 0o755, content: '#!/bin/sh\necho hi\n' });
    expect(items.get('deploy/app.yaml')).to.include({ type: 'file', mode: 0o644, content: 'kind: ConfigMap\n' });
    expect(items.get('deploy/')).to.include({ type: 'directory', mode: 0o755 });
    expect(items.get('link-inside')).to.include({ type: 'symlink', linkname: 'deploy/app.yaml' });
    expect(items.get('deploy/link-up')).to.include({ type: 'symlink', linkname: '../README.md' });
    expect(items.get(LONG)).to.include({ content: 'kind: Namespace\n' });
    expect(items.get('deploy/ünïcode.yaml')).to.include({ content: 'kind: Secret\n' });
  });

  it('is byte-identical across runs and reports the digest of what it wrote', async () => {
    const a = out();
    const b = out();
    const ra = await writeArtifact({ fs, gitdir, commit: withIgnores, out: a });
    const rb = await writeArtifact({ fs, gitdir, commit: withIgnores, out: b });
    const bytes = readFileSync(a);
    expect(bytes.equals(readFileSync(b))).to.equal(true);
    expect(ra).to.deep.equal(rb);
    expect(ra.digest).to.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    // gzip header: magic, method, flags, then a 4-byte mtime that must stay zero.
    expect([...bytes.subarray(0, 4)]).to.deep.equal([0x1f, 0x8b, 8, 0]);
    expect(bytes.readUInt32LE(4)).to.equal(0);
  });

  it('reads packed objects as well as loose ones', async () => {
    const bare = join(tmp, 'bare.git');
    execFileSync('git', ['clone', '-q', '--bare', repo, bare], { env: ENV });
    execFileSync('git', ['-C', bare, 'gc', '-q', '--aggressive'], { env: ENV });
    expect(fs.readdirSync(join(bare, 'objects/pack')).some((f) => f.endsWith('.pack'))).to.equal(true);
    const loose = await writeArtifact({ fs, gitdir, commit: withIgnores, out: out() });
    const packed = await writeArtifact({ fs, gitdir: bare, commit: withIgnores, out: out() });
    expect(packed).to.deep.equal(loose);
  });

  it('writes to a stream and ends it', async () => {
    const chunks: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => stream.on('end', resolve));
    const res = await writeArtifact({ fs, gitdir, commit: plain, out: stream });
    await ended;
    const fromFile = await writeArtifact({ fs, gitdir, commit: plain, out: out() });
    expect(res).to.deep.equal(fromFile);
    expect(Buffer.concat(chunks).length).to.equal(res.size);
  });

  it('destroys a given stream when it fails, before or during packing', async () => {
    for (const opts of [{ commit: escaping }, { commit: plain, maxBytes: 40 }]) {
      const stream = new PassThrough();
      stream.resume();
      const err = await writeArtifact({ fs, gitdir, out: stream, ...opts }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect(stream.destroyed).to.equal(true);
    }
  });

  it('scopes a .sourceignore to its directory and drops the defaults, as Flux does', async () => {
    const path = out();
    await writeArtifact({ fs, gitdir, commit: withIgnores, out: path });
    const names = (await readTarball(readFileSync(path))).map((i) => i.name);
    // Root rule /notes.txt: only the root file. deploy/ rule *.txt: everything below deploy/.
    for (const p of ['notes.txt', 'deploy/notes.txt', 'deploy/sub/more.txt', '.gitignore'])
      expect(names).to.not.include(p);
    expect(names).to.include.members(['other/notes.txt', '.sourceignore', 'deploy/.sourceignore']);
    // With patterns of its own, the repository no longer gets the default list; VCS files stay out.
    expect(names).to.include.members(['.github/workflows/ci.yml', 'deploy/logo.png', 'deploy/sub/.sops.yaml']);
  });

  it('lets spec.ignore replace the defaults but not the VCS exclusions', async () => {
    const path = out();
    await writeArtifact({ fs, gitdir, commit: plain, out: path, specIgnore: '/other/\n' });
    const names = (await readTarball(readFileSync(path))).map((i) => i.name);
    expect(names).to.include.members([
      '.github/workflows/ci.yml',
      'deploy/logo.png',
      'deploy/sub/.sops.yaml',
      'notes.txt',
    ]);
    for (const p of ['other/', 'other/notes.txt', '.gitignore']) expect(names).to.not.include(p);
  });

  it('applies spec.ignore after the .sourceignore files', async () => {
    const path = out();
    await writeArtifact({ fs, gitdir, commit: withIgnores, out: path, specIgnore: '!deploy/notes.txt\nREADME.md\n' });
    const names = (await readTarball(readFileSync(path))).map((i) => i.name);
    expect(names).to.include('deploy/notes.txt');
    for (const p of ['README.md', 'deploy/sub/more.txt']) expect(names).to.not.include(p);
  });

  it('uses a given exclude function instead of the repository rules', async () => {
    const seen: string[] = [];
    const path = out();
    const res = await writeArtifact({
      fs,
      gitdir,
      commit: withIgnores,
      out: path,
      exclude: (p) => {
        seen.push(p);
        return !p.startsWith('deploy/app');
      },
    });
    expect((await readTarball(readFileSync(path))).map((i) => i.name)).to.deep.equal(['deploy/', 'deploy/app.yaml']);
    expect(res.files).to.equal(1);
    expect(seen).to.not.include('vendor/module');
  });

  it('refuses a symlink that points outside the repository', async () => {
    const path = out();
    const err = await writeArtifact({ fs, gitdir, commit: escaping, out: path }).catch((e: Error) => e);
    expect(err)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/symlink escape points outside the repository.*\.\.\/outside/);
    expect(existsSync(path)).to.equal(false);
  });

  it('refuses a symlink that escapes through another symlink, unless it is excluded', async () => {
    const err = await writeArtifact({ fs, gitdir, commit: chained, out: out() }).catch((e: Error) => e);
    expect(err)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/symlink deploy\/sneaky points outside/);
    const path = out();
    await writeArtifact({ fs, gitdir, commit: chained, out: path, specIgnore: 'sneaky\n' });
    const names = (await readTarball(readFileSync(path))).map((i) => i.name);
    expect(names).to.include('deploy/up');
    expect(names).to.not.include('deploy/sneaky');
  });

  it('aborts past maxBytes, naming the limit and the size reached, and removes the file', async () => {
    const path = out();
    const err = await writeArtifact({ fs, gitdir, commit: plain, out: path, maxBytes: 40 }).catch((e: Error) => e);
    expect(err)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/size limit of 40 bytes: reached \d+ bytes/);
    expect(existsSync(path)).to.equal(false);
    const ok = await writeArtifact({ fs, gitdir, commit: plain, out: out(), maxBytes: 10_000 });
    expect(ok.files).to.equal(11);
  });

  it('packs only the sparse directories, not their look-alike siblings', async () => {
    const path = out();
    const res = await writeArtifact({ fs, gitdir, commit: plain, out: path, sparse: ['deploy/sub', 'scripts'] });
    const names = (await readTarball(readFileSync(path))).map((i) => i.name);
    expect(names).to.deep.equal(['deploy/', 'deploy/sub/', 'deploy/sub/more.txt', 'scripts/', 'scripts/run.sh']);
    expect(res.files).to.equal(2);
    const none = out();
    await writeArtifact({ fs, gitdir, commit: plain, out: none, sparse: ['scrip'] });
    expect(await readTarball(readFileSync(none))).to.deep.equal([]);
  });

  it('packs a fetched submodule in place of its gitlink, and skips gitlinks it was not given', async () => {
    const sub = join(tmp, 'sub');
    mkdirSync(sub);
    git(sub, 'init', '-q', '-b', 'main');
    put(sub, 'lib.yaml', 'kind: Library\n');
    put(sub, '.sourceignore', '*.md\n');
    put(sub, 'README.md', '# sub\n');
    const subCommit = commitAll(sub, 'sub');
    // The submodule's objects in the superproject's object database, as fetchSubmodules leaves them.
    git(repo, 'fetch', '-q', sub, 'main');
    const sup = join(tmp, 'sup');
    mkdirSync(sup);
    git(sup, 'init', '-q', '-b', 'main');
    put(sup, 'app.yaml', 'kind: App\n');
    git(sup, 'add', '-A');
    git(sup, 'update-index', '--add', '--cacheinfo', `160000,${subCommit},vendor/lib`);
    git(sup, 'update-index', '--add', '--cacheinfo', `160000,${'2'.repeat(40)},vendor/other`);
    git(sup, 'commit', '-q', '-m', 'sup');
    git(repo, 'fetch', '-q', sup, 'main');
    const supCommit = git(sup, 'rev-parse', 'HEAD');
    const path = out();
    await writeArtifact({ fs, gitdir, commit: supCommit, out: path, submodules: new Map([['vendor/lib', subCommit]]) });
    const names = (await readTarball(readFileSync(path))).map((i) => i.name);
    expect(names).to.deep.equal([
      'app.yaml',
      'vendor/',
      'vendor/lib/',
      'vendor/lib/.sourceignore',
      'vendor/lib/lib.yaml',
    ]);
    const stale = await writeArtifact({
      fs,
      gitdir,
      commit: supCommit,
      out: out(),
      submodules: new Map([['vendor/lib', plain]]),
    }).catch((e: Error) => e);
    expect(stale)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/submodule vendor\/lib is at/);
  });

  it('fails on an unknown commit', async () => {
    const err = await writeArtifact({ fs, gitdir, commit: 'f'.repeat(40), out: out() }).catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error);
  });
});
