// Packs one commit of a git object database into the GitRepository artifact (.tar.gz), without a
// work tree. The bytes depend only on the tree and the exclusion rules, so an unchanged commit
// yields the same digest on every controller and every run.
import { Transform } from 'node:stream';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import git from 'isomorphic-git';
import type { FsClient } from 'isomorphic-git';
import { FileSystem } from 'isomorphic-git/models';
import tar from 'tar-stream';
import type { Header, Pack } from 'tar-stream';
import { resolveSymlink } from '../../runtime/symlinks.ts';
import { digestMeter } from '../digest.ts';
import { makeMatcher, SOURCEIGNORE } from './ignore.ts';
import type { ExcludeFn } from './ignore.ts';

export interface WriteArtifactOptions {
  fs: typeof import('node:fs');
  gitdir: string;
  commit: string;
  /**
   * A file path (created or truncated; removed on failure) or a stream, which writeArtifact then
   * owns: ended on success, destroyed on failure.
   */
  out: NodeJS.WritableStream | string;
  /**
   * Asked about files and symlinks only; a directory is packed when something below it is.
   * Defaults to the rules of the tree's `.sourceignore` files and `specIgnore`.
   */
  exclude?: ExcludeFn;
  specIgnore?: string;
  /** Limit on the summed size of the packed files' contents. */
  maxBytes?: number;
  /** spec.sparseCheckout: only these directories ("a/b", clean) are packed. */
  sparse?: readonly string[];
  /**
   * Submodules to pack in place of their gitlinks: path in the artifact → commit, whose objects
   * must be in the same object database.
   */
  submodules?: ReadonlyMap<string, string>;
}

export interface ArtifactSummary {
  /** "sha256:<hex>" of the .tar.gz bytes. */
  digest: string;
  /** Bytes of the .tar.gz. */
  size: number;
  /** Files and symlinks packed. */
  files: number;
}

interface TreeItem {
  path: string;
  oid: string;
  kind: 'file' | 'exec' | 'symlink';
}

const EPOCH = new Date(0);

/**
 * isomorphic-git wraps (and probes) a plain fs on every call and lists objects/pack for every
 * packed object it reads. One wrapper for the whole artifact, whose directory listings hold for
 * its duration, takes a third off the time: nothing writes to the object database meanwhile.
 */
class SnapshotFs extends FileSystem {
  readonly #listings = new Map<string, Promise<string[] | null>>();

  override readdir(path: string): Promise<string[] | null> {
    let listing = this.#listings.get(path);
    if (!listing) {
      listing = super.readdir(path);
      this.#listings.set(path, listing);
    }
    return listing;
  }
}

interface Reader {
  fs: FsClient;
  gitdir: string;
  // isomorphic-git re-reads pack indexes and packs on every call unless they share a cache.
  cache: object;
}

async function readText(r: Reader, oid: string): Promise<string> {
  const { blob } = await git.readBlob({ fs: r.fs, gitdir: r.gitdir, oid, cache: r.cache });
  return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).toString('utf8');
}

// A tree from an untrusted remote could name an entry '..' or 'a/b'; packed as is, it would
// write outside the directory the artifact is unpacked into.
function checkName(name: string, dir: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new Error(`tree ${dir === '' ? '/' : dir} has an invalid entry name ${JSON.stringify(name)}`);
  }
}

interface TreeFilter {
  sparse?: readonly string[] | undefined;
  submodules?: ReadonlyMap<string, string> | undefined;
}

/** Whether anything at or below `path` can be in the sparse selection. */
function inSparse(sparse: readonly string[] | undefined, path: string, isDir: boolean): boolean {
  if (!sparse) return true;
  return sparse.some((d) => path === d || path.startsWith(`${d}/`) || (isDir && d.startsWith(`${path}/`)));
}

async function listTree(
  r: Reader,
  oid: string,
  dir: string,
  items: TreeItem[],
  filter: TreeFilter = {},
): Promise<void> {
  const { tree } = await git.readTree({ fs: r.fs, gitdir: r.gitdir, oid, cache: r.cache });
  for (const e of tree) {
    checkName(e.path, dir);
    const path = dir === '' ? e.path : `${dir}/${e.path}`;
    if (!inSparse(filter.sparse, path, e.type !== 'blob')) continue;
    if (e.type === 'tree') await listTree(r, e.oid, path, items, filter);
    else if (e.type === 'commit') {
      // A submodule has no content in this repository; when fetched, its own tree takes its place.
      const commit = filter.submodules?.get(path);
      if (commit === undefined) continue;
      if (commit !== e.oid) throw new Error(`submodule ${path} is at ${e.oid}, not at the fetched ${commit}`);
      const { commit: c } = await git.readCommit({ fs: r.fs, gitdir: r.gitdir, oid: commit, cache: r.cache });
      await listTree(r, c.tree, path, items, filter);
    } else if (e.type === 'blob') {
      const kind = e.mode === '120000' ? 'symlink' : e.mode === '100755' ? 'exec' : 'file';
      items.push({ path, oid: e.oid, kind });
    }
  }
}

/**
 * Whether a symlink ends up outside the root once unpacked, through any other symlinks of the
 * tree. Loops never resolve, so they cannot escape.
 */
function escapesRoot(links: Map<string, string>, path: string): boolean {
  return resolveSymlink(links, path) === null;
}

type EntryHeader = Partial<Header> & Pick<Header, 'name'>;

