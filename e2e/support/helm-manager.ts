// The helm controller in the test process: a Manager with setupHelm and the Helm helper from the
// control plane's bin dir, for the objects matching a label selector.
import type { KubeConfig } from '@kubernetes/client-node';
import { join } from 'node:path';
import { helm, setupHelm } from '../../controllers/helm/setup.ts';
import { Manager } from '../../controllers/runtime/manager.ts';
import { Metrics } from '../../controllers/runtime/metrics.ts';
import { optionsFrom } from '../../controllers/runtime/setup.ts';
import { testCluster } from './cluster.ts';
import { testLogger } from './logger.ts';

/** Starts a helm controller for objects matching `labelSelector`; extra flags come last. */
export async function startHelmManager(kc: KubeConfig, labelSelector: string, extra: string[] = []): Promise<Manager> {
  const manager = new Manager({
    kubeConfig: kc,
    logger: testLogger(),
    metrics: new Metrics(false),
    labelSelector,
    retry: { minRetryDelayMs: 200, maxRetryDelayMs: 2000 },
  });
  await setupHelm({
    manager,
    options: optionsFrom(helm, [
      `--helm-helper-path=${join(testCluster().binDir, 'tide-helm')}`,
      '--requeue-dependency=1s',
      ...extra,
    ]),
  });
  await manager.start();
  return manager;
}
