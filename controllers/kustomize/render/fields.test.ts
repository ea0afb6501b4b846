import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { BuildError } from './errors.ts';
import { applyFields } from './fields.ts';
import type { KustomizeFields } from './fields.ts';

async function edit(content: string, fields: KustomizeFields): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'tide-fields-'));
  const file = join(root, 'kustomization.yaml');
  writeFileSync(file, content);
  await applyFields(root, root, file, fields);
  return readFileSync(file, 'utf8');
}

describe("writing the Kustomization's fields into kustomization.yaml", () => {
  it("keeps the file's own scalars, comments and anchors exactly as written", async () => {
    const out = await edit(
      `# managed by hand
resources:
  - a.yaml # first
images:
  - name: busybox
    newTag: 1.10
replicas:
  - name: web
    count: 0777
labels: &l {on: yes}
commonAnnotations: *l
`,
      { targetNamespace: 'apps' },
    );
    expect(out).to.include('# managed by hand');
    expect(out).to.include('- a.yaml # first');
    expect(out).to.include('newTag: 1.10');
    expect(out).to.include('count: 0777');
    expect(out).to.include('labels: &l { on: yes }');
    expect(out).to.include('commonAnnotations: *l');
    expect(out).to.include('namespace: "apps"');
  });

  it('replaces namespace, namePrefix and nameSuffix, quoting values that look like numbers', async () => {
    const doc = parse(
      await edit('namespace: old\nnamePrefix: a-\nresources: [x.yaml]\n', {
        targetNamespace: '1234',
        namePrefix: 'b-',
        nameSuffix: '-true',
      }),
    );
    expect(doc).to.deep.equal({ namespace: '1234', namePrefix: 'b-', nameSuffix: '-true', resources: ['x.yaml'] });
  });

  it('appends patches and components after the file’s own, keeping only selector fields', async () => {
    const doc = parse(
      await edit('patches:\n  - path: mine.yaml\ncomponents: [../c1]\n', {
        patches: [
          { patch: 'line1\nline2\n', target: { kind: 'Deployment', labelSelector: 'a=b', extra: 'dropped' } as never },
          { patch: '[]' },
        ],
        components: ['../c2'],
      }),
    );
    expect(doc.patches).to.deep.equal([
      { path: 'mine.yaml' },
      { patch: 'line1\nline2\n', target: { kind: 'Deployment', labelSelector: 'a=b' } },
      { patch: '[]' },
    ]);
    expect(doc.components).to.deep.equal(['../c1', '../c2']);
  });

  it('replaces an image entry of the same name and appends new ones', async () => {
    const doc = parse(
      await edit(
        'images:\n  - name: nginx\n    newName: my/nginx\n    newTag: "1"\n  - name: redis\n    newTag: "7"\n',
        {
          images: [
            { name: 'nginx', newTag: '2' },
            { name: 'app', newName: 'registry/app', digest: 'sha256:abc' },
          ],
        },
      ),
    );
    expect(doc.images).to.deep.equal([
      { name: 'nginx', newTag: '2' },
      { name: 'redis', newTag: '7' },
      { name: 'app', newName: 'registry/app', digest: 'sha256:abc' },
    ]);
  });

  it('drops components that do not exist only when told to', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tide-fields-'));
    mkdirSync(join(root, 'here'));
    const file = join(root, 'kustomization.yaml');
    writeFileSync(file, 'resources: []\n');
    await applyFields(root, root, file, { components: ['here', 'gone'], ignoreMissingComponents: true });
    expect(parse(readFileSync(file, 'utf8')).components).to.deep.equal(['here']);
  });

  it('makes an empty kustomization buildable and refuses files that are not mappings or lists', async () => {
    expect(parse(await edit('', {}))).to.deep.equal({ resources: [] });
    expect(parse(await edit('apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n', {}))).to.deep.include(
      { resources: [] },
    );
    const list = await edit('- a\n', {}).catch((e: unknown) => e);
    expect(list).to.be.instanceOf(BuildError);
    expect((list as Error).message).to.equal('kustomization.yaml is not a YAML mapping');
    const patches = await edit('patches: {a: b}\n', { patches: [{ patch: 'x' }] }).catch((e: unknown) => e);
    expect((patches as Error).message).to.equal('kustomization.yaml: patches is not a list');
  });
});
