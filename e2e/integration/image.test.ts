// ImageRepository and ImagePolicy against the real CNCF distribution registry with htpasswd auth:
// tags pushed by the test are scanned through a dockerconfigjson secretRef, excluded ones left
// out, a new tag seen on the next requested scan and selected by the policies at once, wrong
// credentials answered with AuthenticationFailed, and a policy that matches nothing reported.
import { CoreV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { ImagePolicyKind, type ImagePolicyStatus } from '../../controllers/api/image/imagepolicy.ts';
import { ImageRepositoryKind, type ImageRepositoryStatus } from '../../controllers/api/image/imagerepository.ts';
import { resourceTypeOf } from '../../controllers/api/kind.ts';
import { apiClientFor } from '../../controllers/runtime/apply/client.ts';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import type { Manager } from '../../controllers/runtime/manager.ts';
import { kubeConfig } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { startImageManager } from '../support/image-manager.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { pushArtifact, startRegistry, type TestRegistry } from '../support/registry.ts';

const LABEL = 'tide.test/suite';
const labels = { [LABEL]: 'imagerepository' };
const PASSWORD = 'sc4n-pa55word';

describe('ImageRepository', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let ns: string;
  let registry: TestRegistry;
  let manager: Manager;
  const rt = resourceTypeOf(ImageRepositoryKind);

  const image = { layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', bytes: 'layer' }] };

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    registry = await startRegistry({ auth: { username: 'scanner', password: PASSWORD } });
    for (const tag of ['1.2.2', '1.2.3', 'latest', 'sha256-0123.sig'])
      await pushArtifact(registry, 'team/app', tag, image);
    ns = await createTestNamespace(kc, 'imgrepo');
    const core = kc.makeApiClient(CoreV1Api);
    for (const [name, password] of [
      ['creds', PASSWORD],
      ['wrong', 'not-the-password'],
    ] as const) {
      const auth = Buffer.from(`scanner:${password}`).toString('base64');
      await core.createNamespacedSecret({
        namespace: ns,
        body: {
          metadata: { name },
          type: 'kubernetes.io/dockerconfigjson',
          stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [registry.host]: { auth } } }) },
        },
      });
    }
    manager = await startImageManager(kc, `${LABEL}=imagerepository`);
  });

  after(async () => {
    await manager?.stop();
    await deleteNamespace(kc, ns);
    await registry?.stop();
  });

  async function apply(name: string, spec: Record<string, unknown>): Promise<void> {
    const obj: KubernetesObject & { spec: unknown } = {
      apiVersion: 'image.toolkit.fluxcd.io/v1',
      kind: 'ImageRepository',
      metadata: { name, namespace: ns, labels },
      spec: { image: `${registry.host}/team/app`, interval: '1h', insecure: !registry.tls, ...spec },
    };
    await apiClientFor(kc).apply(rt, obj, { fieldManager: 'tide-test', force: true });
  }

  const policyType = resourceTypeOf(ImagePolicyKind);

  async function applyPolicy(name: string, spec: Record<string, unknown>): Promise<void> {
    const obj: KubernetesObject & { spec: unknown } = {
      apiVersion: 'image.toolkit.fluxcd.io/v1',
      kind: 'ImagePolicy',
      metadata: { name, namespace: ns, labels },
      spec: { imageRepositoryRef: { name: 'app' }, ...spec },
    };
    await apiClientFor(kc).apply(policyType, obj, { fieldManager: 'tide-test', force: true });
  }

  async function getPolicy(name: string): Promise<KubernetesObject & { status?: ImagePolicyStatus }> {
    return (await apiClientFor(kc).get(policyType, { namespace: ns, name }))!;
  }

  async function waitPolicy(name: string, ready: 'True' | 'False') {
    return eventually(async () => {
      const o = await getPolicy(name);
      const c = findCondition(o.status?.conditions, 'Ready');
      expect(c?.status, `${name}: ${c?.reason} ${c?.message}`).to.equal(ready);
      return o;
    });
  }

  async function get(name: string): Promise<KubernetesObject & { status?: ImageRepositoryStatus }> {
    return (await apiClientFor(kc).get(rt, { namespace: ns, name }))!;
  }

  it('scans the tags with the secretRef credentials, without excluded ones, and sees a new tag', async () => {
    await apply('app', { secretRef: { name: 'creds' } });
    await applyPolicy('semver', { policy: { semver: { range: '~1.2' } }, digestReflectionPolicy: 'IfNotPresent' });
    await applyPolicy('alpha', { policy: { alphabetical: { order: 'asc' } } });
    await applyPolicy('none', { policy: { semver: { range: '>=9.0.0' } } });
    await applyPolicy('filtered', {
      policy: { numerical: { order: 'asc' } },
      filterTags: { pattern: '^1\\.2\\.(?P<patch>\\d+)$', extract: '$patch' },
    });
    const scanned = await eventually(async () => {
      const o = await get('app');
      expect(findCondition(o.status?.conditions, 'Ready')).to.include({ status: 'True', reason: 'Succeeded' });
      return o;
    });
    expect(scanned.status?.canonicalImageName).to.equal(`${registry.host}/team/app`);
    expect(scanned.status?.lastScanResult).to.deep.include({ tagCount: 3, latestTags: ['latest', '1.2.3', '1.2.2'] });
    expect(findCondition(scanned.status?.conditions, 'Ready')?.message).to.equal(
      `successful scan: found 3 tags with checksum ${scanned.status?.lastScanResult?.revision}`,
    );

    const semver = await waitPolicy('semver', 'True');
    expect(semver.status?.latestRef).to.deep.include({ name: `${registry.host}/team/app`, tag: '1.2.3' });
    expect(semver.status?.latestRef?.digest).to.match(/^sha256:[0-9a-f]{64}$/);
    expect((await waitPolicy('alpha', 'True')).status?.latestRef?.tag).to.equal('latest');
    expect((await waitPolicy('filtered', 'True')).status?.latestRef?.tag).to.equal('1.2.3');
    const none = await waitPolicy('none', 'False');
    expect(findCondition(none.status?.conditions, 'Ready')).to.include({
      reason: 'Failure',
      message: 'unable to determine latest version from provided list',
    });

    await pushArtifact(registry, 'team/app', '1.2.4', image);
    await apiClientFor(kc).jsonPatch(
      rt,
      { namespace: ns, name: 'app' },
      [{ op: 'add', path: '/metadata/annotations', value: { 'reconcile.fluxcd.io/requestedAt': 'rescan' } }],
      'tide-test',
    );
    await eventually(async () => {
      const o = await get('app');
      expect(o.status?.lastHandledReconcileAt).to.equal('rescan');
      expect(o.status?.lastScanResult?.tagCount).to.equal(4);
      expect(o.status?.lastScanResult?.latestTags?.[1]).to.equal('1.2.4');
    });
    // The new scan result re-evaluates the policies at once.
    const updated = await eventually(async () => {
      const p = await getPolicy('semver');
      expect(p.status?.latestRef?.tag).to.equal('1.2.4');
      return p;
    });
    expect(updated.status?.observedPreviousRef).to.include({ tag: '1.2.3' });
    expect(findCondition(updated.status?.conditions, 'Ready')?.message).to.match(
      new RegExp(
        `^Latest image tag for ${registry.host}/team/app resolved to 1\\.2\\.4 ` +
          'with digest sha256:[0-9a-f]+ \\(previously',
      ),
    );
  });

  it('stalls a policy whose pattern is not RE2, naming the field', async () => {
    await applyPolicy('badpattern', { policy: { alphabetical: {} }, filterTags: { pattern: '(?<=x)y' } });
    const p = await eventually(async () => {
      const o = await getPolicy('badpattern');
      expect(findCondition(o.status?.conditions, 'Stalled')).to.include({ status: 'True', reason: 'InvalidPolicy' });
      return o;
    });
    expect(findCondition(p.status?.conditions, 'Ready')?.message).to.contain('(?<');
  });

  it('answers wrong credentials with AuthenticationFailed and no password in status', async () => {
    await apply('wrongcreds', { secretRef: { name: 'wrong' } });
    const o = await eventually(async () => {
      const r = await get('wrongcreds');
      expect(findCondition(r.status?.conditions, 'Ready')).to.include({
        status: 'False',
        reason: 'AuthenticationFailed',
      });
      return r;
    });
    expect(JSON.stringify(o.status)).not.to.contain('not-the-password');
    expect(o.status?.lastScanResult).to.equal(undefined);
  });
});
