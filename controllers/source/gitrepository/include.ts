// spec.include: copies (parts of) other GitRepositories' artifacts into this one's. The result is
// written entry by entry from the tarballs, never unpacked to disk, and stays reproducible: the
// including artifact's entries first, then each include's in spec order.
import { createReadStream, createWriteStream } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';
import { digestMeter } from '../digest.ts';

export interface IncludeSource {
  /** Absolute path of the included GitRepository's artifact. */
  file: string;
  /** Directory of that artifact to copy; '' copies everything. */
  fromPath: string;
  /** Where it lands in this artifact. */
  toPath: string;
}

export class IncludePathError extends Error {}

/** Normalises a spec path to "a/b" (no leading ./ or /, no trailing /); rejects escapes. */
export function cleanPath(p: string, field: string): string {
  const n = posix.normalize(p.replace(/^\/+/, '') || '.').replace(/\/+$/, '');
  if (n === '..' || n.startsWith('../')) throw new IncludePathError(`${field} '${p}' points outside the artifact`);
  return n === '.' ? '' : n;
}

function under(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}

export async function mergeIncludes(
  baseFile: string,
  includes: IncludeSource[],
  outFile: string,
): Promise<{ digest: string; size: number }> {
  const pack = tar.pack();
  const meter = digestMeter();
  const written = pipeline(pack, createGzip(), meter.stream, createWriteStream(outFile));
  const targets = includes.map((i) => i.toPath);
  try {
    await copyEntries(pack, baseFile, (name) => (targets.some((t) => under(name, t)) ? undefined : name));
    for (const inc of includes) {
      await copyEntries(pack, inc.file, (name) => {
        if (!under(name, inc.fromPath)) return undefined;
        const rest = inc.fromPath === '' ? name : name.slice(inc.fromPath.length).replace(/^\/+/, '');
        return rest === '' ? undefined : posix.join(inc.toPath, rest);
      });
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    throw err;
  }
  await written;
  return meter.result();
}

/** Copies the entries of one .tar.gz into `pack`, renamed by `rename` (undefined drops the entry). */
async function copyEntries(pack: tar.Pack, file: string, rename: (name: string) => string | undefined): Promise<void> {
  const extract = tar.extract();
  const reading = pipeline(createReadStream(file), createGunzip(), extract);
  for await (const entry of extract) {
    const header = entry.header as Header;
    const name = rename(posix.normalize(header.name).replace(/^\/+|\/+$/g, ''));
    if (name === undefined || header.type === 'directory') {
      entry.resume();
      continue;
    }
    const target = pack.entry({ ...header, name, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' });
    await pipeline(entry, target);
  }
  await reading;
}
