import { expect } from 'chai';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer } from '../runtime/http.ts';
import { Storage } from './storage.ts';

describe('artifact storage', () => {
  let root: string;
  let storage: Storage;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tide-storage-'));
    storage = new Storage({ root, advertisedBase: 'http://source.example/', retention: 2 });
  });

  it('lays out and addresses artifacts as Flux does', () => {
    const dir = storage.objectDir('GitRepository', 'flux-system', 'app');
    expect(dir).to.equal('gitrepository/flux-system/app');
    expect(storage.url(`${dir}/abc.tar.gz`)).to.equal('http://source.example/gitrepository/flux-system/app/abc.tar.gz');
  });

  it('writes atomically: a failed write leaves the previous file and no temp file', async () => {
    const rel = 'gitrepository/ns/app/a.tar.gz';
    await storage.writeAtomic(rel, async (tmp) => writeFileSync(tmp, 'first'));
    await storage
      .writeAtomic(rel, async (tmp) => {
        writeFileSync(tmp, 'partial');
        throw new Error('disk full');
      })
      .catch(() => undefined);
    expect(readFileSync(join(root, rel), 'utf8')).to.equal('first');
    expect(readdirSync(join(root, 'gitrepository/ns/app'))).to.deep.equal(['a.tar.gz']);
  });

  it('keeps the newest artifacts up to the retention, always the current one', async () => {
    const dir = 'gitrepository/ns/app';
    for (const [i, name] of ['a', 'b', 'c', 'd'].entries()) {
      await storage.writeAtomic(`${dir}/${name}.tar.gz`, async (tmp) => writeFileSync(tmp, name));
      utimesSync(join(root, dir, `${name}.tar.gz`), 1000 + i, 1000 + i);
    }
    const removed = await storage.garbageCollect(dir, `${dir}/a.tar.gz`);
    expect(removed.sort()).to.deep.equal([`${dir}/b.tar.gz`, `${dir}/c.tar.gz`]);
    expect(readdirSync(join(root, dir)).sort()).to.deep.equal(['a.tar.gz', 'd.tar.gz']);
    await storage.removeAll(dir);
    expect(existsSync(join(root, dir))).to.equal(false);
  });

  it('refuses paths outside the root', () => {
    expect(() => storage.absolute('../etc/passwd')).to.throw(/escapes the storage root/);
  });

  describe('HTTP', () => {
    let server: Server;
    let base: string;

    beforeEach(async () => {
      server = await storage.listen('127.0.0.1:0');
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      await storage.writeAtomic('gitrepository/ns/app/a.tar.gz', async (tmp) => writeFileSync(tmp, 'tarball'));
      writeFileSync(join(root, '..', 'secret-outside-root'), 'no');
    });

    afterEach(() => closeServer(server));

    it('serves artifacts, and nothing else', async () => {
      const ok = await fetch(`${base}/gitrepository/ns/app/a.tar.gz`);
      expect(ok.status).to.equal(200);
      expect(ok.headers.get('content-length')).to.equal('7');
      expect(await ok.text()).to.equal('tarball');
      expect((await fetch(`${base}/gitrepository/ns/app/missing.tar.gz`)).status).to.equal(404);
      expect((await fetch(`${base}/gitrepository/ns/app`)).status).to.equal(404, 'no directory listing');
      expect((await fetch(`${base}/%2e%2e/secret-outside-root`)).status).to.equal(404);
      expect((await fetch(`${base}/gitrepository/ns/app/a.tar.gz`, { method: 'DELETE' })).status).to.equal(405);
    });
  });
});
