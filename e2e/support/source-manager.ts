// The source controller in the test process: a Manager with setupSource on a fresh storage
// directory and a free storage port, the Helm helper from the control plane's bin dir.
import type { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Manager } from '../../controllers/runtime/manager.ts';
import { Metrics } from '../../controllers/runtime/metrics.ts';
import { optionsFrom } from '../../controllers/runtime/setup.ts';
import { setupSource, source } from '../../controllers/source/setup.ts';
import { testCluster } from './cluster.ts';
import { testLogger } from './logger.ts';
import { freePort } from './net.ts';

/** Starts a source controller for objects matching `labelSelector`; extra flags come last. */
export async function startSourceManager(
  kc: KubeConfig,
  labelSelector: string,
  extra: string[] = [],
): Promise<Manager> {
  const port = await freePort();
  const manager = new Manager({
    kubeConfig: kc,
    logger: testLogger(),
    metrics: new Metrics(false),
    labelSelector,
    retry: { minRetryDelayMs: 200, maxRetryDelayMs: 2000 },
  });
  await setupSource({
    manager,
    options: optionsFrom(source, [
      `--storage-path=${mkdtempSync(join(tmpdir(), 'tide-artifacts-'))}`,
      `--storage-addr=127.0.0.1:${port}`,
      `--storage-adv-addr=127.0.0.1:${port}`,
      `--helm-helper-path=${join(testCluster().binDir, 'tide-helm')}`,
      ...extra,
    ]),
  });
  await manager.start();
  return manager;
}
