// Unpacked source artifacts, shared by every Kustomization that builds from the same revision.
// Each digest is downloaded, verified and unpacked once; builds read the tree and never write to
// it (build() copies the directory it changes). Without this, N Kustomizations reading one
// repository of N apps would unpack N² files on every resync.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchArtifact, type FetchOptions } from './fetch.ts';

export interface ArtifactLease {
  /** Root of the unpacked artifact: read it, never write to it. */
  dir: string;
  release(): void;
}

type Fetcher = (url: string, opts: FetchOptions, dest: string) => Promise<unknown>;

interface Entry {
  ready: Promise<string>;
  users: number;
  lastUsed: number;
}

export interface ArtifactCacheOptions {
  /** Unused trees kept for the next reconcile; the least recently used beyond this are removed. */
  keepIdle?: number;
  maxBytes: number;
  fetcher?: Fetcher;
}

export class ArtifactCache {
  private readonly entries = new Map<string, Entry>();
  private readonly dir: string;
  private readonly keepIdle: number;
  private readonly maxBytes: number;
  private readonly fetcher: Fetcher;
  private sequence = 0;
  /** Removals started by release(), one after the other; see evicted(). */
  private evicting: Promise<void> = Promise.resolve();

  constructor(dir: string, opts: ArtifactCacheOptions) {
    this.dir = dir;
    this.keepIdle = opts.keepIdle ?? 8;
    this.maxBytes = opts.maxBytes;
    this.fetcher = opts.fetcher ?? fetchArtifact;
  }

  /**
   * The artifact at `url` unpacked, downloading it unless a tree for `digest` is already there or
   * on its way. A failed download is not remembered: the next call tries again.
   */
  async acquire(url: string, digest: string, timeoutMs: number): Promise<ArtifactLease> {
    let entry = this.entries.get(digest);
    if (!entry) {
      const created: Entry = { ready: this.unpack(url, digest, timeoutMs), users: 0, lastUsed: 0 };
      created.ready.catch(() => {
        if (this.entries.get(digest) === created) this.entries.delete(digest);
      });
      this.entries.set(digest, created);
      entry = created;
    }
    entry.users++;
    let dir: string;
    try {
      dir = await entry.ready;
    } catch (err) {
      entry.users--;
      throw err;
    }
    let released = false;
    const held = entry;
    return {
      dir,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        held.lastUsed = ++this.sequence;
        // A tree that cannot be removed stays on disk; it must not reject an unawaited promise.
        this.evicting = this.evicting.then(() => this.evict()).catch(() => {});
      },
    };
  }

  /** Resolves once every removal started by the releases so far has finished (or failed): for tests. */
  evicted(): Promise<void> {
    return this.evicting;
  }

  /** Number of trees on disk or being unpacked; for tests and metrics. */
  get size(): number {
    return this.entries.size;
  }

  /** Removes every tree; leases still held keep working until their holders finish reading. */
  async clear(): Promise<void> {
    this.entries.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async unpack(url: string, digest: string, timeoutMs: number): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const dest = await mkdtemp(join(this.dir, 'artifact-'));
    try {
      await this.fetcher(url, { digest, maxBytes: this.maxBytes, timeoutMs }, dest);
      return dest;
    } catch (err) {
      await rm(dest, { recursive: true, force: true });
      throw err;
    }
  }

  private async evict(): Promise<void> {
    const idle = [...this.entries]
      .filter(([, e]) => e.users === 0 && e.lastUsed > 0)
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [digest, entry] of idle.slice(0, Math.max(0, idle.length - this.keepIdle))) {
      this.entries.delete(digest);
      await rm(await entry.ready, { recursive: true, force: true });
    }
  }
}
