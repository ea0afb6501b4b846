import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImagePolicyStatus } from '../../api/image/imagepolicy.ts';
import type { Informer } from '../../runtime/informer.ts';
import { testContext } from '../../runtime/test-context.ts';
import type { ImageRepository } from '../imagerepository/reconciler.ts';
import { TagStore } from '../tag-store.ts';
import { type ImagePolicy, ImagePolicyReconciler } from './reconciler.ts';

const repository: ImageRepository = {
  metadata: { name: 'app', namespace: 'team' },
  spec: {
    image: 'registry.example/team/app',
    interval: '5m',
    accessFrom: { namespaceSelectors: [{ matchLabels: { env: 'prod' } }] },
  },
  status: { lastScanResult: { tagCount: 3, revision: 'sha256:x' } },
};

function policy(spec: Partial<ImagePolicy['spec']> = {}, status?: ImagePolicyStatus, namespace = 'team'): ImagePolicy {
  return {
    metadata: { name: 'p', namespace, generation: 1 },
    spec: { imageRepositoryRef: { name: 'app', namespace: 'team' }, policy: { semver: { range: '>=1.0.0' } }, ...spec },
    ...(status ? { status } : {}),
  };
}

describe('ImagePolicyReconciler', () => {
  let dir: string;
  let tags: TagStore;
  let resolved: number;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tide-policy-'));
    tags = new TagStore(dir);
    await tags.write('team/app', ['1.0.0', 'v1.3.0', '1.2.9', 'latest']);
    resolved = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const reconciler = (labels: Record<string, string> = {}) =>
    new ImagePolicyReconciler({
      kubeConfig: {} as KubeConfig,
      repositories: { get: (k: string) => (k === 'team/app' ? repository : undefined) } as Informer<ImageRepository>,
      tags,
      requeueDependencyMs: 1000,
      namespaceHasLabels: async (_ns, want) => Object.entries(want).every(([k, v]) => labels[k] === v),
      registry: () => ({
        resolve: async () => {
          resolved++;
          return {
            digest: `sha256:${'a'.repeat(64)}`,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            size: 1,
          };
        },
        close: () => {},
      }),
    });

  it('selects the latest tag, keeps the leading v, and says what it resolved', async () => {
    const obj = policy();
    const ctx = testContext(obj);
    const outcome = await reconciler().reconcile(obj, ctx);
    expect(outcome).to.deep.include({
      type: 'success',
      message: 'Latest image tag for registry.example/team/app resolved to v1.3.0',
    });
    expect(ctx.status.latestRef).to.deep.equal({ name: 'registry.example/team/app', tag: 'v1.3.0' });
    expect(outcome.requeueAfterMs).to.equal(undefined);
  });

  it('reflects the digest: IfNotPresent keeps the one it has for the same tag, Always asks every time', async () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const known = { latestRef: { name: 'registry.example/team/app', tag: 'v1.3.0', digest } };
    const keep = policy({ digestReflectionPolicy: 'IfNotPresent' }, known);
    const ctx = testContext(keep);
    await reconciler().reconcile(keep, ctx);
    expect(ctx.status.latestRef?.digest).to.equal(digest);
    expect(resolved).to.equal(0);
    const always = policy({ digestReflectionPolicy: 'Always', interval: '2m' }, known);
    const ctx2 = testContext(always);
    const outcome = await reconciler().reconcile(always, ctx2);
    expect(resolved).to.equal(1);
    expect(ctx2.status.latestRef?.digest).to.equal(`sha256:${'a'.repeat(64)}`);
    expect(ctx2.status.observedPreviousRef?.digest).to.equal(digest);
    expect(outcome.requeueAfterMs).to.equal(120_000);
    expect(outcome.message).to.contain('(previously registry.example/team/app:v1.3.0@sha256:bbb');
  });

  it('lets another namespace in only as the repository’s accessFrom allows', async () => {
    const other = policy({}, undefined, 'apps');
    expect(await reconciler({ env: 'dev' }).reconcile(other, testContext(other))).to.deep.include({
      type: 'error',
      reason: 'AccessDenied',
    });
    expect((await reconciler({ env: 'prod' }).reconcile(other, testContext(other))).type).to.equal('success');
  });

  it('waits for a repository that is missing or not scanned, and reports a policy that matches nothing', async () => {
    const missing = policy({ imageRepositoryRef: { name: 'nope' } });
    expect(await reconciler().reconcile(missing, testContext(missing))).to.deep.include({
      type: 'waiting',
      reason: 'DependencyNotReady',
    });
    const none = policy({ policy: { semver: { range: '>=2.0.0' } } });
    expect(await reconciler().reconcile(none, testContext(none))).to.deep.include({
      type: 'error',
      reason: 'Failure',
      message: 'unable to determine latest version from provided list',
    });
    const filtered = policy({ filterTags: { pattern: '^nothing$' } });
    expect(await reconciler().reconcile(filtered, testContext(filtered))).to.deep.include({
      type: 'error',
      message: 'version list argument cannot be empty',
    });
    const invalid = policy({ policy: {} });
    expect(await reconciler().reconcile(invalid, testContext(invalid))).to.deep.include({
      type: 'stalled',
      reason: 'InvalidPolicy',
    });
  });
});
