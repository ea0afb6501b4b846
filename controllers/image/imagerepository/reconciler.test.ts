import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageRepositoryStatus } from '../../api/image/imagerepository.ts';
import { RegistryError } from '../../source/oci/client.ts';
import { testContext } from '../../runtime/test-context.ts';
import { TagStore } from '../tag-store.ts';
import { type ImageRepository, ImageRepositoryReconciler, type TagLister } from './reconciler.ts';

function imageRepository(spec: Partial<ImageRepository['spec']> = {}, status?: ImageRepositoryStatus): ImageRepository {
  return {
    apiVersion: 'image.toolkit.fluxcd.io/v1',
    kind: 'ImageRepository',
    metadata: { name: 'app', namespace: 'ns', generation: 1, finalizers: ['finalizers.fluxcd.io'] },
    spec: { image: 'registry.example:5000/team/app', interval: '5m', exclusionList: ['^.*\\.sig$'], ...spec },
    ...(status ? { status } : {}),
  };
}

describe('ImageRepositoryReconciler', () => {
  let dir: string;
  let tags: TagStore;
  let listed: number;
  let answer: () => Promise<string[]>;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tide-imagerepo-'));
    tags = new TagStore(dir);
    listed = 0;
    answer = async () => ['1.0.0', '1.2.4', 'sha256-abc.sig', 'latest'];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const reconciler = () =>
    new ImageRepositoryReconciler({
      kubeConfig: {} as KubeConfig,
      tags,
      compilePattern: (p) => new RegExp(p),
      registry: (): TagLister => ({
        listTags: async () => {
          listed++;
          return answer();
        },
        close: () => {},
      }),
    });

  it('scans, leaves out excluded tags, stores them and sums them up in status', async () => {
    const obj = imageRepository();
    const ctx = testContext(obj);
    const outcome = await reconciler().reconcile(obj, ctx);
    expect(outcome).to.deep.include({ type: 'success', requeueAfterMs: 300_000 });
    const revision = ctx.status.lastScanResult?.revision;
    expect(outcome.message).to.equal(`successful scan: found 3 tags with checksum ${revision}`);
    expect(ctx.status.canonicalImageName).to.equal('registry.example:5000/team/app');
    expect(ctx.status.lastScanResult).to.deep.include({ tagCount: 3, latestTags: ['latest', '1.2.4', '1.0.0'] });
    expect(ctx.status.observedExclusionList).to.deep.equal(['^.*\\.sig$']);
    expect(await tags.read('ns/app')).to.deep.equal(['1.0.0', '1.2.4', 'latest']);

    // Not due yet: no scan, and the next reconcile is when the interval is over.
    const later = imageRepository({}, { ...ctx.status, observedGeneration: 1 });
    const ctx2 = testContext(later);
    const again = await reconciler().reconcile(later, ctx2);
    expect(listed).to.equal(1);
    expect(again).to.deep.include({ type: 'success', message: outcome.message, requeueAfterMs: 300_000 });
  });

  it('names what cannot work: a cloud provider, an image with a tag, wrong credentials', async () => {
    const aws = imageRepository({ provider: 'aws' });
    const o1 = await reconciler().reconcile(aws, testContext(aws));
    expect(o1).to.deep.include({ type: 'stalled', reason: 'UnsupportedFeature' });
    expect(o1.message).to.contain("'aws'");
    const tagged = imageRepository({ image: 'registry.example/app:1.0' });
    const o2 = await reconciler().reconcile(tagged, testContext(tagged));
    expect(o2).to.deep.include({ type: 'stalled', reason: 'ImageURLInvalid' });
    expect(o2.message).to.contain('image must not contain a tag');
    answer = async () => {
      throw new RegistryError('auth', 'registry.example:5000 answered 401 Unauthorized for team/app');
    };
    const obj = imageRepository();
    const o3 = await reconciler().reconcile(obj, testContext(obj));
    expect(o3).to.deep.include({ type: 'error', reason: 'AuthenticationFailed' });
    answer = async () => {
      throw new RegistryError('network', 'connect ECONNREFUSED 127.0.0.1:5000');
    };
    const o4 = await reconciler().reconcile(obj, testContext(obj));
    expect(o4).to.deep.include({ type: 'error', reason: 'ReadOperationFailed' });
    expect(await tags.read('ns/app')).to.equal(undefined);
  });
});
