// The image controller in the test process: a Manager with setupImage on a fresh tag storage
// directory, for the objects matching a label selector.
import type { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { image, setupImage } from '../../controllers/image/setup.ts';
import { Manager } from '../../controllers/runtime/manager.ts';
import { Metrics } from '../../controllers/runtime/metrics.ts';
import { optionsFrom } from '../../controllers/runtime/setup.ts';
import { testLogger } from './logger.ts';

/** Starts an image controller for objects matching `labelSelector`; extra flags come last. */
export async function startImageManager(kc: KubeConfig, labelSelector: string, extra: string[] = []): Promise<Manager> {
  const manager = new Manager({
    kubeConfig: kc,
    logger: testLogger(),
    metrics: new Metrics(false),
    labelSelector,
    retry: { minRetryDelayMs: 200, maxRetryDelayMs: 2000 },
  });
  await setupImage({
    manager,
    options: optionsFrom(image, [`--image-storage-path=${mkdtempSync(join(tmpdir(), 'tide-tags-'))}`, ...extra]),
  });
  await manager.start();
  return manager;
}
