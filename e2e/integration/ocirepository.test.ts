// OCIRepository against the real distribution registry: artifacts pushed with Flux's media types,
// resolved by tag, semver range (with a tag filter) and digest; layers extracted and re-packed, or
// copied; credentials from a dockerconfigjson Secret or a ServiceAccount's image pull secrets,
// over TLS with the CA of certSecretRef, or plain HTTP with spec.insecure.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { OCIRepositoryKind, type OCIRepositorySpec } from '../../controllers/api/source/ocirepository.ts';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import type { Manager } from '../../controllers/runtime/manager.ts';
import type { OCIRepository } from '../../controllers/source/ocirepository/reconciler.ts';
import { kubeConfig } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { sourceHelpers } from '../support/gitrepository.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { pushArtifact, startRegistry, type TestRegistry } from '../support/registry.ts';
import { startSourceManager } from '../support/source-manager.ts';

const PASSWORD = 'oc1-pa55word';
const CONFIG = 'application/vnd.cncf.flux.config.v1+json';
const CONTENT = 'application/vnd.cncf.flux.content.v1.tar+gzip';
const SHARD = 'sharding.fluxcd.io/key';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A .tar.gz of the entries, names as given (so `../x` can be written). */
async function tgz(entries: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(entries)) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

/** Pushes a Flux artifact (config + one content layer, or the layers given) as repo:tag. */
async function pushFlux(
  registry: TestRegistry,
  repo: string,
  tag: string,
  files: Record<string, string> | { mediaType: string; bytes: Buffer }[],
  annotations?: Record<string, string>,
): Promise<string> {
  const layers = Array.isArray(files) ? files : [{ mediaType: CONTENT, bytes: await tgz(files) }];
  return pushArtifact(registry, repo, tag, {
    config: { mediaType: CONFIG, bytes: '{}' },
    layers,
    ...(annotations ? { annotations } : {}),
  });
}

