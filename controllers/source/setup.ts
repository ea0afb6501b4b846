// The source controller: GitRepository, its artifact storage and the HTTP server consumers
// download artifacts from.
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { resourceTypeOf } from '../api/kind.ts';
import { GitRepositoryKind } from '../api/source/gitrepository.ts';
import type { SetupContext } from '../registry.ts';
import { closeServer, parseAddress } from '../runtime/http.ts';
import { keyOf } from '../runtime/resource.ts';
import { GitRepositoryReconciler, type GitRepository } from './gitrepository/reconciler.ts';
import { Storage } from './storage.ts';

const INCLUDE_INDEX = 'spec.include';

export async function setupSource({ manager, args }: SetupContext): Promise<void> {
  const retention = Number(args['artifact-retention-records']);
  const maxSize = Number(args['git-max-size']);
  if (!Number.isInteger(retention) || retention < 1)
    throw new Error(
      `invalid --artifact-retention-records="${args['artifact-retention-records']}": expected a positive integer`,
    );
  if (!Number.isInteger(maxSize) || maxSize < 1)
    throw new Error(`invalid --git-max-size="${args['git-max-size']}": expected a number of bytes`);
  const addr = args['storage-addr']!;
  const { port } = parseAddress('--storage-addr', addr);
  const storage = new Storage({
    root: args['storage-path']!,
    advertisedBase: `http://${args['storage-adv-addr'] ?? `${hostname()}:${port}`}`,
    retention,
  });
  let server: Server | undefined;
  manager.onStart(async () => {
    server = await storage.listen(addr);
  });
  manager.onStop(() => closeServer(server));

  const rt = resourceTypeOf(GitRepositoryKind);
  const informer = manager.informer<GitRepository>(rt);
  informer.addIndex(INCLUDE_INDEX, (o) =>
    (o.spec?.include ?? []).map((i) => `${o.metadata?.namespace}/${i.repository.name}`),
  );
  const controller = manager.addController<GitRepository>({
    name: 'gitrepository',
    resource: rt,
    fieldManager: 'source-controller',
    reconciler: new GitRepositoryReconciler({ kubeConfig: manager.kubeConfig, storage, informer, maxSize }),
    isSuspended: (o) => o.spec?.suspend === true,
  });
  // A new artifact of an included repository rebuilds the repositories that include it.
  informer.on({
    update(oldObj, newObj) {
      if (oldObj.status?.artifact?.digest === newObj.status?.artifact?.digest) return;
      for (const dependent of informer.byIndex(INCLUDE_INDEX, keyOf(newObj))) controller.enqueue(keyOf(dependent));
    },
  });
}
