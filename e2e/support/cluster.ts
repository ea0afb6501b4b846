// The one cluster of a test run, started by hooks.ts. Mocha runs the global setup in the same
// process as the tests (when not --parallel), so a module-level singleton is enough.
import { KubeConfig } from '@kubernetes/client-node';
import type { LocalCluster } from '../cluster/cluster.ts';
import { shareConnections } from '../../controllers/runtime/kubeconfig.ts';

let current: LocalCluster | undefined;

export function setTestCluster(cluster: LocalCluster | undefined): void {
  current = cluster;
}

export function testCluster(): LocalCluster {
  if (!current) throw new Error('no test cluster; run mocha with --require e2e/support/hooks.ts');
  return current;
}

/** A fresh KubeConfig for the test cluster's admin user. */
export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(testCluster().kubeconfigPath);
  return shareConnections(kc);
}
