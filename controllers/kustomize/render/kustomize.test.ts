// These tests run the real kustomize (the one e2e/controlplane/build.sh builds).
import { expect } from 'chai';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveBinDir } from '../../../e2e/cluster/cluster.ts';
import { ArtifactError, BuildError } from './errors.ts';
import { artifact } from '../../../e2e/support/tree.ts';
import { build } from './kustomize.ts';
import type { KustomizeFields } from './kustomize.ts';
import type { Manifest } from './objects.ts';

const cm = (name: string, extra = '') => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}`;
const deployment = (name: string, image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels: {app: ${name}}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
      - name: main
        image: ${image}
`;
const service = (name: string) =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports:\n  - port: 80\n`;

const ids = (objects: Manifest[]) =>
  objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort();
const find = (objects: Manifest[], kind: string) => objects.find((o) => o.kind === kind)!;

describe('kustomize build (real kustomize)', function () {
  this.timeout(60_000);
  let kustomizePath: string;

  before(function () {
    this.timeout(900_000);
    kustomizePath = join(resolveBinDir(), 'kustomize');
  });

  const run = (
    root: string,
    path: string | undefined,
    spec: KustomizeFields = {},
    binary = kustomizePath,
    timeoutMs = 30_000,
  ) => build(root, path, spec, { kustomizePath: binary, timeoutMs });
  const failure = async (root: string, path: string | undefined, spec: KustomizeFields = {}, binary = kustomizePath) =>
    run(root, path, spec, binary).then(
      () => expect.fail('expected the build to fail'),
      (e: unknown) => e as Error,
    );

  describe('plain manifests', () => {
    it('generates a kustomization.yaml listing every manifest, and subdirectories that have their own', async () => {
      const root = artifact({
        'deploy/web.yaml': deployment('web', 'nginx:1.0'),
        'deploy/more/config.yml': `${cm('a')}---\n${cm('b')}---\n`,
        'deploy/svc/kustomization.yaml': 'resources: [svc.yaml]\nnameSuffix: -x\n',
        'deploy/svc/svc.yaml': service('svc'),
        'deploy/svc/ignored.yaml': cm('not-listed-by-the-base'),
        'deploy/README.md': '# not a manifest',
        'deploy/data.json': '{}',
        'other/elsewhere.yaml': cm('outside-path'),
      });
      const objects = await run(root, './deploy');
      expect(ids(objects)).to.deep.equal(['ConfigMap//a', 'ConfigMap//b', 'Deployment//web', 'Service//svc-x']);
    });

    it('builds an empty directory to no objects', async () => {
      const root = artifact({ 'empty/README.md': 'nothing here' });
      expect(await run(root, 'empty')).to.deep.equal([]);
    });

    it('fails on a YAML file that holds no Kubernetes object, as Flux does, naming it', async () => {
      const root = artifact({ 'app/cm.yaml': cm('a'), 'app/values.yaml': 'replicas: 3\nimage: nginx\n' });
      const err = await failure(root, 'app');
      expect(err).to.be.instanceOf(BuildError);
      expect(err.message).to.equal(
        'failed to decode Kubernetes YAML from app/values.yaml: ' +
          'document 1 is not a Kubernetes object (it has no apiVersion, kind or metadata)',
      );
    });

    it('fails on broken YAML, naming the file and the document', async () => {
      const root = artifact({ 'app/broken.yaml': `${cm('ok')}---\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n` });
      const err = await failure(root, 'app');
      expect(err.message).to.match(
        /^failed to decode Kubernetes YAML from app\/broken\.yaml: document 2 is not valid YAML: /,
      );
    });
  });

  describe('spec.path', () => {
    const root = artifact({ 'app/cm.yaml': cm('a') });

    it('is relative to the artifact root, with or without ./ or /', async () => {
      expect(ids(await run(root, '/app'))).to.deep.equal(['ConfigMap//a']);
    });

    it('must exist, be a directory and stay inside the artifact', async () => {
      const missing = await failure(root, './nope');
      expect(missing).to.be.instanceOf(ArtifactError);
      expect(missing.message).to.equal("kustomization path not found: './nope' does not exist in the artifact");
      expect((await failure(root, 'app/cm.yaml')).message).to.equal(
        "kustomization path 'app/cm.yaml' is not a directory",
      );
      expect((await failure(root, '../etc')).message).to.equal("spec.path '../etc' points outside the artifact");
    });
  });

  describe("the Kustomization's own fields", () => {
    const files = {
      'apps/web/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: from-file
namePrefix: base-
resources:
  - deploy.yaml
  - svc.yaml
images:
  - name: nginx
    newName: registry.example/nginx
    newTag: "1.0"
  - name: busybox
    newTag: "1.10"
`,
      'apps/web/deploy.yaml': `${deployment('web', 'nginx:0.1')}      - name: sidecar
        image: busybox
      - name: cache
        image: redis:7
`,
      'apps/web/svc.yaml': service('web'),
      'apps/components/extra/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - extra.yaml
