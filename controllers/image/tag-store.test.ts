import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMPRESS_ABOVE, revisionOf, TagStore } from './tag-store.ts';

describe('TagStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tide-tags-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the tags of each repository in one file and reads them back in order', async () => {
    const store = new TagStore(dir);
    const revision = await store.write('ns/app', ['1.0.0', 'latest', '0.9.1']);
    expect(revision).to.equal(revisionOf(['latest', '0.9.1', '1.0.0']));
    expect(await store.read('ns/app')).to.deep.equal(['1.0.0', 'latest', '0.9.1']);
    expect(await store.read('ns/other')).to.equal(undefined);
    await store.write('ns/empty', []);
    expect(await store.read('ns/empty')).to.deep.equal([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('gzips a large list and switches back when it shrinks', async () => {
    const store = new TagStore(dir);
    const many = Array.from({ length: 10_000 }, (_, i) => `1.${Math.floor(i / 100)}.${i % 100}-build.${i}`);
    expect(many.join('\n').length).to.be.greaterThan(COMPRESS_ABOVE);
    await store.write('ns/big', many);
    expect(readdirSync(dir).some((f) => f.endsWith('.txt.gz'))).to.equal(true);
    expect(await store.read('ns/big')).to.deep.equal(many);
    await store.write('ns/big', ['1.0.0']);
    expect(readdirSync(dir).some((f) => f.endsWith('.txt.gz'))).to.equal(false);
    expect(await store.read('ns/big')).to.deep.equal(['1.0.0']);
    await store.remove('ns/big');
    expect(await store.read('ns/big')).to.equal(undefined);
  });

  it('gives a revision that depends on the set of tags only', () => {
    expect(revisionOf(['a', 'b'])).to.equal(revisionOf(['b', 'a']));
    expect(revisionOf(['a', 'b'])).not.to.equal(revisionOf(['a', 'c']));
    expect(revisionOf([])).to.match(/^sha256:[0-9a-f]{64}$/);
  });
});
