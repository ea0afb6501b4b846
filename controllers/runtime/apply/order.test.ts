import { expect } from 'chai';
import type { ObjectRef } from './inventory.ts';
import { compareRefs, stageOf } from './order.ts';

const ref = (kind: string, group = '', name = 'x', namespace = ''): ObjectRef => ({
  kind,
  group,
  name,
  namespace,
  version: 'v1',
});

describe('apply order', () => {
  it('stages CRDs, Namespaces and ClusterRoles first, then *Class kinds, then the rest', () => {
    expect(stageOf(ref('CustomResourceDefinition', 'apiextensions.k8s.io'))).to.equal(0);
    expect(stageOf(ref('Namespace'))).to.equal(0);
    expect(stageOf(ref('ClusterRole', 'rbac.authorization.k8s.io'))).to.equal(0);
    expect(stageOf(ref('ClusterRoleBinding', 'rbac.authorization.k8s.io'))).to.equal(2);
    expect(stageOf(ref('StorageClass', 'storage.k8s.io'))).to.equal(1);
    expect(stageOf(ref('GatewayClass', 'gateway.networking.k8s.io'))).to.equal(1);
    expect(stageOf(ref('Deployment', 'apps'))).to.equal(2);
    // Same kind name in another group is an ordinary custom resource.
    expect(stageOf(ref('Namespace', 'example.com'))).to.equal(2);
    expect(stageOf(ref('CustomResourceDefinition', 'example.com'))).to.equal(2);
  });

  it('orders known kinds by dependency, unknown kinds after them, ties by namespace and name', () => {
    const refs = [
      ref('Widget', 'example.com', 'w'),
      ref('Deployment', 'apps', 'b', 'ns'),
      ref('ValidatingWebhookConfiguration', 'admissionregistration.k8s.io'),
      ref('Deployment', 'apps', 'a', 'ns'),
      ref('ConfigMap', '', 'c', 'ns'),
      ref('Gadget', 'example.com', 'g'),
      ref('ServiceAccount', '', 's', 'ns'),
      ref('Service', '', 's', 'ns'),
      ref('Namespace', '', 'ns'),
      ref('Deployment', 'apps', 'a', 'another'),
    ];
    expect(refs.sort(compareRefs).map((r) => `${r.kind}/${r.namespace}/${r.name}`)).to.deep.equal([
      'Namespace//ns',
      'ServiceAccount/ns/s',
      'ConfigMap/ns/c',
      'Service/ns/s',
      'Deployment/another/a',
      'Deployment/ns/a',
      'Deployment/ns/b',
      'ValidatingWebhookConfiguration//x',
      'Gadget//g',
      'Widget//w',
    ]);
  });
});
