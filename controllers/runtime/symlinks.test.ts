import { expect } from 'chai';
import { resolveSymlink } from './symlinks.ts';

describe('resolveSymlink', () => {
  const links = new Map([
    ['a/up', '..'],
    ['a/out', '../..'],
    ['b/via', '../a/up/c'],
    ['b/abs', '/etc'],
    ['x/loop1', 'loop2'],
    ['x/loop2', 'loop1'],
  ]);

  it('follows links the way the kernel will, through other links', () => {
    expect(resolveSymlink(links, 'a/up')).to.deep.equal([]);
    expect(resolveSymlink(links, 'b/via')).to.deep.equal(['c']);
  });

  it('says null for a link that leaves the root and loop for a cycle', () => {
    expect(resolveSymlink(links, 'a/out')).to.equal(null);
    expect(resolveSymlink(links, 'b/abs')).to.equal(null);
    expect(resolveSymlink(links, 'x/loop1')).to.equal('loop');
  });
});
