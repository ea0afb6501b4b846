// spec.path of an unpacked artifact → the objects `kustomize build` makes of it, with the
// Kustomization's own kustomize fields applied. Works in place: `dir` must be a scratch copy.
import { realpath } from 'node:fs/promises';
import { posix, resolve } from 'node:path';
import { ArtifactError } from './errors.ts';
import { applyFields } from './fields.ts';
import type { KustomizeFields } from './fields.ts';
import { generateKustomization } from './generate.ts';
import { parseManifests } from './objects.ts';
import type { Manifest } from './objects.ts';
import { checkReferences } from './references.ts';
import { runKustomize } from './run.ts';
import type { KustomizeOptions } from './run.ts';
import { findKustomizationFile, isInside, statOrUndefined } from './tree.ts';

export type { KustomizeFields, KustomizeOptions };

/** spec.path inside the artifact; like Flux, leading "/" and "./" are relative to its root. */
async function resolvePath(root: string, path: string): Promise<string> {
  const clean = posix.normalize(`./${path.replace(/^\/+/, '')}`);
  if (clean === '..' || clean.startsWith('../')) throw new ArtifactError(`spec.path '${path}' points outside the artifact`);
  const dir = resolve(root, clean);
  const info = await statOrUndefined(dir);
  if (!info) throw new ArtifactError(`kustomization path not found: '${path}' does not exist in the artifact`);
  if (!info.isDirectory()) throw new ArtifactError(`kustomization path '${path}' is not a directory`);
  const real = await realpath(dir);
  if (!isInside(root, real)) throw new ArtifactError(`spec.path '${path}' points outside the artifact`);
  return real;
}

/**
 * Builds spec.path (`path`, default the root) of the artifact unpacked in `dir`: generates a
 * kustomization.yaml for plain manifests, writes the Kustomization's fields into it, refuses
 * remote bases, runs kustomize and returns its objects. Throws ArtifactError when the path is
 * missing and BuildError for everything else, with artifact-relative file names.
 */
export async function build(dir: string, path: string | undefined, spec: KustomizeFields, opts: KustomizeOptions): Promise<Manifest[]> {
  const root = await realpath(dir);
  const target = await resolvePath(root, path ?? '');
  const file = (await findKustomizationFile(target)) ?? (await generateKustomization(root, target));
  await applyFields(root, target, file, spec);
  await checkReferences(root, target);
  return parseManifests(await runKustomize(root, target, opts));
}
