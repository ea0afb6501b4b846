// Artifacts are hashed and measured as they are written, never read back.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

export interface DigestMeter {
  /** Pass-through stream to put in front of the file. */
  stream: Transform;
  /** "sha256:<hex>" and byte count of everything that went through; call once, at the end. */
  result(): { digest: string; size: number };
}

export function digestMeter(): DigestMeter {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ digest: `sha256:${hash.digest('hex')}`, size }) };
}
