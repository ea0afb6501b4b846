// Downloads a source artifact (status.artifact.url), checks it against status.artifact.digest and
// unpacks it. The tarball goes to a temporary file first: nothing from it is unpacked before its
// digest is known to match, and it is never held in memory.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { ArtifactError, ArtifactNotFoundError } from './errors.ts';
import { ExtractError, extractTarball, type ExtractSummary } from '../../runtime/extract.ts';

export interface FetchOptions {
  /** status.artifact.digest: "<algorithm>:<hex>", sha256, sha384 or sha512. */
  digest: string;
  /** Limit on the bytes downloaded, and separately on the summed size of the unpacked files. */
  maxBytes: number;
  /** Limit on the download, from the request to the last byte. */
  timeoutMs: number;
  /** Limit on the number of entries in the tarball; default 100000. */
  maxEntries?: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;
const DIGEST = /^(sha256|sha384|sha512):([0-9a-f]+)$/;

function parseDigest(digest: string): { algorithm: string; hex: string } {
  const m = DIGEST.exec(digest);
  if (!m)
    throw new ArtifactError(
      `unsupported artifact digest ${JSON.stringify(digest)}; expected sha256:<hex>, sha384:<hex> or sha512:<hex>`,
    );
  return { algorithm: m[1]!, hex: m[2]! };
}

function hashingLimit(algorithm: string, maxBytes: number, url: string): { stream: Transform; digest: () => string } {
  const hash = createHash(algorithm);
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes)
        return done(new ArtifactError(`artifact ${url} is larger than the limit of ${maxBytes} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { stream, digest: () => `${algorithm}:${hash.digest('hex')}` };
}

async function download(url: string, file: string, opts: FetchOptions): Promise<void> {
  const { algorithm } = parseDigest(opts.digest);
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    throw new ArtifactError(`downloading artifact ${url}: ${describe(err, opts.timeoutMs)}`);
  }
  if (response.status === 404) {
    await response.body?.cancel();
    throw new ArtifactNotFoundError(`artifact ${url} not found (HTTP 404)`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new ArtifactError(`downloading artifact ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  }
  const meter = hashingLimit(algorithm, opts.maxBytes, url);
  try {
    await pipeline(
      Readable.fromWeb(response.body as ReadableStream<Uint8Array>),
      meter.stream,
      createWriteStream(file),
    );
  } catch (err) {
    if (err instanceof ArtifactError) throw err;
    throw new ArtifactError(`downloading artifact ${url}: ${describe(err, opts.timeoutMs)}`);
  }
  const actual = meter.digest();
  if (actual !== opts.digest)
    throw new ArtifactError(`artifact ${url} failed verification: expected digest ${opts.digest}, got ${actual}`);
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: Error };
  if (e.name === 'TimeoutError') return `timed out after ${timeoutMs}ms`;
  return e.cause?.message ? `${e.message}: ${e.cause.message}` : e.message;
}

/**
 * Downloads the artifact at `url`, verifies its digest and unpacks it into `destDir` (empty or
 * not yet existing). Throws ArtifactNotFoundError on 404 and ArtifactError on anything else,
 * naming the offending entry when the tarball holds something unsafe.
 */
export async function fetchArtifact(url: string, opts: FetchOptions, destDir: string): Promise<ExtractSummary> {
  const scratch = await mkdtemp(join(tmpdir(), 'tide-artifact-'));
  try {
    const file = join(scratch, 'artifact.tar.gz');
    await download(url, file, opts);
    return await extractTarball(createReadStream(file), destDir, {
      maxBytes: opts.maxBytes,
      maxEntries: opts.maxEntries ?? DEFAULT_MAX_ENTRIES,
    }).catch((err: unknown) => {
      throw err instanceof ExtractError ? new ArtifactError(err.message) : err;
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