describe('OCIRepository', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let ns: string;
  let plain: TestRegistry;
  let secure: TestRegistry;
  let manager: Manager | undefined;

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    [plain, secure] = await Promise.all([
      startRegistry(),
      startRegistry({ auth: { username: 'puller', password: PASSWORD }, tls: true }),
    ]);
    manager = await startSourceManager(kc, `${SHARD}!=none`);
  });

  after(async () => {
    await manager?.stop();
    await Promise.all([plain, secure].map((r) => r?.stop()));
  });

  beforeEach(async function () {
    ns = await createTestNamespace(kc, this.currentTest?.title.slice(0, 30) ?? 'ocirepo');
  });

  afterEach(async () => {
    await deleteNamespace(kc, ns);
  });

  const { create, get, patchSpec, requestReconcile, ready, notReady, download, downloadRaw, eventMessages } =
    sourceHelpers<OCIRepository, OCIRepositorySpec>(OCIRepositoryKind, {
      kc: () => kc,
      ns: () => ns,
      checkSize: true,
    });

  const core = () => kc.makeApiClient(CoreV1Api);

  async function dockerSecret(name: string, registry: TestRegistry, password: string): Promise<void> {
    const auth = Buffer.from(`puller:${password}`).toString('base64');
    await core().createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name },
        type: 'kubernetes.io/dockerconfigjson',
        stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [registry.host]: { auth } } }) },
      },
    });
  }

  async function caSecret(name: string): Promise<void> {
    await core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name }, stringData: { 'ca.crt': secure.ca! } },
    });
  }

  it('pulls a tag into an artifact named by digest, with the annotations, and follows a new push', async () => {
    const repo = `${ns}/app`;
    const annotations = {
      'org.opencontainers.image.source': 'https://github.com/example/app',
      'org.opencontainers.image.revision': 'main@sha1:0123456789abcdef',
    };
    const first = await pushFlux(plain, repo, 'latest', { 'deploy/cm.yaml': 'kind: ConfigMap\n' }, annotations);
    const url = `${plain.url}/${repo}`;
    await create('app', { url, insecure: true });
    const o = await ready('app');
    const artifact = o.status!.artifact!;
    expect(artifact.revision).to.equal(`latest@${first}`);
    expect(artifact.path).to.equal(`ocirepository/${ns}/app/${first}.tar.gz`);
    expect((artifact as { metadata?: unknown }).metadata).to.deep.equal(annotations);
    expect([...(await download(o)).entries()]).to.deep.equal([['deploy/cm.yaml', 'kind: ConfigMap\n']]);
    expect(o.status!.url).to.match(/\/ocirepository\/[^/]+\/app\/latest\.tar\.gz$/);
    expect(findCondition(o.status?.conditions, 'Ready')?.message).to.equal(
      `stored artifact for digest 'latest@${first}'`,
    );
    expect(await eventMessages()).to.include(
      `NewArtifact: stored artifact with revision 'latest@${first}' from '${url}', ` +
        `origin source 'https://github.com/example/app', origin revision 'main@sha1:0123456789abcdef'`,
    );

    const second = await pushFlux(plain, repo, 'latest', { 'deploy/cm.yaml': 'kind: ConfigMap # v2\n' });
    const at = await requestReconcile('app');
    const next = await ready('app', at);
    expect(next.status!.artifact!.revision).to.equal(`latest@${second}`);
    expect((await download(next)).get('deploy/cm.yaml')).to.equal('kind: ConfigMap # v2\n');
  });

  it('resolves a semver range among the filtered tags, and a digest over both', async () => {
    const repo = `${ns}/versions`;
    const v100 = await pushFlux(plain, repo, '1.0.0', { 'v.txt': '1.0.0' });
    await pushFlux(plain, repo, '1.1.0', { 'v.txt': '1.1.0' });
    await pushFlux(plain, repo, '1.2.0-rc.1', { 'v.txt': '1.2.0-rc.1' });
    await pushFlux(plain, repo, '2.0.0', { 'v.txt': '2.0.0' });
    const url = `${plain.url}/${repo}`;
    await create('range', { url, insecure: true, ref: { semver: '1.x' } });
    expect((await ready('range')).status!.artifact!.revision).to.match(/^1\.1\.0@sha256:/);
    await create('filtered', { url, insecure: true, ref: { semver: '>=1.0.0-0 <2.0.0', semverFilter: '-rc\\.' } });
    expect((await ready('filtered')).status!.artifact!.revision).to.match(/^1\.2\.0-rc\.1@sha256:/);
    await create('digest', { url, insecure: true, ref: { digest: v100, semver: '1.x' } });
    const byDigest = await ready('digest');
    expect(byDigest.status!.artifact!.revision).to.equal(v100);
    expect((await download(byDigest)).get('v.txt')).to.equal('1.0.0');
    await create('nomatch', { url, insecure: true, ref: { semver: '>=3' } });
    const none = await notReady('nomatch', 'ReadOperationFailed');
    expect(findCondition(none.status?.conditions, 'Ready')?.message).to.include('no match found for semver: >=3');
  });

  it('extracts the selected layer, copies it with operation copy, and names a media type no layer has', async () => {
    const repo = `${ns}/layers`;
    const manifests = await tgz({ 'a.yaml': 'a: 1\n' });
    await pushFlux(plain, repo, 'v1', [
      { mediaType: 'application/vnd.example.notes.v1', bytes: Buffer.from('release notes') },
      { mediaType: CONTENT, bytes: manifests },
    ]);
    const url = `${plain.url}/${repo}`;
    await create('extract', { url, insecure: true, ref: { tag: 'v1' }, layerSelector: { mediaType: CONTENT } });
    const extracted = await ready('extract');
    expect([...(await download(extracted)).keys()]).to.deep.equal(['a.yaml']);
    expect(extracted.status!.observedLayerSelector).to.deep.equal({ mediaType: CONTENT });

    await create('copy', {
      url,
      insecure: true,
      ref: { tag: 'v1' },
      layerSelector: { mediaType: CONTENT, operation: 'copy' },
    });
    const copied = await ready('copy');
    expect((await downloadRaw(copied)).equals(manifests)).to.equal(true);
    expect(copied.status!.artifact!.digest).to.equal(sha256(manifests));

    await patchSpec('extract', { layerSelector: { mediaType: 'application/vnd.example.missing' } });
    const failed = await notReady('extract', 'OCIArtifactLayerOperationFailed');
    expect(findCondition(failed.status?.conditions, 'Ready')?.message).to.equal(
      "failed to find layer with media type 'application/vnd.example.missing' in artifact",
    );
    expect(failed.status!.artifact).to.deep.equal(extracted.status!.artifact);
  });

  it('authenticates with a dockerconfigjson secretRef over TLS with the CA of certSecretRef', async () => {
    const repo = `${ns}/private`;
    const digest = await pushFlux(secure, repo, 'v1', { 'private.yaml': 'secret: no\n' });
    const url = `${secure.url}/${repo}`;
    await caSecret('ca');
    await dockerSecret('pull', secure, PASSWORD);
    await create('private', { url, ref: { tag: 'v1' }, secretRef: { name: 'pull' }, certSecretRef: { name: 'ca' } });
    const o = await ready('private');
    expect(o.status!.artifact!.revision).to.equal(`v1@${digest}`);
    expect((await download(o)).get('private.yaml')).to.equal('secret: no\n');

    await dockerSecret('wrong', secure, 'not-the-password');
    await create('wrong', { url, ref: { tag: 'v1' }, secretRef: { name: 'wrong' }, certSecretRef: { name: 'ca' } });
    const denied = await notReady('wrong', 'AuthenticationFailed');
    expect(JSON.stringify(denied.status)).to.not.include('not-the-password');
    expect(JSON.stringify(denied.status)).to.not.include(Buffer.from('puller:not-the-password').toString('base64'));
    expect((await eventMessages()).join('\n')).to.not.include('not-the-password');

    await create('anonymous', { url, ref: { tag: 'v1' }, certSecretRef: { name: 'ca' } });
    await notReady('anonymous', 'AuthenticationFailed');
    await create('noca', { url, ref: { tag: 'v1' }, secretRef: { name: 'pull' } });
    const untrusted = await notReady('noca', 'OCIArtifactPullFailed');
    expect(findCondition(untrusted.status?.conditions, 'Ready')?.message).to.match(/certificate/i);
  });

  it('uses the image pull secrets of spec.serviceAccountName', async () => {
    const repo = `${ns}/viasa`;
    const digest = await pushFlux(secure, repo, 'v1', { 'sa.yaml': 'via: sa\n' });
    await caSecret('ca');
    await dockerSecret('other-registry', plain, 'unused');
    await dockerSecret('pull', secure, PASSWORD);
    await core().createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'puller' }, imagePullSecrets: [{ name: 'other-registry' }, { name: 'pull' }] },
    });
    await create('viasa', {
      url: `${secure.url}/${repo}`,
      ref: { tag: 'v1' },
      serviceAccountName: 'puller',
      certSecretRef: { name: 'ca' },
    });
    expect((await ready('viasa')).status!.artifact!.revision).to.equal(`v1@${digest}`);
  });

  it('talks plain HTTP only with insecure; a missing tag is OCIArtifactPullFailed', async () => {
    const repo = `${ns}/plain`;
    await pushFlux(plain, repo, 'v1', { 'a.yaml': 'a' });
    const url = `${plain.url}/${repo}`;
    await create('https', { url, ref: { tag: 'v1' } });
    await notReady('https', 'OCIArtifactPullFailed');
    await create('missing', { url, insecure: true, ref: { tag: 'v9' } });
    const missing = await notReady('missing', 'OCIArtifactPullFailed');
    expect(findCondition(missing.status?.conditions, 'Ready')?.message).to.match(
      /^failed to determine artifact digest: .*v9/,
    );
    expect(findCondition(missing.status?.conditions, 'FetchFailed')).to.include({ status: 'True' });
  });

  it('refuses a layer with an entry outside the artifact, and keeps the last good artifact', async () => {
    const repo = `${ns}/evil`;
    const good = await pushFlux(plain, repo, 'latest', { 'ok.yaml': 'ok' });
    await create('evil', { url: `${plain.url}/${repo}`, insecure: true });
    const before = await ready('evil');
    expect(before.status!.artifact!.revision).to.equal(`latest@${good}`);
    await pushFlux(plain, repo, 'latest', { '../escape.yaml': 'x' });
    const at = await requestReconcile('evil');
    const after = await notReady('evil', 'OCIArtifactLayerOperationFailed', { requestedAt: at });
    expect(findCondition(after.status?.conditions, 'Ready')?.message).to.match(
      /^failed to extract layer contents from artifact: .*\.\.\/escape\.yaml/,
    );
    expect(after.status!.artifact).to.deep.equal(before.status!.artifact);
    expect((await download(after)).get('ok.yaml')).to.equal('ok');
    expect((await get('evil')).status!.url).to.equal(before.status!.url);
  });

  it('stalls on a cloud provider and on spec.verify, naming them', async () => {
    await create('aws', { url: `${plain.url}/${ns}/x`, provider: 'aws' });
    const aws = await notReady('aws', 'UnsupportedFeature', { stalled: true });
    expect(findCondition(aws.status?.conditions, 'Ready')?.message).to.include("spec.provider 'aws'");
    await create('verify', { url: `${plain.url}/${ns}/x`, verify: { provider: 'cosign' } });
    const verify = await notReady('verify', 'UnsupportedFeature', { stalled: true });
    expect(findCondition(verify.status?.conditions, 'Ready')?.message).to.include('spec.verify');
  });
});
