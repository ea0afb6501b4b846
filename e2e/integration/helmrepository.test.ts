// HelmRepository against real chart repositories: `helm package` + `helm repo index` output served
// over HTTP (anonymous and basic auth) and HTTPS with its own CA, the index validated by Helm's own
// loader in the Helm helper, published unchanged as index-<sha256>.yaml.
import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HelmRepositoryKind, type HelmRepositorySpec } from '../../controllers/api/source/helmrepository.ts';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import type { HelmRepository } from '../../controllers/source/helmrepository/reconciler.ts';
import { startChartRepo, type ChartRepo } from '../support/chartrepo.ts';
import { kubeConfig } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { sourceHelpers } from '../support/gitrepository.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { freePort } from '../support/net.ts';
import { startSourceManager } from '../support/source-manager.ts';
import type { Manager } from '../../controllers/runtime/manager.ts';

const PASSWORD = 'ch4rt-pa55word';
const SHARD = 'sharding.fluxcd.io/key';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('HelmRepository', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let ns: string;
  let anon: ChartRepo;
  let basic: ChartRepo;
  let secure: ChartRepo;
  let managers: Manager[] = [];

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    [anon, basic, secure] = await Promise.all([
      startChartRepo(),
      startChartRepo({ auth: { username: 'charts', password: PASSWORD } }),
      startChartRepo({ tls: true }),
    ]);
    for (const repo of [anon, basic, secure]) await repo.publish({ name: 'podinfo', version: '6.0.0' });
    managers.push(await startSourceManager(kc, `${SHARD}!=small`));
    // A shard whose index size limit is tiny.
    managers.push(await startSourceManager(kc, `${SHARD}=small`, ['--helm-index-max-size=200']));
  });

  after(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    managers = [];
    await Promise.all([anon, basic, secure].map((r) => r?.close()));
  });

  beforeEach(async function () {
    ns = await createTestNamespace(kc, this.currentTest?.title.slice(0, 30) ?? 'helmrepo');
  });

  afterEach(async () => {
    await deleteNamespace(kc, ns);
  });

  const { create, get, patchSpec, requestReconcile, secret, ready, notReady, downloadRaw, eventMessages } =
    sourceHelpers<HelmRepository, HelmRepositorySpec>(HelmRepositoryKind, {
      kc: () => kc,
      ns: () => ns,
      checkSize: true,
    });

  it('publishes the index as fetched, revision its sha256, with a stable index.yaml URL', async () => {
    await create('podinfo', { url: anon.url });
    const o = await ready('podinfo');
    const served = readFileSync(join(anon.dir, 'index.yaml'));
    const artifact = o.status!.artifact!;
    expect(artifact.revision).to.equal(sha256(served));
    expect(artifact.digest).to.equal(artifact.revision);
    expect(artifact.path).to.equal(`helmrepository/${ns}/podinfo/index-${artifact.revision.slice(7)}.yaml`);
    expect((await downloadRaw(o)).equals(served)).to.equal(true);
    expect(o.status!.url).to.match(/\/helmrepository\/[^/]+\/podinfo\/index\.yaml$/);
    const viaLink = Buffer.from(await (await fetch(o.status!.url!)).arrayBuffer());
    expect(viaLink.equals(served)).to.equal(true);
    expect(findCondition(o.status?.conditions, 'Ready')?.message).to.equal(
      `stored artifact: revision '${artifact.revision}'`,
    );
    expect(findCondition(o.status?.conditions, 'ArtifactInStorage')).to.include({ status: 'True' });
    const events = await eventMessages();
    expect(
      events.some((e) => /^NewArtifact: fetched index of size [\d.]+k?B from 'http:\/\/127\.0\.0\.1:\d+\/'$/.test(e)),
    ).to.equal(true, events.join('\n'));
  });

  it('picks up a new chart version as a new revision, and drops the old artifact beyond retention', async () => {
    const repo = await startChartRepo();
    try {
      await repo.publish({ name: 'app', version: '1.0.0' });
      await create('app', { url: repo.url });
      const first = await ready('app');
      await repo.publish({ name: 'app', version: '1.1.0' });
      const at = await requestReconcile('app');
      const second = await ready('app', at);
      expect(second.status!.artifact!.revision).to.not.equal(first.status!.artifact!.revision);
      expect(second.status!.artifact!.revision).to.equal(sha256(readFileSync(join(repo.dir, 'index.yaml'))));
    } finally {
      await repo.close();
    }
  });

  it('authenticates with basic auth from secretRef and never shows the password', async () => {
    await create('noauth', { url: basic.url });
    const denied = await notReady('noauth', 'AuthenticationFailed');
    expect(findCondition(denied.status?.conditions, 'FetchFailed')?.message).to.include('401');

    await secret('creds', { username: 'charts', password: 'wrong-password' });
    await create('wrong', { url: basic.url, secretRef: { name: 'creds' } });
    const wrong = await notReady('wrong', 'AuthenticationFailed');
    expect(JSON.stringify(wrong.status)).to.not.include('wrong-password');

    await secret('good', { username: 'charts', password: PASSWORD });
    await create('good', { url: basic.url, secretRef: { name: 'good' } });
    const o = await ready('good');
    expect(JSON.stringify(o.status)).to.not.include(PASSWORD);
    expect((await eventMessages()).join('\n')).to.not.include(PASSWORD);
    expect(basic.requests.some((r) => r.authorized && r.path === '/index.yaml' && r.status === 200)).to.equal(true);
  });

  it('trusts the CA of certSecretRef over HTTPS, and says why without it', async () => {
    await create('untrusted', { url: secure.url });
    const o = await notReady('untrusted', 'Failed');
    expect(findCondition(o.status?.conditions, 'Ready')?.message).to.match(/TLS|certificate/i);

    await secret('ca', { 'ca.crt': secure.caPem! });
    await create('trusted', { url: secure.url, certSecretRef: { name: 'ca' } });
    await ready('trusted');
  });

  it('answers a missing secret with AuthenticationFailed, a broken index with IndexationFailed', async () => {
    await create('nosecret', { url: anon.url, secretRef: { name: 'missing' } });
    const o = await notReady('nosecret', 'AuthenticationFailed');
    expect(findCondition(o.status?.conditions, 'Ready')?.message).to.include(`secret '${ns}/missing' not found`);

    const repo = await startChartRepo();
    try {
      await repo.publish({ name: 'app', version: '1.0.0' });
      await create('broken', { url: repo.url });
      const good = await ready('broken');
      repo.writeIndex('apiVersion: v1\nentries: [this is: not, {valid');
      const at = await requestReconcile('broken');
      const bad = await notReady('broken', 'IndexationFailed', { requestedAt: at });
      expect(findCondition(bad.status?.conditions, 'Ready')?.message).to.include(
        'failed to load Helm repository from index YAML',
      );
      // The last good artifact stays, and can still be downloaded.
      expect(bad.status!.artifact).to.deep.equal(good.status!.artifact);
      await downloadRaw(bad);
    } finally {
      await repo.close();
    }
  });

  it('answers an unreachable server or a 404 with Failed, and an index over --helm-index-max-size', async () => {
    const port = await freePort();
    await create('refused', { url: `http://127.0.0.1:${port}` });
    const refused = await notReady('refused', 'Failed');
    expect(findCondition(refused.status?.conditions, 'Ready')?.message).to.include('connection refused');

    await create('missing', { url: `${anon.url}/nothing-here` });
    const missing = await notReady('missing', 'Failed');
    expect(findCondition(missing.status?.conditions, 'FetchFailed')?.message).to.include('404');

    await create('big', { url: anon.url }, { [SHARD]: 'small' });
    const big = await notReady('big', 'Failed');
    expect(findCondition(big.status?.conditions, 'Ready')?.message).to.include('exceeds the size limit of 200 bytes');
  });

  it('rejects a URL with an unsupported scheme as Stalled URLInvalid', async () => {
    await create('ftp', { url: 'ftp://example.com/charts' } as Partial<HelmRepositorySpec>).then(
      () => expect.fail('the API server accepted an ftp URL'),
      (err: unknown) => expect(String(err)).to.match(/spec\.url/),
    );
    await create('oci-as-default', { url: 'oci://127.0.0.1:5000/charts' });
    await notReady('oci-as-default', 'URLInvalid', { stalled: true });
  });

  it('treats type oci as a data container: Ready, no artifact', async () => {
    await create('registry', { url: 'oci://127.0.0.1:5000/charts', type: 'oci' });
    const o = await ready('registry');
    expect(o.status?.artifact).to.equal(undefined);
    expect(findCondition(o.status?.conditions, 'ArtifactInStorage')).to.equal(undefined);
    // Switching a default repository to oci drops its artifact.
    await create('switch', { url: anon.url });
    await ready('switch');
    await patchSpec('switch', { type: 'oci', url: 'oci://127.0.0.1:5000/charts' });
    await eventually(async () => {
      const s = await get('switch');
      expect(s.status?.observedGeneration).to.equal(2);
      expect(s.status?.artifact).to.equal(undefined);
    });
  });
});
