// Artifact storage: files under <root>/<kind>/<namespace>/<name>/, written atomically, served
// over HTTP so that consumers download them by status.artifact.url, and garbage collected.
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat, symlink } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { basename, join, normalize, resolve, sep } from 'node:path';
import { listen } from '../runtime/http.ts';

export interface StorageOptions {
  root: string;
  /** Base of artifact URLs, e.g. http://source-controller.flux-system.svc.cluster.local. */
  advertisedBase: string;
  /** How many artifacts of one object are kept (the current one included). */
  retention: number;
}

export class Storage {
  readonly root: string;
  private readonly opts: StorageOptions;

  constructor(opts: StorageOptions) {
    this.opts = opts;
    this.root = resolve(opts.root);
  }

  objectDir(kind: string, namespace: string, name: string): string {
    return `${kind.toLowerCase()}/${namespace}/${name}`;
  }

  url(relPath: string): string {
    return `${this.opts.advertisedBase.replace(/\/$/, '')}/${relPath}`;
  }

  absolute(relPath: string): string {
    const abs = resolve(this.root, normalize(relPath));
    if (abs !== this.root && !abs.startsWith(this.root + sep))
      throw new Error(`path '${relPath}' escapes the storage root`);
    return abs;
  }

  async exists(relPath: string): Promise<boolean> {
    try {
      return (await stat(this.absolute(relPath))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Runs `write` against a temporary file next to the target and renames it into place, so that a
   * reader never sees a half-written artifact and a failed write leaves the old one untouched.
   */
  async writeAtomic<T>(relPath: string, write: (tmpPath: string) => Promise<T>): Promise<T> {
    const target = this.absolute(relPath);
    await mkdir(join(target, '..'), { recursive: true });
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const result = await write(tmp);
      await rename(tmp, target);
      return result;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Creates the directory `relDir` (and its parents) when missing. */
  async ensureDir(relDir: string): Promise<void> {
    await mkdir(this.absolute(relDir), { recursive: true });
  }

  /**
   * Points the symlink `relLink` at `relTarget` (a file in the same directory), replacing it
   * atomically: a stable URL for the newest artifact, as Flux's index.yaml.
   */
  async link(relLink: string, relTarget: string): Promise<void> {
    const link = this.absolute(relLink);
    const tmp = `${link}.${randomBytes(6).toString('hex')}.tmp`;
    await symlink(basename(this.absolute(relTarget)), tmp);
    try {
      await rename(tmp, link);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Deletes all but the `retention` newest artifacts of an object; `current` is always kept. */
  async garbageCollect(dir: string, current: string): Promise<string[]> {
    const abs = this.absolute(dir);
    let names: string[];
    try {
      names = await readdir(abs);
    } catch {
      return [];
    }
    const files = await Promise.all(
      names
        .filter((n) => !n.endsWith('.tmp'))
        .map(async (n) => {
          const st = await lstat(join(abs, n));
          return { rel: `${dir}/${n}`, mtime: st.mtimeMs, link: st.isSymbolicLink() };
        }),
    );
    const others = files
      .filter((f) => f.rel !== current && !f.link)
      .sort((a, b) => b.mtime - a.mtime || b.rel.localeCompare(a.rel));
    const doomed = others.slice(Math.max(0, this.opts.retention - 1));
    await Promise.all(doomed.map((f) => rm(this.absolute(f.rel), { force: true })));
    return doomed.map((f) => f.rel);
  }

  async removeAll(dir: string): Promise<void> {
    await rm(this.absolute(dir), { recursive: true, force: true });
  }

  /** Serves GET/HEAD of artifact files; nothing outside the root, no directory listings. */
  serve = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let abs: string;
    try {
      abs = this.absolute(decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, ''));
    } catch {
      res.writeHead(404).end('not found\n');
      return;
    }
    stat(abs).then(
      (st) => {
        if (!st.isFile()) {
          res.writeHead(404).end('not found\n');
          return;
        }
        res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': st.size });
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        createReadStream(abs)
          .on('error', () => res.destroy())
          .pipe(res);
      },
      () => res.writeHead(404).end('not found\n'),
    );
  };

  listen(addr: string): Promise<Server> {
    return listen('--storage-addr', addr, {}, this.serve);
  }
}
