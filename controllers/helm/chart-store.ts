// Charts as their sources publish them (a HelmChart's packaged chart, an OCIRepository's artifact),
// downloaded once per digest and shared by every HelmRelease that uses them. What a chart is
// (name, version) is remembered per digest, so a release in sync never downloads its chart; the
// files themselves are kept for the most recently used digests only.
import { mkdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { download, HttpFetchError } from '../source/helm/http.ts';
import type { HelmHelper } from './client.ts';

export interface ChartArtifact {
  url: string;
  revision: string;
  digest?: string | undefined;
}

export interface ChartMeta {
  name: string;
  version: string;
}

/** A chart that cannot be had: its download failed, its digest differs, or Helm cannot load it. */
export class ChartLoadError extends Error {
  override name = 'ChartLoadError';
}

interface FileEntry {
  path: string;
  ready: Promise<void>;
  users: number;
}

const MAX_META = 10_000;

export class ChartStore {
  readonly #dir: string;
  readonly #helper: HelmHelper;
  readonly #maxFiles: number;
  readonly #maxBytes: number;
  readonly #meta = new Map<string, ChartMeta>();
  readonly #files = new Map<string, FileEntry>();

  constructor(opts: { dir: string; helper: HelmHelper; maxFiles?: number; maxBytes: number }) {
    this.#dir = opts.dir;
    this.#helper = opts.helper;
    this.#maxFiles = opts.maxFiles ?? 32;
    this.#maxBytes = opts.maxBytes;
  }

  /** Name and version of the chart, downloading and inspecting it the first time its digest is seen. */
  async meta(artifact: ChartArtifact, timeoutMs: number, signal?: AbortSignal): Promise<ChartMeta> {
    const known = this.#meta.get(keyOf(artifact));
    if (known) return known;
    const chart = await this.acquire(artifact, timeoutMs, signal);
    chart.release();
    return { name: chart.name, version: chart.version };
  }

  /** The chart file, held until release(); downloaded and checked against the artifact digest when new. */
  async acquire(
    artifact: ChartArtifact,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ChartMeta & { path: string; release(): void }> {
    const key = keyOf(artifact);
    let entry = this.#files.get(key);
    if (entry) {
      this.#files.delete(key); // most recently used last
      this.#files.set(key, entry);
    } else {
      const path = join(this.#dir, `${key.replace(/[^a-zA-Z0-9]/g, '_')}.tgz`);
      const created: FileEntry = { path, users: 0, ready: Promise.resolve() };
      created.ready = this.#fetch(artifact, path, timeoutMs, signal).catch((err: unknown) => {
        if (this.#files.get(key) === created) this.#files.delete(key);
        throw err;
      });
      entry = created;
      this.#files.set(key, entry);
      this.#evict();
    }
    entry.users++;
    const held = entry;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      held.users--;
      this.#evict();
    };
    try {
      await held.ready;
      const meta = this.#meta.get(key);
      if (meta) return { ...meta, path: held.path, release };
      const info = await this.#helper.inspectChart({ path: held.path }, { timeoutMs, signal }).catch((err: unknown) => {
        throw new ChartLoadError(`could not load chart: ${(err as Error).message}`);
      });
      this.#remember(key, { name: info.name, version: info.version });
      return { name: info.name, version: info.version, path: held.path, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Removes every file (on stop). */
  clear(): void {
    this.#files.clear();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #fetch(artifact: ChartArtifact, path: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    const url = new URL(artifact.url);
    let got: { digest: string };
    try {
      got = await download(url, path, {
        access: {},
        credentialsHost: url.host,
        timeoutMs,
        maxBytes: this.#maxBytes,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      const message = err instanceof HttpFetchError ? err.message : String((err as Error).message ?? err);
      throw new ChartLoadError(`failed to download chart for revision ${artifact.revision}: ${message}`);
    }
    if (artifact.digest && got.digest !== artifact.digest) {
      await rm(path, { force: true });
      throw new ChartLoadError(
        `chart artifact of revision ${artifact.revision} has digest ${got.digest}, expected ${artifact.digest}`,
      );
    }
  }

  #remember(key: string, meta: ChartMeta): void {
    this.#meta.set(key, meta);
    if (this.#meta.size > MAX_META) this.#meta.delete(this.#meta.keys().next().value!);
  }

  #evict(): void {
    if (this.#files.size <= this.#maxFiles) return;
    for (const [key, entry] of this.#files) {
      if (this.#files.size <= this.#maxFiles) break;
      if (entry.users > 0) continue;
      this.#files.delete(key);
      void entry.ready.then(
        () => rm(entry.path, { force: true }),
        () => undefined,
      );
    }
  }
}

function keyOf(a: ChartArtifact): string {
  return a.digest ?? `${a.url}@${a.revision}`;
}
