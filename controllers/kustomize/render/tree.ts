// Paths inside the unpacked artifact. Everything the build reads must stay below its root.
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';

/** The names kustomize recognises, in the order it looks for them. */
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel));
}

/** `path` relative to the artifact root, for messages: never the temporary directory. */
export function display(root: string, path: string): string {
  return relative(root, path) || '.';
}

export async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw err;
  }
}

/** The kustomization file of `dir`, if it has one. */
export async function findKustomizationFile(dir: string): Promise<string | undefined> {
  for (const name of KUSTOMIZATION_FILES) {
    const file = join(dir, name);
    if ((await statOrUndefined(file))?.isFile()) return file;
  }
  return undefined;
}
