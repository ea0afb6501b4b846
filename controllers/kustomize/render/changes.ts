// Which directories of a source changed from one artifact to the next, so that the Kustomizations
// whose spec.path changed are reconciled first when a new revision arrives. Only an ordering hint:
// every Kustomization of the source is still reconciled, and one whose build did not change
// records the new revision without applying (reconciler.ts). A digest per directory is kept per
// source (path → 16 hex digits), not the files.
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';

export class SourceChanges {
  readonly #trees = new Map<string, Map<string, string>>();

  /**
   * Reads the unpacked artifact `dir` of `source`; returns whether a Kustomization path changed
   * since the artifact read before for that source, or undefined when there was none.
   */
  async update(source: string, dir: string): Promise<((path: string | undefined) => boolean) | undefined> {
    const digests = new Map<string, string>();
    await digestDir(dir, '', digests);
    const before = this.#trees.get(source);
    this.#trees.set(source, digests);
    if (!before) return undefined;
    return (path) => {
      const key = normalize(path);
      return before.get(key) !== digests.get(key);
    };
  }

  forget(source: string): void {
    this.#trees.delete(source);
  }
}

/** spec.path as a key of the digests: '' for the root, no leading './' or '/', no trailing '/'. */
function normalize(path: string | undefined): string {
  const clean = posix.normalize(`./${(path ?? '').replace(/^\/+/, '')}`).replace(/\/+$/, '');
  return clean === '.' ? '' : clean;
}

async function digestDir(abs: string, rel: string, out: Map<string, string>): Promise<string> {
  const hash = createHash('sha256');
  const entries = await readdir(abs, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = join(abs, e.name);
    const childRel = rel ? `${rel}/${e.name}` : e.name;
    let digest: string;
    if (e.isDirectory()) digest = `d${await digestDir(path, childRel, out)}`;
    else if (e.isSymbolicLink()) digest = `l${await readlink(path)}`;
    else
      digest = `f${createHash('sha256')
        .update(await readFile(path))
        .digest('hex')}`;
    hash.update(`${e.name}\0${digest}\n`);
  }
  const digest = hash.digest('hex').slice(0, 16);
  out.set(rel, digest);
  return digest;
}
