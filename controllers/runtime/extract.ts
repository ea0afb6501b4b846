// Unpacks an artifact tarball into an empty directory (Kustomization sources, git charts, OCI
// layers). The tarball comes from another controller or a registry over the network, so every
// entry is treated as hostile: nothing may be written, or be reachable through a symlink, outside
// the directory, and the unpacked size and entry count are bounded.
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { resolveSymlink } from './symlinks.ts';

/** The tarball holds something unsafe or broken, or could not be read; the message names the entry. */
export class ExtractError extends Error {
  override name = 'ExtractError';
}

export interface ExtractLimits {
  /** Limit on the summed size of the files' contents. */
  maxBytes: number;
  /** Limit on the number of entries of any type. */
  maxEntries: number;
}

export interface ExtractSummary {
  files: number;
  bytes: number;
}

type Kind = 'file' | 'dir' | 'link';
type Entry = ReturnType<typeof tar.extract> extends AsyncIterable<infer E> ? E : never;

// The kernel gives up after 40 links in one lookup; a tree needing more is broken or hostile.

function refuse(name: string, why: string): ExtractError {
  return new ExtractError(`artifact entry ${JSON.stringify(name)} ${why}`);
}

/** The entry's path relative to the root, '' for the root itself. */
function entryPath(name: string): string {
  if (name.includes('\0')) throw refuse(name, 'has a NUL byte in its name');
  if (name.startsWith('/')) throw refuse(name, 'has an absolute path');
  const path = posix.normalize(name).replace(/\/+$/, '');
  if (path === '..' || path.startsWith('../')) throw refuse(name, 'points outside the artifact');
  return path === '.' ? '' : path;
}

/**
 * Where a symlink ends up below the root, null when it leaves it. Symlinks are only created once
 * the whole tree is known, so the map holds every link the kernel could meet.
 */
function resolveLink(links: Map<string, string>, link: string): string[] | null {
  const resolved = resolveSymlink(links, link);
  if (resolved === 'loop') throw refuse(link, 'is part of a symlink loop');
  return resolved;
}

class Unpacker {
  readonly #root: string;
  readonly #limits: ExtractLimits;
  readonly #kinds = new Map<string, Kind>();
  readonly #links = new Map<string, string>();
  readonly #madeDirs = new Set<string>();
  #entries = 0;
  files = 0;
  bytes = 0;

  constructor(root: string, limits: ExtractLimits) {
    this.#root = root;
    this.#limits = limits;
  }

  async entry(entry: Entry): Promise<void> {
    const { header } = entry;
    if (++this.#entries > this.#limits.maxEntries)
      throw refuse(header.name, `exceeds the limit of ${this.#limits.maxEntries} entries`);
    const path = entryPath(header.name);
    if (path === '') {
      entry.resume();
      return;
    }
    switch (header.type) {
      case 'directory':
        this.#claim(header.name, path, 'dir');
        await this.#mkdir(path);
        entry.resume();
        return;
      case 'file':
      case 'contiguous-file':
        return this.#file(entry, path);
      case 'symlink': {
        const target = header.linkname ?? '';
        if (target === '' || target.includes('\0')) throw refuse(header.name, 'is a symlink without a valid target');
        if (target.startsWith('/'))
          throw refuse(header.name, `is a symlink to the absolute path ${JSON.stringify(target)}`);
        this.#claim(header.name, path, 'link');
        this.#links.set(path, target);
        entry.resume();
        return;
      }
      case 'link':
        throw refuse(header.name, 'is a hard link; artifacts may not contain hard links');
      case 'character-device':
      case 'block-device':
      case 'fifo':
        throw refuse(header.name, `is a ${header.type}; artifacts may only contain files, directories and symlinks`);
      default:
        throw refuse(header.name, `has the unsupported type ${String(header.type)}`);
    }
  }

  /** Creates the symlinks, once the whole tree shows that none of them leads outside. */
  async finish(): Promise<void> {
    for (const [path, target] of this.#links) {
      if (resolveLink(this.#links, path) === null)
        throw refuse(path, `is a symlink to ${JSON.stringify(target)}, outside the artifact`);
    }
    for (const [path, target] of this.#links) {
      await this.#mkdir(dirname(path));
      await symlink(target, join(this.#root, path));
    }
  }

  async #file(entry: Entry, path: string): Promise<void> {
    const { header } = entry;
    this.#claim(header.name, path, 'file');
    const size = header.size ?? 0;
    if (this.bytes + size > this.#limits.maxBytes) {
      throw refuse(header.name, `takes the unpacked size past the limit of ${this.#limits.maxBytes} bytes`);
    }
    this.bytes += size;
    this.files++;
    await this.#mkdir(dirname(path));
    const mode = (header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
    await pipeline(entry, createWriteStream(join(this.#root, path), { flags: 'wx', mode }));
  }

  /**
   * Records what `path` is; refuses duplicates and any path below a symlink or a file. Writing
   * through a symlink is how an archive escapes its root, so nothing may be written below one.
   */
  #claim(name: string, path: string, kind: Kind): void {
    const segments = path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/');
      const parentKind = this.#kinds.get(parent);
      if (parentKind === 'link') throw refuse(name, `lies below the symlink ${JSON.stringify(parent)}`);
      if (parentKind === 'file') throw refuse(name, `lies below the file ${JSON.stringify(parent)}`);
      this.#kinds.set(parent, 'dir');
    }
    const existing = this.#kinds.get(path);
    if (existing !== undefined && !(existing === 'dir' && kind === 'dir'))
      throw refuse(name, 'appears twice in the artifact');
    this.#kinds.set(path, kind);
  }

  async #mkdir(path: string): Promise<void> {
    if (path === '' || path === '.' || this.#madeDirs.has(path)) return;
    await mkdir(join(this.#root, path), { recursive: true, mode: 0o755 });
    this.#madeDirs.add(path);
  }
}

/** Unpacks a .tar.gz stream into `destDir`, which must be empty or not exist yet. */
export async function extractTarball(
  source: Readable,
  destDir: string,
  limits: ExtractLimits,
): Promise<ExtractSummary> {
  // A file stream that fails to open errors before the pipeline below listens: keep that error.
  let early: Error | undefined;
  const onEarly = (err: Error) => {
    early ??= err;
  };
  source.on('error', onEarly);
  await mkdir(destDir, { recursive: true });
  if ((await readdir(destDir)).length > 0) {
    source.destroy();
    throw new ExtractError(`cannot unpack the artifact into ${destDir}: the directory is not empty`);
  }
  source.off('error', onEarly);
  if (early) throw new ExtractError(`reading the artifact: ${early.message}`);
  const unpacker = new Unpacker(destDir, limits);
  const extract = tar.extract();
  const reading = pipeline(source, createGunzip(), extract);
  try {
    for await (const entry of extract) await unpacker.entry(entry);
    await reading;
  } catch (err) {
    source.destroy();
    await reading.catch(() => undefined);
    if (err instanceof ExtractError) throw err;
    throw new ExtractError(`unpacking the artifact: ${(err as Error).message}`);
  }
  await unpacker.finish();
  return { files: unpacker.files, bytes: unpacker.bytes };
}
