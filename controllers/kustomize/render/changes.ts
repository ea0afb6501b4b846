// Which directories of a source changed from one artifact to the next, so that the Kustomizations
// whose spec.path changed are reconciled first when a new revision arrives. Only an ordering hint:
// every Kustomization of the source is still reconciled, and one whose build did not change
// records the new revision without applying (reconciler.ts). A digest per directory (path → 16
// hex digits) is kept for the last two artifacts of each source, not the files.
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';

/** An unpacked artifact, released after reading. */
export type ReadArtifact = (artifact: { url: string; digest: string }) => Promise<{ dir: string; release(): void }>;

/**
 * The order in which to queue the Kustomizations of a source's new revision: those whose path
 * `changed` (undefined: unknown) first, each exactly once (a key queued again while a worker
 * already has it would be reconciled a second time).
 */
export function queueOrder<K extends { spec?: { path?: string } }>(
  waiting: readonly K[],
  changed: ((path: string | undefined) => boolean) | undefined,
): K[] {
  if (!changed) return [...waiting];
  const first = waiting.filter((k) => changed(k.spec?.path));
  return [...first, ...waiting.filter((k) => !first.includes(k))];
}

export class SourceChanges {
  readonly #trees = new Map<string, { digest: string; dirs: Promise<Map<string, string>> }[]>();
  readonly #read: ReadArtifact;

  constructor(read: ReadArtifact) {
    this.#read = read;
  }

  /** Whether a Kustomization path differs between the two artifacts of `source`. */
  async changed(
    source: string,
    before: { url: string; digest: string },
    after: { url: string; digest: string },
  ): Promise<(path: string | undefined) => boolean> {
    const old = await this.#dirs(source, before);
    const now = await this.#dirs(source, after);
    return (path) => {
      const key = normalize(path);
      return old.get(key) !== now.get(key);
    };
  }

  /** Reads the artifact now, so that the next revision only needs its own read to compare. */
  async remember(source: string, artifact: { url: string; digest: string }): Promise<void> {
    await this.#dirs(source, artifact);
  }

  forget(source: string): void {
    this.#trees.delete(source);
  }

  #dirs(source: string, artifact: { url: string; digest: string }): Promise<Map<string, string>> {
    const known = this.#trees.get(source) ?? [];
    const found = known.find((t) => t.digest === artifact.digest);
    if (found) return found.dirs;
    const entry = { digest: artifact.digest, dirs: this.#digests(artifact) };
    this.#trees.set(source, [...known, entry].slice(-2));
    // A failed read is not remembered.
    entry.dirs.catch(() => {
      const now = this.#trees.get(source);
      if (now)
        this.#trees.set(
          source,
          now.filter((t) => t !== entry),
        );
    });
    return entry.dirs;
  }

  async #digests(artifact: { url: string; digest: string }): Promise<Map<string, string>> {
    const lease = await this.#read(artifact);
    const dirs = new Map<string, string>();
    try {
      await digestDir(lease.dir, '', dirs);
    } finally {
      lease.release();
    }
    return dirs;
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
