// The image controller: ImageRepository (tags scanned from registries, kept on disk), with
// ImagePolicy and ImageUpdateAutomation to come on top of it.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageRepositoryKind } from '../api/image/imagerepository.ts';
import { resourceTypeOf } from '../api/kind.ts';
import { flag, type Options } from '../runtime/options.ts';
import { defineController, type SetupContext } from '../runtime/setup.ts';
import { type ImageRepository, ImageRepositoryReconciler } from './imagerepository/reconciler.ts';
import { TagStore } from './tag-store.ts';

export const imageFlags = {
  'image-storage-path': flag.string({
    default: join(tmpdir(), 'tide-image-tags'),
    help: 'Directory of the scanned tags, one file per ImageRepository (Flux: --storage-path).',
  }),
};

export type ImageOptions = Options<typeof imageFlags>;

export const image = defineController({ name: 'image', flags: imageFlags, setup: setupImage });

export async function setupImage({ manager, options }: SetupContext<ImageOptions>): Promise<void> {
  const tags = new TagStore(options.imageStoragePath);
  const rt = resourceTypeOf(ImageRepositoryKind);
  manager.addController<ImageRepository>({
    name: 'imagerepository',
    resource: rt,
    fieldManager: 'image-reflector-controller',
    reconciler: new ImageRepositoryReconciler({
      kubeConfig: manager.kubeConfig,
      tags,
      compilePattern: (pattern, field) => {
        try {
          return new RegExp(pattern);
        } catch (err) {
          throw new Error(`${field}: invalid regular expression '${pattern}': ${(err as Error).message}`);
        }
      },
    }),
    isSuspended: (o) => o.spec?.suspend === true,
  });
}
