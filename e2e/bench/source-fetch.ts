// The source controller's fetch + package path for one URL, in a process of its own so that its
// time and memory are measured alone (make bench-source runs it). Prints JSON.
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeArtifact } from '../../controllers/source/git/archive.ts';
import { openTransport } from '../../controllers/source/git/transport.ts';
import { fetchCommit, listRefs } from '../../controllers/source/gitrepository/checkout.ts';
import { resolveRef } from '../../controllers/source/gitrepository/refs.ts';

const [url, branch] = process.argv.slice(2) as [string, string];
const work = mkdtempSync(join(tmpdir(), 'tide-bench-fetch-'));
const started = performance.now();
const transport = openTransport(url, {}, { timeoutMs: 600_000 });
try {
  const resolved = resolveRef({ branch }, await listRefs(transport));
  const fetchedAt = performance.now();
  const commit = await fetchCommit(join(work, 'git'), transport, resolved);
  const fetchMs = performance.now() - fetchedAt;
  const summary = await writeArtifact({ fs, gitdir: join(work, 'git'), commit, out: join(work, 'artifact.tar.gz') });
  process.stdout.write(
    `${JSON.stringify({
      ms: performance.now() - started,
      fetchMs,
      maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      digest: summary.digest,
      files: summary.files,
      size: summary.size,
    })}\n`,
  );
} finally {
  transport.close();
  rmSync(work, { recursive: true, force: true });
}
