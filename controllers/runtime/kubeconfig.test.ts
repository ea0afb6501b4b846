import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { shareConnections } from './kubeconfig.ts';

type WithDispatcher = { createDispatcher(cluster: unknown, opts: Record<string, unknown>): unknown };

describe('shareConnections', () => {
  it('hands every request of one TLS identity the same dispatcher, and a new one when the identity changes', () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const unpatched = kc as unknown as WithDispatcher;
    const cluster = kc.getCurrentCluster();
    expect(unpatched.createDispatcher(cluster, { ca: 'ca1' })).to.not.equal(
      unpatched.createDispatcher(cluster, { ca: 'ca1' }),
      'client-node alone builds one per call',
    );
    const shared = shareConnections(shareConnections(kc)) as unknown as WithDispatcher;
    const a = shared.createDispatcher(cluster, { ca: 'ca1', cert: 'c1', key: 'k1' });
    expect(shared.createDispatcher(cluster, { ca: 'ca1', cert: 'c1', key: 'k1' })).to.equal(a);
    expect(shared.createDispatcher(cluster, { ca: 'ca1', cert: 'c2', key: 'k2' })).to.not.equal(a);
  });
});
