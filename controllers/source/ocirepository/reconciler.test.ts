import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { OCIRepositorySpec, OCIRepositoryStatus } from '../../api/source/ocirepository.ts';
import { findCondition } from '../../runtime/conditions.ts';
import { testContext } from '../../runtime/test-context.ts';
import { RegistryError, type ManifestJson } from '../oci/client.ts';
import { Storage } from '../storage.ts';
import { OCIRepositoryReconciler, highestTag, type OCIRepository, type Registry } from './reconciler.ts';

const CONTENT = 'application/vnd.cncf.flux.content.v1.tar+gzip';
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tgz(entries: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(entries)) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

function untar(gz: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tar.extract();
  return new Promise((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
      stream.on('end', () => {
        if (h.type === 'file') files.set(h.name, Buffer.concat(chunks).toString('utf8'));
        next();
      });
    });
    extract.on('finish', () => resolve(files));
    extract.on('error', reject);
    extract.end(gunzipSync(gz));
  });
}

/** An in-memory registry that records its calls. */
class FakeRegistry implements Registry {
  tags = new Map<string, string>();
  manifests = new Map<string, ManifestJson>();
  blobs = new Map<string, Buffer>();
  calls: string[] = [];
  failWith?: RegistryError;

  push(tag: string, layers: { mediaType: string; bytes: Buffer }[], annotations?: Record<string, string>): string {
    for (const l of layers) this.blobs.set(sha256(l.bytes), l.bytes);
    const manifest: ManifestJson = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.flux.config.v1+json', digest: sha256('{}'), size: 2 },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: sha256(l.bytes), size: l.bytes.length })),
      ...(annotations ? { annotations } : {}),
    };
    const digest = sha256(JSON.stringify(manifest));
    this.manifests.set(digest, manifest);
    this.tags.set(tag, digest);
    return digest;
  }

  private call(name: string) {
    this.calls.push(name);
    if (this.failWith) throw this.failWith;
  }

  listTags: Registry['listTags'] = async () => {
    this.call('listTags');
    return [...this.tags.keys()];
  };

  resolve: Registry['resolve'] = async (_repo, reference) => {
    this.call('resolve');
    const digest = this.tags.get(reference);
    if (!digest) throw new RegistryError('notFound', `manifest unknown: ${reference}`);
    return { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 };
  };

  manifest: Registry['manifest'] = async (_repo, reference) => {
    this.call('manifest');
    const json = this.manifests.get(reference)!;
    return { digest: reference, mediaType: json.mediaType!, size: 1, json, bytes: Buffer.from('') };
  };

  blobToFile: Registry['blobToFile'] = async (_repo, digest, dest) => {
    this.call('blobToFile');
    const bytes = this.blobs.get(digest)!;
    writeFileSync(dest, bytes);
    return { digest, size: bytes.length };
  };

  close(): void {}
}

