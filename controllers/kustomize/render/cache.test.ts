import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactCache } from './cache.ts';
import { ArtifactError } from './errors.ts';
import type { FetchOptions } from './fetch.ts';

/** A fetcher that writes `<digest>` into dest/file, counting calls; digests in `failing` fail. */
function fakeFetcher(failing = new Set<string>()) {
  const calls: string[] = [];
  let gate: Promise<void> = Promise.resolve();
  const fetcher = async (url: string, opts: FetchOptions, dest: string) => {
    calls.push(opts.digest);
    await gate;
    if (failing.has(opts.digest)) throw new ArtifactError(`${url}: digest mismatch`);
    writeFileSync(join(dest, 'file'), opts.digest);
  };
  return { calls, fetcher, hold: (p: Promise<void>) => (gate = p) };
}

describe('ArtifactCache', () => {
  const dir = () => join(mkdtempSync(join(tmpdir(), 'tide-cache-test-')), 'cache');

  it('unpacks a digest once for concurrent and later readers', async () => {
    const f = fakeFetcher();
    const cache = new ArtifactCache(dir(), { maxBytes: 1 << 20, fetcher: f.fetcher });
    let open!: () => void;
    f.hold(new Promise((r) => (open = r)));
    const pending = [cache.acquire('http://x/a', 'sha256:aa', 1000), cache.acquire('http://x/a', 'sha256:aa', 1000)];
    open();
    const [a, b] = await Promise.all(pending);
    expect(a!.dir).to.equal(b!.dir);
    expect(readFileSync(join(a!.dir, 'file'), 'utf8')).to.equal('sha256:aa');
    a!.release();
    b!.release();
    const c = await cache.acquire('http://x/a', 'sha256:aa', 1000);
    expect(c.dir).to.equal(a!.dir);
    expect(f.calls).to.deep.equal(['sha256:aa']);
    c.release();
  });

  it('does not remember a failure: the next reader downloads again', async () => {
    const failing = new Set(['sha256:bad']);
    const f = fakeFetcher(failing);
    const cache = new ArtifactCache(dir(), { maxBytes: 1 << 20, fetcher: f.fetcher });
    const err = await cache.acquire('http://x/b', 'sha256:bad', 1000).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ArtifactError);
    expect(cache.size).to.equal(0);
    failing.clear();
    const lease = await cache.acquire('http://x/b', 'sha256:bad', 1000);
    expect(readFileSync(join(lease.dir, 'file'), 'utf8')).to.equal('sha256:bad');
    expect(f.calls).to.have.length(2);
  });

  it('removes the least recently used idle trees beyond keepIdle, never one in use', async () => {
    const f = fakeFetcher();
    const cache = new ArtifactCache(dir(), { maxBytes: 1 << 20, keepIdle: 1, fetcher: f.fetcher });
    const held = await cache.acquire('http://x/1', 'sha256:01', 1000);
    const two = await cache.acquire('http://x/2', 'sha256:02', 1000);
    two.release();
    const three = await cache.acquire('http://x/3', 'sha256:03', 1000);
    three.release();
    await cache.evicted();
    expect(existsSync(held.dir), 'in use').to.equal(true);
    expect(existsSync(two.dir), 'least recently used idle tree').to.equal(false);
    expect(existsSync(three.dir), 'kept idle').to.equal(true);
    held.release();
    held.release(); // a second release changes nothing
    await cache.evicted();
    expect(existsSync(held.dir), 'released last, so kept').to.equal(true);
    expect(existsSync(three.dir)).to.equal(false);
    expect(cache.size).to.equal(1);
    const again = await cache.acquire('http://x/2', 'sha256:02', 1000);
    expect(readFileSync(join(again.dir, 'file'), 'utf8')).to.equal('sha256:02');
    expect(f.calls).to.deep.equal(['sha256:01', 'sha256:02', 'sha256:03', 'sha256:02']);
  });

  it('clear removes everything', async () => {
    const root = dir();
    const cache = new ArtifactCache(root, { maxBytes: 1 << 20, fetcher: fakeFetcher().fetcher });
    (await cache.acquire('http://x/1', 'sha256:01', 1000)).release();
    await cache.clear();
    expect(existsSync(root)).to.equal(false);
    expect(cache.size).to.equal(0);
  });
});
