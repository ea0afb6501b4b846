// A directory of plain manifests gets the kustomization.yaml Flux would generate for it: every
// .yaml/.yml file below it, and every subdirectory that has its own kustomization file (as one
// resource, without descending into it). Like Flux, a YAML file that holds anything but
// Kubernetes objects fails the build rather than being skipped: skipping a manifest with a typo
// would make its object look deleted, and prune would remove it from the cluster.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { BuildError } from './errors.ts';
import { parseYamlStream } from './objects.ts';
import { display, findKustomizationFile, statOrUndefined } from './tree.ts';

function isManifestFile(name: string): boolean {
  return name.endsWith('.yaml') || name.endsWith('.yml');
}

function isObjectLike(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const o = value as Record<string, unknown>;
  return o.apiVersion !== undefined || o.kind !== undefined || o.metadata !== undefined;
}

async function checkManifests(root: string, file: string): Promise<void> {
  const where = `failed to decode Kubernetes YAML from ${display(root, file)}`;
  const docs = parseYamlStream(await readFile(file, 'utf8'), where);
  for (const { index, value } of docs) {
    if (!isObjectLike(value))
      throw new BuildError(
        `${where}: document ${index} is not a Kubernetes object (it has no apiVersion, kind or metadata)`,
      );
  }
}

/** Resource entries below `dir`, as "./relative/path", in lexical order. */
async function collect(root: string, dir: string, rel: string, out: string[]): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const entryRel = `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (await findKustomizationFile(path)) out.push(entryRel);
      else await collect(root, path, entryRel, out);
      continue;
    }
    if (!isManifestFile(entry.name)) continue;
    // A symlinked file counts as the file; a symlinked directory is not descended into.
    if (entry.isSymbolicLink() && !(await statOrUndefined(path))?.isFile()) continue;
    await checkManifests(root, path);
    out.push(entryRel);
  }
}

/** Writes `dir`/kustomization.yaml listing the manifests below `dir`; returns its path. */
export async function generateKustomization(root: string, dir: string): Promise<string> {
  const resources: string[] = [];
  await collect(root, dir, '.', resources);
  const file = join(dir, 'kustomization.yaml');
  // An explicit empty list: kustomize refuses a kustomization without fields, and a directory
  // without manifests builds to no objects.
  await writeFile(file, stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources }));
  return file;
}
