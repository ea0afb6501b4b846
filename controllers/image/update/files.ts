// The Setters strategy over a checkout: every YAML file under spec.update.path (and files named
// Kustomization) that carries an `$imagepolicy` marker is rewritten with the policies' latest
// images, and written back only when something changed. Symbolic links are not followed and the
// .git directory is left alone, so nothing outside the checkout's tree is read or written.
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, posix, relative, resolve, sep } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import {
  applySetters,
  findMarkers,
  SetterError,
  type PolicyImage,
  type SetterChange,
  type SkippedMarker,
} from './setters.ts';

export interface FileUpdate {
  /** Relative to the checkout root, with forward slashes. */
  path: string;
  changes: (SetterChange & { object: ChangedObject })[];
}

/** The Kubernetes object (YAML document) a change was made in; empty strings where the document has none. */
export interface ChangedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
}

export interface UpdateResult {
  /** Files rewritten, in path order. */
  updated: FileUpdate[];
  /** Markers left alone (naming no known policy, no digest to write, malformed). */
  skipped: (SkippedMarker & { path: string })[];
  /** Marked files that are not valid YAML; left as they were. */
  invalid: { path: string; message: string }[];
}

/** A spec.update.path that leaves the checkout. */
export class UpdatePathError extends Error {
  override name = 'UpdatePathError';
}

const YAML_FILE = /\.ya?ml$/i;
const KUSTOMIZATION = new Set(['Kustomization', 'kustomization']);

/** spec.update.path as a path inside the repository ('' for the root, no leading './'); refuses one outside it. */
export function updatePathIn(path: string | undefined): string {
  const normal = posix
    .normalize(`./${path ?? ''}`.replace(/\\/g, '/'))
    .replace(/^\/+/, '')
    .replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../')) {
    throw new UpdatePathError(`spec.update.path '${path}' is outside the repository`);
  }
  return normal === '.' ? '' : normal;
}

/** The directory spec.update.path names inside `root` (default the root); refuses one outside it. */
export function updateRoot(root: string, path: string | undefined): string {
  const base = resolve(root);
  const target = resolve(base, `.${sep}${path ?? ''}`);
  if (target !== base && !target.startsWith(base + sep)) {
    throw new UpdatePathError(`spec.update.path '${path}' is outside the repository`);
  }
  return target;
}

/** The files the Setters work on: a directory on disk, or a tree in git (repository.ts). */
export interface FileTree {
  /** The YAML and Kustomization files, not links, as paths relative to the repository root with '/', in order. */
  files(): Promise<string[]>;
  read(path: string): Promise<string>;
  write(path: string, text: string): Promise<void>;
}

/** Whether a file of this name may hold manifests (YAML, or a Kustomization file). */
export function isManifestName(name: string): boolean {
  return YAML_FILE.test(name) || KUSTOMIZATION.has(name);
}

/**
 * Applies the policies (by "<namespace>:<name>") to the marked files of `tree`; writes the
 * changed ones back. Only files with a marker are parsed.
 */
export async function updateTree(tree: FileTree, policies: ReadonlyMap<string, PolicyImage>): Promise<UpdateResult> {
  const result: UpdateResult = { updated: [], skipped: [], invalid: [] };
  for (const path of await tree.files()) {
    const text = await tree.read(path);
    if (!findMarkers(text)) continue;
    try {
      const { text: updated, changed, skipped } = applySetters(text, policies);
      for (const s of skipped) result.skipped.push({ ...s, path });
      if (changed.length > 0 && updated !== text) {
        await tree.write(path, updated);
        result.updated.push({ path, changes: withObjects(text, changed) });
      }
    } catch (err) {
      if (!(err instanceof SetterError)) throw err;
      result.invalid.push({ path, message: err.message });
    }
  }
  return result;
}

/** updateTree over the files under `dir` on disk; `root` is the checkout, for the paths reported. */
export function updateFiles(
  root: string,
  dir: string,
  policies: ReadonlyMap<string, PolicyImage>,
): Promise<UpdateResult> {
  const abs = (path: string) => join(root, ...path.split('/'));
  return updateTree(
    {
      files: async () => (await yamlFiles(dir)).map((f) => relative(root, f).split(sep).join('/')),
      read: (path) => readFile(abs(path), 'utf8'),
      write: (path, text) => writeFile(abs(path), text),
    },
    policies,
  );
}

/** Regular files under `dir` that may hold manifests, in path order; links and .git are skipped. */
async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== '.git') await walk(p);
      } else if (e.isFile() && isManifestName(e.name)) {
        out.push(p);
      }
    }
  };
  const stat = await lstat(dir).catch(() => undefined);
  if (stat?.isDirectory()) await walk(dir);
  return out;
}

/** Each change with the object of the YAML document its line is in (for the commit message template). */
function withObjects(text: string, changes: SetterChange[]): FileUpdate['changes'] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines });
  const list = Array.isArray(docs) ? docs : [docs];
  const spans = list.map((doc) => {
    const str = (path: string[]): string => {
      const v = doc.getIn(path);
      return typeof v === 'string' ? v : '';
    };
    return {
      start: lines.linePos(doc.range[0]).line,
      end: lines.linePos(doc.range[2]).line,
      object: {
        apiVersion: str(['apiVersion']),
        kind: str(['kind']),
        name: str(['metadata', 'name']),
        namespace: str(['metadata', 'namespace']),
      },
    };
  });
  const none: ChangedObject = { apiVersion: '', kind: '', name: '', namespace: '' };
  return changes.map((c) => ({
    ...c,
    object: spans.find((s) => c.line >= s.start && c.line <= s.end)?.object ?? none,
  }));
}
