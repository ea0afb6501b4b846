import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { updateFiles, UpdatePathError, updatePathIn, updateRoot } from './files.ts';

const policies = new Map([['apps:web', { image: 'registry.example/web', tag: '1.2.4' }]]);

describe('Setters over a checkout', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tide-update-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function write(path: string, text: string): void {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }

  it('rewrites marked YAML files under the path, and only those that change', async () => {
    const marked = 'spec:\n  image: registry.example/web:1.2.3 # {"$imagepolicy": "apps:web"}\n';
    write('deploy/web.yaml', marked);
    write('deploy/current.yml', 'image: registry.example/web:1.2.4 # {"$imagepolicy": "apps:web"}\n');
    write('deploy/notes.txt', marked);
    write('deploy/plain.yaml', 'image: registry.example/web:1.0.0\n');
    write('deploy/Kustomization', 'images:\n  - name: web\n    newTag: 1.0.0 # {"$imagepolicy": "apps:web:tag"}\n');
    write('deploy/other.yaml', 'image: x:1 # {"$imagepolicy": "apps:missing"}\n');
    write('deploy/broken.yaml', 'a: [1, 2\nimage: x:1 # {"$imagepolicy": "apps:web"}\n');
    write('outside/web.yaml', marked);
    write('deploy/.git/config.yaml', marked);
    const result = await updateFiles(root, updateRoot(root, './deploy'), policies);
    expect(result.updated.map((u) => u.path)).to.deep.equal(['deploy/Kustomization', 'deploy/web.yaml']);
    expect(readFileSync(join(root, 'deploy/web.yaml'), 'utf8')).to.equal(
      'spec:\n  image: registry.example/web:1.2.4 # {"$imagepolicy": "apps:web"}\n',
    );
    expect(readFileSync(join(root, 'deploy/notes.txt'), 'utf8')).to.equal(marked);
    expect(readFileSync(join(root, 'outside/web.yaml'), 'utf8')).to.equal(marked);
    expect(result.skipped.map((s) => [s.path, s.reason])).to.deep.equal([['deploy/other.yaml', 'no-policy']]);
    expect(result.invalid.map((i) => i.path)).to.deep.equal(['deploy/broken.yaml']);
  });

  it('does not follow symbolic links, and refuses a path outside the checkout', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'tide-elsewhere-'));
    try {
      writeFileSync(join(elsewhere, 'x.yaml'), 'image: x:1 # {"$imagepolicy": "apps:web"}\n');
      mkdirSync(join(root, 'deploy'));
      symlinkSync(join(elsewhere, 'x.yaml'), join(root, 'deploy', 'link.yaml'));
      symlinkSync(elsewhere, join(root, 'deploy', 'dir'));
      const result = await updateFiles(root, updateRoot(root, 'deploy'), policies);
      expect(result.updated).to.deep.equal([]);
      expect(readFileSync(join(elsewhere, 'x.yaml'), 'utf8')).to.contain('x:1');
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
    expect(() => updateRoot(root, '../..')).to.throw(UpdatePathError, "spec.update.path '../..' is outside");
    expect(updateRoot(root, undefined)).to.equal(root);
    expect(updateRoot(root, '/deploy')).to.equal(join(root, 'deploy'));
    const inRepo = [undefined, '', '.', './', '/', 'deploy', './deploy/', '/deploy', 'a/../deploy', 'a/b/'];
    expect(inRepo.map(updatePathIn)).to.deep.equal(['', '', '', '', '', 'deploy', 'deploy', 'deploy', 'deploy', 'a/b']);
    expect(() => updatePathIn('a/../../x')).to.throw(UpdatePathError, "spec.update.path 'a/../../x' is outside");
  });

  it('names the object each change was made in', async () => {
    write(
      'apps.yaml',
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata: {name: settings, namespace: apps}',
        '---',
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: web',
        '  namespace: apps',
        'spec:',
        '  template:',
        '    spec:',
        '      containers:',
        '        - image: registry.example/web:1.2.3 # {"$imagepolicy": "apps:web"}',
        '',
      ].join('\n'),
    );
    const result = await updateFiles(root, root, policies);
    expect(result.updated).to.have.length(1);
    expect(result.updated[0]!.changes.map((c) => [c.line, c.object])).to.deep.equal([
      [14, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'apps' }],
    ]);
  });
});