// tar-stream emits headers, contents and padding as separate small chunks; zlib handles each
// write as a job on the thread pool, so batching them halves the time spent compressing.
function batched(bytes: number): Transform {
  let parts: Buffer[] = [];
  let length = 0;
  const take = () => {
    const all = Buffer.concat(parts, length);
    parts = [];
    length = 0;
    return all;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      // A large file passes through as it is rather than being copied.
      if (length === 0 && chunk.length >= bytes) return cb(null, chunk);
      parts.push(chunk);
      length += chunk.length;
      cb(null, length >= bytes ? take() : undefined);
    },
    flush(cb) {
      cb(null, length > 0 ? take() : undefined);
    },
  });
}

function addEntry(pack: Pack, header: EntryHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (body) pack.entry(header, body, done);
    else pack.entry(header, done);
  });
}

function header(
  name: string,
  type: 'file' | 'directory' | 'symlink',
  mode: number,
  extra?: Partial<Header>,
): EntryHeader {
  return { name, type, mode, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '', ...extra };
}

/** Ancestor directories of `path` not yet packed, shallowest first; marks them packed. */
function newDirs(path: string, packed: Set<string>): string[] {
  const dirs: string[] = [];
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const dir = path.slice(0, i);
    if (!packed.has(dir)) {
      packed.add(dir);
      dirs.push(dir);
    }
  }
  return dirs;
}

interface Plan {
  included: TreeItem[];
  links: Map<string, string>;
}

/** Decides what goes in, in which order, from ids and small blobs only (no file contents). */
async function plan(r: Reader, opts: WriteArtifactOptions): Promise<Plan> {
  const items: TreeItem[] = [];
  await listTree(r, opts.commit, '', items, { sparse: opts.sparse, submodules: opts.submodules });

  let exclude = opts.exclude;
  if (!exclude) {
    const sourceIgnores = [];
    for (const it of items) {
      if (it.kind === 'symlink' || !(it.path === SOURCEIGNORE || it.path.endsWith(`/${SOURCEIGNORE}`))) continue;
      sourceIgnores.push({ dir: it.path.slice(0, -SOURCEIGNORE.length - 1), content: await readText(r, it.oid) });
    }
    exclude = makeMatcher({ specIgnore: opts.specIgnore, sourceIgnores });
  }

  const links = new Map<string, string>();
  for (const it of items) if (it.kind === 'symlink') links.set(it.path, await readText(r, it.oid));

  const included = items.filter((it) => !exclude(it.path, false));
  // Code-unit order; stable across runs, which is what reproducibility needs.
  included.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const it of included) {
    if (it.kind === 'symlink' && escapesRoot(links, it.path)) {
      throw new Error(
        `symlink ${it.path} points outside the repository (target ${JSON.stringify(links.get(it.path))})`,
      );
    }
  }
  return { included, links };
}

/** Reads and packs one file at a time, so memory stays near the size of the largest file. */
async function packAll(r: Reader, { included, links }: Plan, pack: Pack, maxBytes?: number): Promise<void> {
  const dirs = new Set<string>();
  let total = 0;
  for (const it of included) {
    for (const dir of newDirs(it.path, dirs)) await addEntry(pack, header(`${dir}/`, 'directory', 0o755));
    if (it.kind === 'symlink') {
      await addEntry(pack, header(it.path, 'symlink', 0o777, { linkname: links.get(it.path) }));
      continue;
    }
    const { blob } = await git.readBlob({ fs: r.fs, gitdir: r.gitdir, oid: it.oid, cache: r.cache });
    total += blob.byteLength;
    if (maxBytes !== undefined && total > maxBytes) {
      throw new Error(`artifact exceeds the size limit of ${maxBytes} bytes: reached ${total} bytes at ${it.path}`);
    }
    const body = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    await addEntry(pack, header(it.path, 'file', it.kind === 'exec' ? 0o755 : 0o644, { size: body.length }), body);
  }
  pack.finalize();
}

/**
 * Writes the artifact of `commit` to `out`. Fails, writing nothing, when an included symlink
 * leads outside the repository; fails midway when the contents pass `maxBytes`.
 */
export async function writeArtifact(opts: WriteArtifactOptions): Promise<ArtifactSummary> {
  // isomorphic-git takes its own FileSystem wherever it takes an fs, without re-wrapping it.
  const r: Reader = { fs: new SnapshotFs(opts.fs) as unknown as FsClient, gitdir: opts.gitdir, cache: {} };
  let planned: Plan;
  try {
    planned = await plan(r, opts);
  } catch (err) {
    // Without an error argument: the caller learns of it from our rejection, not from an
    // 'error' event it may not listen to.
    if (typeof opts.out !== 'string') (opts.out as Partial<Writable>).destroy?.();
    throw err;
  }

  const pack = tar.pack();
  const meter = digestMeter();
  const sink = typeof opts.out === 'string' ? opts.fs.createWriteStream(opts.out) : opts.out;
  // Node's gzip header carries mtime 0 and no file name, so it adds nothing run-specific.
  const written = pipeline(pack, batched(64 * 1024), createGzip(), meter.stream, sink);
  // The pipeline may fail while entries are still being added; its error is rethrown below.
  written.catch(() => {});

  try {
    await packAll(r, planned, pack, opts.maxBytes);
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => {});
    if (typeof opts.out === 'string') await opts.fs.promises.rm(opts.out, { force: true });
    throw err;
  }
  return { ...meter.result(), files: planned.included.length };
}
