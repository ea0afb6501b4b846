// The tags an ImageRepository scanned, kept on disk (one file per ImageRepository, as Flux's file
// storage keeps them) so that they are not held in the Node heap between reconciles: an
// ImagePolicy reads them when it evaluates, and lets them go. A list over COMPRESS_ABOVE bytes is
// gzipped. Writes go to a temporary file renamed into place, so a reader sees the old list or the
// new one, never half of one.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Lists above this many bytes are stored gzipped. */
export const COMPRESS_ABOVE = 64 * 1024;

export class TagStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Replaces the tags of `key` (namespace/name); returns the revision of the list (see revisionOf). */
  async write(key: string, tags: readonly string[]): Promise<string> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const text = tags.join('\n');
    const plain = Buffer.byteLength(text) <= COMPRESS_ABOVE;
    const body = plain ? Buffer.from(text) : await gzipAsync(text);
    const base = this.#base(key);
    const path = `${base}${plain ? '.txt' : '.txt.gz'}`;
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, body, { mode: 0o600 });
    await rename(tmp, path);
    // The other encoding, if the list changed size class since the last write.
    await rm(`${base}${plain ? '.txt.gz' : '.txt'}`, { force: true });
    return revisionOf(tags);
  }

  /** The tags of `key`, in the order written, or undefined when none were stored. */
  async read(key: string): Promise<string[] | undefined> {
    const base = this.#base(key);
    for (const [suffix, decode] of [
      ['.txt', async (b: Buffer) => b.toString('utf8')],
      ['.txt.gz', async (b: Buffer) => (await gunzipAsync(b)).toString('utf8')],
    ] as const) {
      const body = await readFile(`${base}${suffix}`).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (body === undefined) continue;
      const text = await decode(body);
      return text === '' ? [] : text.split('\n');
    }
    return undefined;
  }

  async remove(key: string): Promise<void> {
    const base = this.#base(key);
    await Promise.all([rm(`${base}.txt`, { force: true }), rm(`${base}.txt.gz`, { force: true })]);
  }

  #base(key: string): string {
    // Names are hashed: a namespace/name pair maps to one file whatever characters it holds.
    return join(this.#dir, createHash('sha256').update(key).digest('hex').slice(0, 32));
  }
}

/** "sha256:<hex>" of the tags as a sorted, newline-separated list: the same tags give the same revision. */
export function revisionOf(tags: readonly string[]): string {
  const sorted = [...tags].sort();
  return `sha256:${createHash('sha256').update(sorted.join('\n')).digest('hex')}`;
}
