// Remote bases are disabled: before kustomize runs, every kustomization file the build reaches is
// read, and an entry that kustomize would fetch over the network (a git repository or an HTTP
// URL), or a base outside the artifact, fails the build with the file and the entry named.
// kustomize prefers a local path to a remote one, so an entry that exists in the artifact is local.
import { readFile, realpath } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { BuildError } from './errors.ts';
import { display, findKustomizationFile, isInside, statOrUndefined } from './tree.ts';

/** Fields whose entries are directories (or files) kustomize may clone from git. */
const BASE_FIELDS = ['resources', 'components', 'bases'] as const;

const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
// git::…, gh:org/repo, user@host:path (scp-like), and host[:port]/path without a scheme.
const GIT_ADDRESS = /^(git::|gh:|[\w.-]+@[\w.-]+:)/;
const HOST_PATH = /^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?\//i;

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function field(obj: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const v = obj[key];
  return Array.isArray(v) ? v.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null) : [];
}

/** Entries naming a file kustomize would download if it were a URL. */
function fileEntries(k: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of ['crds', 'configurations', 'generators', 'transformers', 'validators', 'patchesStrategicMerge'])
    out.push(...strings(k[key]));
  for (const key of ['patches', 'patchesJson6902', 'replacements'])
    for (const e of field(k, key)) out.push(...strings([e.path]));
  for (const key of ['configMapGenerator', 'secretGenerator']) {
    for (const g of field(k, key))
      out.push(...strings(g.files).map((f) => f.slice(f.indexOf('=') + 1)), ...strings(g.envs), ...strings([g.env]));
  }
  const openapi = k.openapi as { path?: unknown } | undefined;
  out.push(...strings([openapi?.path]));
  return out;
}

async function readKustomization(root: string, file: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = parse(await readFile(file, 'utf8'), { logLevel: 'error' });
  } catch (err) {
    throw new BuildError(`${display(root, file)} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new BuildError(`${display(root, file)} is not a YAML mapping`);
  return value as Record<string, unknown>;
}

/**
 * Follows resources, components and bases from the kustomization file in `dir` through every
 * local directory they name, refusing remote entries and entries outside `root`.
 */
export async function checkReferences(root: string, dir: string): Promise<void> {
  const seen = new Set<string>();
  const queue = [dir];
  while (queue.length > 0) {
    const current = queue.shift()!;
    const real = await realpath(current);
    if (seen.has(real)) continue;
    seen.add(real);
    const file = await findKustomizationFile(current);
    if (!file) continue;
    const where = display(root, file);
    const k = await readKustomization(root, file);

    for (const entry of fileEntries(k)) {
      if (URL_SCHEME.test(entry.trim()))
        throw new BuildError(`${where}: remote file '${entry}' is not allowed: remote bases are disabled`);
      await confined(root, dirname(file), entry, `${where}: file '${entry}'`);
    }
    for (const key of BASE_FIELDS) {
      for (const entry of strings(k[key])) {
        const local = await localEntry(root, dirname(file), entry, `${where}: ${key} entry '${entry}'`);
        if (local) queue.push(local);
      }
    }
  }
}

/** Throws when a file entry resolves (directly or through symlinks) outside the artifact. */
async function confined(root: string, base: string, entry: string, what: string): Promise<void> {
  const path = resolve(base, entry);
  if (!isInside(root, path)) throw new BuildError(`${what} points outside the artifact`);
  if ((await statOrUndefined(path)) && !isInside(root, await realpath(path)))
    throw new BuildError(`${what} points outside the artifact`);
}

/** The directory an entry names, undefined for a file; throws for remote and outside entries. */
async function localEntry(root: string, base: string, entry: string, what: string): Promise<string | undefined> {
  const remote = `${what} is a remote base; remote bases are disabled, vendor it into the source instead`;
  if (URL_SCHEME.test(entry) || GIT_ADDRESS.test(entry)) throw new BuildError(remote);
  const path = resolve(base, entry);
  if (!isInside(root, path)) throw new BuildError(`${what} points outside the artifact`);
  const info = await statOrUndefined(path);
  if (!info) throw new BuildError(HOST_PATH.test(entry) ? remote : `${what} does not exist`);
  if (!isInside(root, await realpath(path))) throw new BuildError(`${what} points outside the artifact`);
  return info.isDirectory() ? path : undefined;
}
