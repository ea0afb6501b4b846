// Mocha global fixtures: one LocalCluster for the whole run (mocha --require e2e/support/hooks.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalCluster } from '../cluster/cluster.ts';
import { setTestCluster, testCluster } from './cluster.ts';

export async function mochaGlobalSetup(): Promise<void> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-test-'));
  const cluster = new LocalCluster({ stateDir });
  await cluster.start();
  setTestCluster(cluster);
  console.log(
    `test cluster ready at ${cluster.server} in ${(cluster.startupMs / 1000).toFixed(1)}s (state in ${stateDir})`,
  );
}

export async function mochaGlobalTeardown(): Promise<void> {
  const cluster = testCluster();
  setTestCluster(undefined);
  await cluster.stop();
  // TIDE_KEEP_TEST_STATE=1 keeps the component logs for a look after the run.
  if (!process.env.TIDE_KEEP_TEST_STATE) fs.rmSync(cluster.stateDir, { recursive: true, force: true });
}
