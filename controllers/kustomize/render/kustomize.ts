// spec.path of an unpacked artifact → the objects `kustomize build` makes of it, with the
// Kustomization's own kustomize fields applied. The artifact is only read: the directory the
// build writes to (generated kustomization.yaml, the Kustomization's fields) is a scratch copy.
import { cp, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ArtifactError, BuildError } from './errors.ts';
import { applyFields } from './fields.ts';
import type { KustomizeFields } from './fields.ts';
import { generateKustomization } from './generate.ts';
import { parseManifests } from './objects.ts';
import type { Manifest } from './objects.ts';
import { checkReferences } from './references.ts';
import { runKustomize } from './run.ts';
import type { KustomizeOptions } from './run.ts';
import { display, findKustomizationFile, isInside, statOrUndefined } from './tree.ts';

export type { KustomizeFields, KustomizeOptions };

/** spec.path inside the artifact; like Flux, leading "/" and "./" are relative to its root. */
async function resolvePath(root: string, path: string): Promise<string> {
  const clean = posix.normalize(`./${path.replace(/^\/+/, '')}`);
  if (clean === '..' || clean.startsWith('../'))
    throw new ArtifactError(`spec.path '${path}' points outside the artifact`);
  const dir = resolve(root, clean);
  const info = await statOrUndefined(dir);
  if (!info) throw new ArtifactError(`kustomization path not found: '${path}' does not exist in the artifact`);
  if (!info.isDirectory()) throw new ArtifactError(`kustomization path '${path}' is not a directory`);
  const real = await realpath(dir);
  if (!isInside(root, real)) throw new ArtifactError(`spec.path '${path}' points outside the artifact`);
  return real;
}

/** Names of scratch copies; a copy of a directory never takes in another build's copy. */
const SCRATCH_PREFIX = '.tide-build-';
const notScratch = (src: string) => !basename(src).startsWith(SCRATCH_PREFIX);

interface Scratch {
  root: string;
  dir: string;
  /** Turns the copy's name in a message back into the path the user wrote. */
  tidy(message: string): string;
  remove(): Promise<void>;
}

/**
 * A writable copy of `target` (a directory inside `root`). It is made next to `target`, in the same
 * parent directory, so that every relative reference out of it (`../base`) reaches what it would
 * from `target`, and only this one directory is copied. The artifact root has no parent inside the
 * artifact: it is copied whole.
 */
async function scratchCopy(root: string, target: string): Promise<Scratch> {
  if (target === root) {
    const copy = await mkdtemp(join(tmpdir(), 'tide-build-'));
    await cp(root, copy, { recursive: true, verbatimSymlinks: true, filter: notScratch });
    return { root: copy, dir: copy, tidy: (m) => m, remove: () => rm(copy, { recursive: true, force: true }) };
  }
  const copy = join(dirname(target), `${SCRATCH_PREFIX}${randomBytes(6).toString('hex')}-${basename(target)}`);
  try {
    await cp(target, copy, { recursive: true, verbatimSymlinks: true, filter: notScratch, errorOnExist: true });
  } catch (err) {
    await rm(copy, { recursive: true, force: true });
    throw err;
  }
  const from = display(root, copy);
  const to = display(root, target);
  return {
    root,
    dir: copy,
    tidy: (m) => m.replaceAll(from, to),
    remove: () => rm(copy, { recursive: true, force: true }),
  };
}

/**
 * Builds spec.path (`path`, default the root) of the artifact unpacked in `dir`, which is not
 * changed: generates a kustomization.yaml for plain manifests, writes the Kustomization's fields
 * into it, refuses remote bases, runs kustomize and returns its objects. Throws ArtifactError
 * when the path is missing and BuildError for everything else, with artifact-relative file names.
 */
export async function build(
  dir: string,
  path: string | undefined,
  spec: KustomizeFields,
  opts: KustomizeOptions,
): Promise<Manifest[]> {
  const artifactRoot = await realpath(dir);
  const scratch = await scratchCopy(artifactRoot, await resolvePath(artifactRoot, path ?? ''));
  const { root, dir: target } = scratch;
  try {
    const file = (await findKustomizationFile(target)) ?? (await generateKustomization(root, target));
    await applyFields(root, target, file, spec);
    await checkReferences(root, target);
    return parseManifests(await runKustomize(root, target, opts));
  } catch (err) {
    if (err instanceof BuildError) throw new BuildError(scratch.tidy(err.message));
    if (err instanceof ArtifactError) throw new ArtifactError(scratch.tidy(err.message));
    throw err;
  } finally {
    await scratch.remove();
  }
}
