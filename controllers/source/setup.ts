// The source controller: GitRepository, its artifact storage and the HTTP server consumers
// download artifacts from.
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { resourceTypeOf } from '../api/kind.ts';
import { GitRepositoryKind } from '../api/source/gitrepository.ts';
import { closeServer, parseAddress } from '../runtime/http.ts';
import { flag, type Options } from '../runtime/options.ts';
import { keyOf } from '../runtime/resource.ts';
import { defineController, type SetupContext } from '../runtime/setup.ts';
import { GitRepositoryReconciler, type GitRepository } from './gitrepository/reconciler.ts';
import { Storage } from './storage.ts';

const INCLUDE_INDEX = 'spec.include';

export const sourceFlags = {
  'storage-path': flag.string({ default: 'data', help: 'Directory the artifacts are stored in.' }),
  'storage-addr': flag.string({ default: ':9090', help: 'The address the artifact HTTP server binds to.' }),
  'storage-adv-addr': flag.string({
    help: 'host:port of artifact URLs; defaults to the hostname and the --storage-addr port.',
  }),
  'artifact-retention-records': flag.int({ default: 2, min: 1, help: 'How many artifacts of one object are kept.' }),
  'git-max-size': flag.bytes({
    default: 1024 ** 3,
    help: 'Bytes a fetch may download and an artifact may unpack to.',
  }),
};

export type SourceOptions = Options<typeof sourceFlags>;

export async function setupSource({ manager, options }: SetupContext<SourceOptions>): Promise<void> {
  const addr = options.storageAddr;
  const { port } = parseAddress('--storage-addr', addr);
  const storage = new Storage({
    root: options.storagePath,
    advertisedBase: `http://${options.storageAdvAddr ?? `${hostname()}:${port}`}`,
    retention: options.artifactRetentionRecords,
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
    reconciler: new GitRepositoryReconciler({
      kubeConfig: manager.kubeConfig,
      storage,
      informer,
      maxSize: options.gitMaxSize,
    }),
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

export const source = defineController({ name: 'source', flags: sourceFlags, setup: setupSource });