describe('OCIRepository reconciler', () => {
  let root: string;
  let storage: Storage;
  let registry: FakeRegistry;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tide-oci-test-'));
    storage = new Storage({ root, advertisedBase: 'http://storage', retention: 2 });
    registry = new FakeRegistry();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const reconciler = () =>
    new OCIRepositoryReconciler({
      kubeConfig: {} as KubeConfig,
      storage,
      maxSize: 1 << 20,
      registry: () => registry,
    });

  function repo(spec: Partial<OCIRepositorySpec> = {}, status: OCIRepositoryStatus = {}): OCIRepository {
    return {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'OCIRepository',
      metadata: { name: 'app', namespace: 'ns', generation: 1, finalizers: ['finalizers.fluxcd.io'] },
      spec: { url: 'oci://registry.example/org/app', interval: '5m', ...spec },
      status,
    };
  }

  it('runs its steps in order', () => {
    expect(reconciler().recipe.steps.map((s) => s.name)).to.deep.equal([
      'finalizer',
      'validate',
      'storage',
      'credentials',
      'resolve',
      'pull',
      'artifact',
      'publish',
    ]);
  });

  it("pulls the 'latest' tag, extracts the first layer and re-packs it with the ignore rules", async () => {
    const layer = await tgz({ 'deploy/cm.yaml': 'kind: ConfigMap\n', 'logo.png': 'x', 'skip.txt': 'no' });
    const annotations = {
      'org.opencontainers.image.source': 'https://git/x',
      'org.opencontainers.image.revision': 'r1',
    };
    const digest = registry.push('latest', [{ mediaType: CONTENT, bytes: layer }], annotations);
    const obj = repo({ ignore: 'skip.txt' });
    const c = testContext(obj);
    const outcome = await reconciler().reconcile(obj, c);
    const revision = `latest@${digest}`;
    expect(outcome).to.deep.include({ type: 'success', message: `stored artifact for digest '${revision}'` });
    const artifact = c.status.artifact!;
    expect(artifact).to.include({ revision, path: `ocirepository/ns/app/${digest}.tar.gz` });
    expect(artifact.metadata).to.deep.equal(annotations);
    const stored = readFileSync(join(root, artifact.path));
    expect(sha256(stored)).to.equal(artifact.digest);
    expect(stored.length).to.equal(artifact.size);
    // spec.ignore replaces the default exclusions: logo.png stays, skip.txt goes.
    expect([...(await untar(stored)).keys()].sort()).to.deep.equal(['deploy/cm.yaml', 'logo.png']);
    expect(c.status.url).to.equal('http://storage/ocirepository/ns/app/latest.tar.gz');
    expect(c.status.observedIgnore).to.equal('skip.txt');
    expect(c.progressed).to.deep.equal(['processing object: new generation 0 -> 1']);
    expect(c.events).to.deep.equal([
      `NewArtifact: stored artifact with revision '${revision}' from 'oci://registry.example/org/app', ` +
        "origin source 'https://git/x', origin revision 'r1'",
    ]);
    expect(findCondition(c.status.conditions, 'ArtifactInStorage')).to.include({ status: 'True' });

    // Same digest, same configuration: nothing is pulled again.
    registry.calls = [];
    const again = repo({ ignore: 'skip.txt' }, { ...c.status, observedGeneration: 1 });
    const c2 = testContext(again);
    expect(await reconciler().reconcile(again, c2)).to.include({ type: 'success' });
    expect(registry.calls).to.deep.equal(['resolve']);
    expect(c2.status.artifact).to.deep.equal(artifact);
    expect(c2.events).to.deep.equal([]);

    // A new spec.ignore rebuilds from the same digest.
    registry.calls = [];
    const changed = repo({ ignore: 'logo.png' }, { ...c.status, observedGeneration: 1 });
    const c3 = testContext(changed);
    expect(await reconciler().reconcile(changed, c3)).to.include({ type: 'success' });
    expect(registry.calls).to.deep.equal(['resolve', 'manifest', 'blobToFile']);
    const rebuilt = readFileSync(join(root, c3.status.artifact!.path));
    expect([...(await untar(rebuilt)).keys()].sort()).to.deep.equal(['deploy/cm.yaml', 'skip.txt']);
  });

  it('picks the highest semver tag matching the filter; a digest ref wins over both', async () => {
    expect(highestTag(['1.0.0', '1.2.0', '2.0.0', 'latest', '1.3.0-rc.1'], '1.x', undefined, 'u')).to.equal('1.2.0');
    expect(highestTag(['1.0.0-dev', '1.1.0-dev', '1.2.0'], '>=1.0.0-0', '.*-dev$', 'u')).to.equal('1.1.0-dev');
    expect(() => highestTag(['1.0.0'], '>=2', undefined, 'oci://x/y'))
      .to.throw("failed to determine the artifact tag for 'oci://x/y': no match found for semver: >=2")
      .with.property('reason', 'ReadOperationFailed');

    const one = registry.push('1.0.0', [{ mediaType: CONTENT, bytes: await tgz({ 'a.yaml': '1' }) }]);
    const two = registry.push('1.1.0', [{ mediaType: CONTENT, bytes: await tgz({ 'a.yaml': '2' }) }]);
    const bySemver = repo({ ref: { semver: '1.x', tag: 'ignored' } });
    const c = testContext(bySemver);
    await reconciler().reconcile(bySemver, c);
    expect(c.status.artifact!.revision).to.equal(`1.1.0@${two}`);

    const byDigest = repo({ ref: { digest: one, semver: '1.x' } });
    const d = testContext(byDigest);
    await reconciler().reconcile(byDigest, d);
    expect(d.status.artifact!.revision).to.equal(one);
    expect(d.status.artifact!.path).to.equal(`ocirepository/ns/app/${one}.tar.gz`);
  });

  it('copies the selected layer as it is; a media type no layer has fails and keeps the artifact', async () => {
    const other = Buffer.from('not a tarball');
    const content = await tgz({ 'a.yaml': 'a' });
    registry.push('latest', [
      { mediaType: 'application/x-other', bytes: other },
      { mediaType: CONTENT, bytes: content },
    ]);
    const copy = repo({ layerSelector: { mediaType: CONTENT, operation: 'copy' } });
    const c = testContext(copy);
    expect(await reconciler().reconcile(copy, c)).to.include({ type: 'success' });
    expect(readFileSync(join(root, c.status.artifact!.path)).equals(content)).to.equal(true);
    expect(c.status.artifact!.digest).to.equal(sha256(content));
    expect(c.status.observedLayerSelector).to.deep.equal({ mediaType: CONTENT, operation: 'copy' });

    const missing = repo({ layerSelector: { mediaType: 'application/x-nope' } }, c.status);
    const m = testContext(missing);
    const outcome = await reconciler().reconcile(missing, m);
    expect(outcome).to.deep.include({
      type: 'error',
      reason: 'OCIArtifactLayerOperationFailed',
      message: "failed to find layer with media type 'application/x-nope' in artifact",
    });
    expect(m.status.artifact).to.deep.equal(c.status.artifact);
    expect(findCondition(m.status.conditions, 'FetchFailed')).to.include({ status: 'True' });
  });

  it('refuses a layer with an entry outside the artifact, keeping the last good artifact', async () => {
    registry.push('latest', [{ mediaType: CONTENT, bytes: await tgz({ 'ok.yaml': 'ok' }) }]);
    const obj = repo();
    const c = testContext(obj);
    await reconciler().reconcile(obj, c);
    const good = c.status.artifact!;
    registry.push('latest', [{ mediaType: CONTENT, bytes: await tgz({ '../evil.yaml': 'x' }) }]);
    const next = repo({}, c.status);
    const n = testContext(next);
    const outcome = await reconciler().reconcile(next, n);
    expect(outcome).to.include({ type: 'error', reason: 'OCIArtifactLayerOperationFailed' });
    expect(outcome.message).to.match(/^failed to extract layer contents from artifact: .*\.\.\/evil\.yaml/);
    expect(n.status.artifact).to.deep.equal(good);
    expect(readFileSync(join(root, good.path)).length).to.equal(good.size);
  });

  it('maps a missing tag to OCIArtifactPullFailed and a refused login to AuthenticationFailed', async () => {
    const obj = repo({ ref: { tag: 'nope' } });
    expect(await reconciler().reconcile(obj, testContext(obj))).to.deep.include({
      type: 'error',
      reason: 'OCIArtifactPullFailed',
      message: 'failed to determine artifact digest: manifest unknown: nope',
    });
    registry.failWith = new RegistryError('auth', 'authentication failed: registry.example answered 401');
    const denied = repo();
    const outcome = await reconciler().reconcile(denied, testContext(denied));
    expect(outcome).to.include({ type: 'error', reason: 'AuthenticationFailed' });
  });

  it('stalls on what it does not support: cloud providers and signature verification', async () => {
    for (const [spec, needle] of [
      [{ provider: 'aws' }, "spec.provider 'aws'"],
      [{ verify: { provider: 'cosign' } }, 'spec.verify (cosign'],
    ] as const) {
      const obj = repo(spec as Partial<OCIRepositorySpec>);
      const outcome = await reconciler().reconcile(obj, testContext(obj));
      expect(outcome).to.include({ type: 'stalled', reason: 'UnsupportedFeature' });
      expect(outcome.message).to.include(needle);
    }
    const bad = repo({ url: 'oci://registry.example/Org/app:v1' });
    expect(await reconciler().reconcile(bad, testContext(bad))).to.include({ type: 'stalled', reason: 'URLInvalid' });
  });
});
