// The controller side of bench-runtime, in its own process so its memory is measured alone:
// a Manager with a GitRepository reconciler that does no work of its own. On SIGTERM it stops
// and prints {reconciles, maxRssMB} as JSON; it prints reconciled-all once it reconciled N objects.
import { KubeConfig } from '@kubernetes/client-node';
import { resourceTypeOf } from '../../controllers/api/kind.ts';
import { GitRepositoryKind } from '../../controllers/api/source/gitrepository.ts';
import { Logger } from '../../controllers/runtime/logger.ts';
import { Manager } from '../../controllers/runtime/manager.ts';
import { Metrics } from '../../controllers/runtime/metrics.ts';

const kc = new KubeConfig();
kc.loadFromFile(process.argv[2]!);
const n = Number(process.argv[3]);
let reconciles = 0;
const manager = new Manager({
  kubeConfig: kc,
  logger: new Logger({ level: 'error', encoding: 'json' }),
  metrics: new Metrics(),
  concurrency: 4,
});
manager.addController({
  name: 'gitrepository',
  resource: resourceTypeOf(GitRepositoryKind),
  fieldManager: 'source-controller',
  reconciler: {
    async reconcile() {
      if (++reconciles === n) process.stdout.write('reconciled-all\n');
      return { type: 'success' as const, reason: 'Succeeded', message: 'stored artifact', requeueAfterMs: 3_600_000 };
    },
  },
});
process.stdout.write('loaded\n');
await manager.start();
process.on('SIGTERM', () => {
  void manager.stop().then(() => {
    process.stdout.write(
      `${JSON.stringify({ reconciles, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`,
    );
    process.exit(0);
  });
});
