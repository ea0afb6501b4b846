import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SourceChanges } from './changes.ts';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tide-changes-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

describe('SourceChanges', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('says which Kustomization paths changed since the artifact before', async () => {
    const changes = new SourceChanges();
    const files = { 'apps/a/cm.yaml': 'a: 1\n', 'apps/b/cm.yaml': 'b: 1\n', 'base/x.yaml': 'x\n' };
    dirs.push(tree(files));
    expect(await changes.update('GitRepository/ns/repo', dirs[0]!)).to.equal(undefined);
    dirs.push(tree({ ...files, 'apps/b/cm.yaml': 'b: 2\n' }));
    const changed = (await changes.update('GitRepository/ns/repo', dirs[1]!))!;
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
    // Renaming a file or changing a link target changes its directory too.
    dirs.push(tree({ ...files, 'apps/b/cm.yaml': 'b: 2\n' }));
    symlinkSync('../base', join(dirs[2]!, 'apps', 'a', 'link'));
    const again = (await changes.update('GitRepository/ns/repo', dirs[2]!))!;
    expect([again('apps/a'), again('apps/b'), again('base')]).to.deep.equal([true, false, false]);
    // Each source has its own history.
    expect(await changes.update('GitRepository/ns/other', dirs[0]!)).to.equal(undefined);
  });
});
