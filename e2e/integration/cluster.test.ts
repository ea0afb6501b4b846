// The local control plane itself: if these fail, every other suite fails for the same reason.
import * as assert from 'node:assert/strict';
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/cluster.ts';
import { kubeConfig } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';

describe('local cluster', () => {
  let kc: KubeConfig;
  let namespace: string;

  before(async () => {
    kc = kubeConfig();
    namespace = await createTestNamespace(kc, 'cluster');
  });

  after(async () => {
    await deleteNamespace(kc, namespace);
  });

  it('has a Ready fake node', async () => {
    const node = await kc.makeApiClient(CoreV1Api).readNode({ name: LocalCluster.nodeName });
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'True', `node conditions: ${JSON.stringify(node.status?.conditions)}`);
  });

  it('rolls out a Deployment until it is Available', async () => {
    const apps = kc.makeApiClient(AppsV1Api);
    const labels = { app: 'web' };
    const deployment: V1Deployment = {
      metadata: { name: 'web', namespace },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'web', image: 'example.invalid/web:1.0' }] },
        },
      },
    };
    await apps.createNamespacedDeployment({ namespace, body: deployment });

    await eventually(
      async () => {
        const { status } = await apps.readNamespacedDeployment({ name: 'web', namespace });
        assert.equal(status?.availableReplicas, 2);
        assert.equal(status?.conditions?.find((c) => c.type === 'Available')?.status, 'True');
      },
      { timeoutMs: 60_000, message: 'Deployment web is Available' },
    );
  });
});