patches:
  - patch: |
      - op: add
        path: /metadata/annotations
        value: {component: extra}
    target: {kind: Service}
`,
      'apps/components/extra/extra.yaml': cm('extra'),
    };
    const spec: KustomizeFields = {
      targetNamespace: 'prod',
      namePrefix: 'p-',
      nameSuffix: '-s',
      images: [
        { name: 'nginx', newTag: '2.0' },
        { name: 'redis', digest: 'sha256:0000000000000000000000000000000000000000000000000000000000000001' },
      ],
      patches: [
        {
          patch: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: any\nspec:\n  replicas: 3\n',
          target: { kind: 'Deployment', labelSelector: 'app=web' },
        },
        { patch: '- op: add\n  path: /spec/ports/0/name\n  value: http\n', target: { kind: 'Service', name: 'web' } },
      ],
      components: ['../components/extra', '../components/not-there'],
      ignoreMissingComponents: true,
    };

    it('writes them into the kustomization file at spec.path, as Flux does', async () => {
      const root = artifact(files);
      const objects = await run(root, 'apps/web', spec);
      expect(ids(objects)).to.deep.equal([
        'ConfigMap/prod/p-extra-s',
        'Deployment/prod/p-web-s',
        'Service/prod/p-web-s',
      ]);
      const deploy = find(objects, 'Deployment') as Manifest & {
        spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
      };
      expect(deploy.spec.replicas).to.equal(3);
      // The spec's nginx entry replaces the file's (newName included); busybox keeps the file's 1.10.
      expect(deploy.spec.template.spec.containers.map((c) => c.image)).to.deep.equal([
        'nginx:2.0',
        'busybox:1.10',
        'redis@sha256:0000000000000000000000000000000000000000000000000000000000000001',
      ]);
      const svc = find(objects, 'Service') as Manifest & { spec: { ports: { name: string }[] } };
      expect(svc.spec.ports[0]!.name).to.equal('http');
      expect(svc.metadata.annotations).to.deep.equal({ component: 'extra' });
    });

    it('fails on a missing component unless ignoreMissingComponents is set', async () => {
      const err = await failure(artifact(files), 'apps/web', { ...spec, ignoreMissingComponents: false });
      expect(err.message).to.equal(
        "apps/web/kustomization.yaml: components entry '../components/not-there' does not exist",
      );
    });

    it('builds an empty kustomization to no objects', async () => {
      const root = artifact({
        'k/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n',
      });
      expect(await run(root, 'k')).to.deep.equal([]);
    });
  });

  describe('the artifact is only read', () => {
    /** Every file below `root` with its content, to compare before and after. */
    const snapshot = (root: string) =>
      Object.fromEntries(
        (
          readdirSync(root, { recursive: true, withFileTypes: true }) as {
            name: string;
            parentPath: string;
            isFile(): boolean;
          }[]
        )
          .filter((e) => e.isFile())
          .map((e) => [
            join(e.parentPath, e.name).slice(root.length),
            readFileSync(join(e.parentPath, e.name), 'utf8'),
          ]),
      );

    it('builds with fields and generated kustomizations without changing a file, also concurrently', async () => {
      const root = artifact({
        'base/kustomization.yaml': 'resources: [cm.yaml]\n',
        'base/cm.yaml': cm('base'),
        'apps/a/kustomization.yaml': 'resources: [../../base, cm.yaml]\nnamePrefix: file-\n',
        'apps/a/cm.yaml': cm('a'),
        'apps/b/cm.yaml': cm('b'),
        'apps/b/nested/kustomization.yaml': 'resources: [cm.yaml]\n',
        'apps/b/nested/cm.yaml': cm('nested'),
      });
      const before = snapshot(root);
      const results = await Promise.all([
        run(root, 'apps/a', { namePrefix: 'one-' }),
        run(root, 'apps/a', { namePrefix: 'two-', targetNamespace: 'x' }),
        run(root, 'apps/b', { nameSuffix: '-s' }),
        run(root, 'apps'),
        run(root, '.'),
      ]);
      expect(ids(results[0]!)).to.deep.equal(['ConfigMap//one-a', 'ConfigMap//one-base']);
      expect(ids(results[1]!)).to.deep.equal(['ConfigMap/x/two-a', 'ConfigMap/x/two-base']);
      expect(ids(results[2]!)).to.deep.equal(['ConfigMap//b-s', 'ConfigMap//nested-s']);
      // apps/ has no kustomization: its generated one lists b's manifests and a as a base, never another build's copy.
      expect(ids(results[3]!)).to.deep.equal([
        'ConfigMap//b',
        'ConfigMap//file-a',
        'ConfigMap//file-base',
        'ConfigMap//nested',
      ]);
      expect(ids(results[4]!)).to.deep.equal([
        'ConfigMap//b',
        'ConfigMap//base',
        'ConfigMap//file-a',
        'ConfigMap//file-base',
        'ConfigMap//nested',
      ]);
      expect(snapshot(root)).to.deep.equal(before);
      expect(readdirSync(join(root, 'apps'))).to.deep.equal(['a', 'b']);
    });

    it('names the path the user wrote in failures, never the scratch copy', async () => {
      const root = artifact({
        'apps/a/kustomization.yaml': 'resources: [cm.yaml, missing.yaml]\n',
        'apps/a/cm.yaml': cm('a'),
        'apps/b/kustomization.yaml': 'resources: [broken.yaml]\n',
        'apps/b/broken.yaml': 'kind: ConfigMap\n data: [\n',
      });
      expect((await failure(root, 'apps/a')).message).to.equal(
        "apps/a/kustomization.yaml: resources entry 'missing.yaml' does not exist",
      );
      const err = await failure(root, 'apps/b');
      expect(err.message).to.match(/^kustomize build failed: .*broken\.yaml/);
      expect(err.message).not.to.include('.tide-build-');
      expect(readdirSync(join(root, 'apps'))).to.deep.equal(['a', 'b']);
    });
  });

  describe('remote bases', () => {
    const remotes = [
      'https://github.com/org/repo//deploy?ref=main',
      'github.com/org/repo/deploy?ref=v1',
      'git::https://git.example.com/repo.git//deploy',
      'ssh://git@git.example.com/org/repo.git',
      'git@github.com:org/repo.git',
    ];

    it('are refused before kustomize runs, naming the file and the entry', async () => {
      for (const entry of remotes) {
        const root = artifact({
          'app/kustomization.yaml': 'resources: [../base]\n',
          'base/kustomization.yaml': `resources:\n- cm.yaml\n- ${entry}\n`,
          'base/cm.yaml': cm('a'),
        });
        // A kustomize that does not exist: the refusal must come first.
        const err = await failure(root, 'app', {}, '/nonexistent/kustomize');
        expect(err, entry).to.be.instanceOf(BuildError);
        expect(err.message).to.equal(
          `base/kustomization.yaml: resources entry '${entry}' is a remote base; ` +
            'remote bases are disabled, vendor it into the source instead',
        );
      }
    });

    it('are refused in components, bases and spec.components, and so are remote files', async () => {
      const root = artifact({
        'a/kustomization.yaml': 'components: [https://example.com/c]\n',
        'b/kustomization.yaml': 'bases: [github.com/org/repo]\n',
        'c/kustomization.yaml': 'resources: [cm.yaml]\npatches:\n- path: https://example.com/patch.yaml\n',
        'c/cm.yaml': cm('a'),
        'd/cm.yaml': cm('a'),
      });
      const none = '/nonexistent/kustomize';
      expect((await failure(root, 'a', {}, none)).message).to.match(
        /^a\/kustomization\.yaml: components entry 'https:\/\/example.com\/c' is a remote base/,
      );
      expect((await failure(root, 'b', {}, none)).message).to.match(
        /^b\/kustomization\.yaml: bases entry 'github.com\/org\/repo' is a remote base/,
      );
      expect((await failure(root, 'c', {}, none)).message).to.equal(
        "c/kustomization.yaml: remote file 'https://example.com/patch.yaml' is not allowed: remote bases are disabled",
      );
      expect((await failure(root, 'd', { components: ['github.com/org/comp'] }, none)).message).to.match(
        /^d\/kustomization\.yaml: components entry 'github.com\/org\/comp' is a remote base/,
      );
    });

    it('a local directory that looks like a host is still local', async () => {
      const root = artifact({
        'app/kustomization.yaml': 'resources: [example.com/base]\n',
        'app/example.com/base/kustomization.yaml': 'resources: [cm.yaml]\n',
        'app/example.com/base/cm.yaml': cm('a'),
      });
      expect(ids(await run(root, 'app'))).to.deep.equal(['ConfigMap//a']);
    });
  });

  describe('confinement', () => {
    it('refuses a base outside the artifact', async () => {
      const root = artifact({ 'app/kustomization.yaml': 'resources: [../../../etc]\n' });
      expect((await failure(root, 'app')).message).to.equal(
        "app/kustomization.yaml: resources entry '../../../etc' points outside the artifact",
      );
    });

    it('lets an overlay use files and bases elsewhere in the artifact, as Flux does', async () => {
      const root = artifact({
        'app/kustomization.yaml': 'resources: [../shared/cm.yaml]\n',
        'shared/cm.yaml': cm('a'),
      });
      expect(ids(await run(root, 'app'))).to.deep.equal(['ConfigMap//a']);
    });

    it('refuses generator and patch files outside the artifact', async () => {
      const gen = artifact({
        'app/kustomization.yaml': 'configMapGenerator:\n- name: leak\n  files: [../../../../../../etc/hostname]\n',
      });
      expect((await failure(gen, 'app')).message).to.equal(
        "app/kustomization.yaml: file '../../../../../../etc/hostname' points outside the artifact",
      );
      const patch = artifact({
        'app/kustomization.yaml': 'resources: [cm.yaml]\npatches:\n- path: /etc/passwd\n',
        'app/cm.yaml': cm('a'),
      });
      expect((await failure(patch, 'app')).message).to.equal(
        "app/kustomization.yaml: file '/etc/passwd' points outside the artifact",
      );
    });
  });

  describe('failures', () => {
    it('names the file when a resource is broken YAML, without the temporary directory', async () => {
      const root = artifact({
        'app/kustomization.yaml': 'resources: [good.yaml, broken.yaml]\n',
        'app/good.yaml': cm('a'),
        'app/broken.yaml': 'kind: ConfigMap\n data: [\n',
      });
      const err = await failure(root, 'app');
      expect(err).to.be.instanceOf(BuildError);
      expect(err.message).to.match(/^kustomize build failed: accumulating resources: .*broken\.yaml/);
      expect(err.message).not.to.include(root);
    });

    it('names a broken kustomization.yaml', async () => {
      const root = artifact({
        'app/kustomization.yaml': 'resources: [../base]\n',
        'base/kustomization.yaml': 'resources:\n  - [cm.yaml\n',
      });
      expect((await failure(root, 'app')).message).to.match(/^base\/kustomization\.yaml is not valid YAML: /);
      const top = artifact({ 'app/kustomization.yaml': 'resources: [a\n' });
      expect((await failure(top, 'app')).message).to.match(/^app\/kustomization\.yaml is not valid YAML: /);
    });

    it('passes on what kustomize says about an invalid kustomization', async () => {
      const root = artifact({
        'app/kustomization.yaml': 'resources: [cm.yaml]\nreplicas: not-a-list\n',
        'app/cm.yaml': cm('a'),
      });
      expect((await failure(root, 'app')).message).to.match(/^kustomize build failed: .+/);
    });

    it('stops kustomize at the timeout', async () => {
      const root = artifact({ 'app/cm.yaml': cm('a'), 'bin/kustomize': '#!/bin/sh\nexec /bin/sleep 30\n' });
      chmodSync(join(root, 'bin/kustomize'), 0o755);
      const started = Date.now();
      const err = await run(root, 'app', {}, join(root, 'bin/kustomize'), 300).catch((e: unknown) => e as Error);
      expect((err as Error).message).to.equal('kustomize build timed out after 300ms');
      expect(Date.now() - started).to.be.below(10_000);
    });

    it('says how to fix a kustomize that is not installed', async () => {
      const root = artifact({ 'app/cm.yaml': cm('a') });
      expect((await failure(root, 'app', {}, 'tide-no-such-kustomize')).message).to.equal(
        "kustomize binary 'tide-no-such-kustomize' not found on PATH; install kustomize or set --kustomize-path",
      );
    });
  });
});
