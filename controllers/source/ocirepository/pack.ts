// Packs an extracted OCI layer (a directory) into the OCIRepository artifact, as Flux's
// Storage.Archive does: regular files only (symlinks and other special files are left out), the
// `.sourceignore` files of the tree and spec.ignore over the default exclusions, entries in a
// stable order with zeroed times and owners, so the same content gives the same digest.
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Header, Pack } from 'tar-stream';
import { digestMeter } from '../digest.ts';
import { makeMatcher, SOURCEIGNORE, type SourceIgnoreFile } from '../git/ignore.ts';

interface Item {
  path: string;
  size: number;
  mode: number;
}

const EPOCH = new Date(0);

/** Regular files under `root`, posix paths relative to it, in code-unit order. */
async function listFiles(root: string, dir = '', items: Item[] = []): Promise<Item[]> {
  for (const name of await readdir(join(root, dir))) {
    const path = dir === '' ? name : `${dir}/${name}`;
    const st = await lstat(join(root, path));
    if (st.isDirectory()) await listFiles(root, path, items);
    else if (st.isFile()) items.push({ path, size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 });
  }
  return items;
}

/** One entry, one file at a time: memory stays near the size of the largest file. */
function entry(pack: Pack, header: Partial<Header> & { name: string }, body?: Buffer): Promise<void> {
  const full = { mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '', ...header };
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (body) pack.entry(full, body, done);
    else pack.entry(full, done);
  });
}

/**
 * Writes the .tar.gz of `root` to `outFile` with the ignore rules; returns its digest and size.
 * The caller writes to a temporary file and renames it (Storage.writeAtomic).
 */
export async function packDirectory(
  root: string,
  outFile: string,
  specIgnore: string | undefined,
): Promise<{ digest: string; size: number; files: number }> {
  const all = await listFiles(root);
  all.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const sourceIgnores: SourceIgnoreFile[] = [];
  for (const it of all) {
    if (it.path !== SOURCEIGNORE && !it.path.endsWith(`/${SOURCEIGNORE}`)) continue;
    const dir = it.path.slice(0, -SOURCEIGNORE.length).replace(/\/$/, '');
    sourceIgnores.push({ dir, content: await readFile(join(root, it.path), 'utf8') });
  }
  const exclude = makeMatcher({ specIgnore, sourceIgnores });
  const included = all.filter((it) => !exclude(it.path, false));

  const pack = tar.pack();
  const meter = digestMeter();
  const written = pipeline(pack, createGzip(), meter.stream, createWriteStream(outFile));
  written.catch(() => {});
  try {
    const dirs = new Set<string>();
    for (const it of included) {
      for (let i = it.path.indexOf('/'); i !== -1; i = it.path.indexOf('/', i + 1)) {
        const d = it.path.slice(0, i);
        if (dirs.has(d)) continue;
        dirs.add(d);
        await entry(pack, { name: `${d}/`, type: 'directory', mode: 0o755 });
      }
      const body = await readFile(join(root, it.path));
      await entry(pack, { name: it.path, type: 'file', mode: it.mode, size: body.length }, body);
    }
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => {});
    throw err;
  }
  return { ...meter.result(), files: included.length };
}
