// The OCIRepository controller inside the source controller: its informer and controller, on the
// shared artifact storage. Layers are limited by --git-max-size, the source controller's bound on
// what a fetch may download and an artifact may unpack to.
import { resourceTypeOf } from '../../api/kind.ts';
import { OCIRepositoryKind } from '../../api/source/ocirepository.ts';
import type { Manager } from '../../runtime/manager.ts';
import type { Storage } from '../storage.ts';
import { OCIRepositoryReconciler, type OCIRepository } from './reconciler.ts';

export interface OCIRepositorySetup {
  manager: Manager;
  storage: Storage;
  options: { gitMaxSize: number };
}

export async function setupOCIRepository({ manager, storage, options }: OCIRepositorySetup): Promise<void> {
  manager.addController<OCIRepository>({
    name: 'ocirepository',
    resource: resourceTypeOf(OCIRepositoryKind),
    fieldManager: 'source-controller',
    reconciler: new OCIRepositoryReconciler({
      kubeConfig: manager.kubeConfig,
      storage,
      maxSize: options.gitMaxSize,
    }),
    isSuspended: (o) => o.spec?.suspend === true,
    revision: (o) => o.status?.artifact?.revision,
  });
}
