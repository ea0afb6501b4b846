// Chart version lists of Helm repository indexes, without holding an index in the heap. The Helm
// helper parses an index once per digest into a file of one JSON line per chart; a lookup streams
// that file for the one chart it needs, and the few lists in use are kept in a small LRU.
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface IndexVersion {
  version: string;
  digest?: string;
  urls?: string[];
  created?: string;
  apiVersion?: string;
}

export interface IndexSummary {
  charts: number;
  versions: number;
}

/** What parses an index file (the Helm helper's index.parse). */
export interface IndexParser {
  parseIndex(params: { path: string; out: string }, opts?: { signal?: AbortSignal }): Promise<IndexSummary>;
}

const LRU_SIZE = 256;

export class ChartIndexes {
  readonly #parser: IndexParser;
  readonly #dir: string;
  readonly #parsing = new Map<string, Promise<IndexSummary>>();
  readonly #lists = new Map<string, IndexVersion[] | null>();

  constructor(parser: IndexParser, dir: string) {
    this.#parser = parser;
    this.#dir = dir;
  }

  #file(digest: string): string {
    return join(this.#dir, `${digest.replace(/^sha256:/, '')}.jsonl`);
  }

  /** Validates and splits the index at `indexPath` (digest `digest`), once per digest. */
  prepare(indexPath: string, digest: string, signal?: AbortSignal): Promise<IndexSummary> {
    let pending = this.#parsing.get(digest);
    if (!pending) {
      pending = (async () => {
        await mkdir(this.#dir, { recursive: true });
        return this.#parser.parseIndex({ path: indexPath, out: this.#file(digest) }, { signal });
      })();
      this.#parsing.set(digest, pending);
      // A failure is not remembered: the next reconcile asks again.
      pending.catch(() => this.#parsing.delete(digest));
    }
    return pending;
  }

  /** The versions of `chart` in the index (newest first, as Helm sorts them); undefined when it has none. */
  async versions(indexPath: string, digest: string, chart: string): Promise<IndexVersion[] | undefined> {
    const key = `${digest}/${chart}`;
    const cached = this.#lists.get(key);
    if (cached !== undefined) {
      this.#lists.delete(key);
      this.#lists.set(key, cached);
      return cached ?? undefined;
    }
    const file = this.#file(digest);
    const present = await stat(file).then(
      () => true,
      () => false,
    );
    if (!present) await this.prepare(indexPath, digest);
    const list = await findChart(file, chart);
    this.#lists.set(key, list ?? null);
    if (this.#lists.size > LRU_SIZE) this.#lists.delete(this.#lists.keys().next().value!);
    return list;
  }

  /** Forgets every parsed index but those of `digests` (the ones repositories publish now). */
  async retain(digests: Iterable<string>): Promise<void> {
    const keep = new Set([...digests].map((d) => this.#file(d)));
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    await Promise.all(
      names
        .map((n) => join(this.#dir, n))
        .filter((f) => !keep.has(f))
        .map((f) => rm(f, { force: true })),
    );
    for (const digest of [...this.#parsing.keys()]) if (!keep.has(this.#file(digest))) this.#parsing.delete(digest);
    for (const key of [...this.#lists.keys()]) {
      if (!keep.has(this.#file(key.slice(0, key.indexOf('/'))))) this.#lists.delete(key);
    }
  }
}

async function findChart(file: string, chart: string): Promise<IndexVersion[] | undefined> {
  const prefix = `{"name":${JSON.stringify(chart)},`;
  const input = createReadStream(file);
  let failure: Error | undefined;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  input.on('error', (err) => {
    failure ??= err;
    lines.close();
  });
  try {
    for await (const line of lines) {
      if (!line.startsWith(prefix)) continue;
      const entry = JSON.parse(line) as { name: string; versions?: IndexVersion[] };
      return entry.versions ?? [];
    }
    if (failure) throw failure;
    return undefined;
  } finally {
    lines.close();
    input.destroy();
  }
}
