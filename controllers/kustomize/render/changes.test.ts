import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { queueOrder, SourceChanges } from './changes.ts';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tide-changes-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

describe('SourceChanges', () => {
  const dirs = new Map<string, string>();
  afterEach(() => {
    for (const d of dirs.values()) rmSync(d, { recursive: true, force: true });
    dirs.clear();
  });

  it('says which Kustomization paths changed between two artifacts, reading each once', async () => {
    const reads: string[] = [];
    const changes = new SourceChanges(async ({ digest }) => {
      reads.push(digest);
      return { dir: dirs.get(digest)!, release: () => {} };
    });
    const art = (digest: string) => ({ url: `http://storage/${digest}.tar.gz`, digest });
    const files = { 'apps/a/cm.yaml': 'a: 1\n', 'apps/b/cm.yaml': 'b: 1\n', 'base/x.yaml': 'x\n' };
    dirs.set('one', tree(files));
    dirs.set('two', tree({ ...files, 'apps/b/cm.yaml': 'b: 2\n' }));
    const changed = await changes.changed('GitRepository/ns/repo', art('one'), art('two'));
    expect(['./apps/a', 'apps/b', '/apps/b/', './apps', './', undefined, 'base', 'gone'].map(changed)).to.deep.equal([
      false,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    // A changed link target changes its directory too; 'two' is known already.
    dirs.set('three', tree({ ...files, 'apps/b/cm.yaml': 'b: 2\n' }));
    symlinkSync('../base', join(dirs.get('three')!, 'apps', 'a', 'link'));
    const again = await changes.changed('GitRepository/ns/repo', art('two'), art('three'));
    expect([again('apps/a'), again('apps/b'), again('base')]).to.deep.equal([true, false, false]);
    expect(reads).to.deep.equal(['one', 'two', 'three']);
  });
});

describe('queueOrder', () => {
  const ks = (path: string) => ({ spec: { path } });
  const [a, b, c] = [ks('./apps/a'), ks('./apps/b'), ks('./apps/c')];

  it('puts the Kustomizations whose path changed first, each once', () => {
    const order = queueOrder([a, b, c], (path) => path === './apps/c');
    expect(order).to.deep.equal([c, a, b]);
  });

  it('keeps the order when what changed is unknown', () => {
    expect(queueOrder([a, b, c], undefined)).to.deep.equal([a, b, c]);
  });
});
