// Benchmark of GitRepository fetch + package (make bench-source): a repository of 10k files with
// some history, served by git http-backend on 127.0.0.1.
// Baseline on the same machine and server: `git clone --depth 1 --single-branch` + `tar czf` of
// the checkout without .git. Tide's side is the controller's own code path (list refs, shallow
// fetch without a work tree, stream blobs into the tarball) in its own process.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGitHttpServer } from '../support/git/http-server.ts';

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const COMMITS = 5;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, {
    cwd,
    maxBuffer: 1 << 28,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'b',
      GIT_AUTHOR_EMAIL: 'b@b',
      GIT_COMMITTER_NAME: 'b',
      GIT_COMMITTER_EMAIL: 'b@b',
    },
  }).toString();
}

/** A deterministic repository: FILES files of ~1 KiB in 100 directories, COMMITS commits. */
function buildRepo(root: string): void {
  const bare = join(root, 'big.git');
  if (existsSync(bare)) return;
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });
  sh('git', ['init', '-q', '-b', 'main'], work);
  let seed = 1;
  const text = (n: number) => {
    let s = '';
    while (s.length < n) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      s += `${seed.toString(36)} `;
    }
    return s;
  };
  for (let c = 0; c < COMMITS; c++) {
    const count = c === 0 ? FILES : Math.ceil(FILES / 100);
    for (let i = 0; i < count; i++) {
      const dir = join(work, `dir-${String(i % 100).padStart(3, '0')}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `file-${String(i).padStart(5, '0')}.yaml`), `revision: ${c}\n${text(1000)}\n`);
    }
    sh('git', ['add', '-A'], work);
    sh('git', ['commit', '-q', '-m', `commit ${c}`], work);
  }
  sh('git', ['clone', '-q', '--bare', work, bare]);
  rmSync(work, { recursive: true, force: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Asynchronous on purpose: the git server runs in this process and must keep answering.
const exec = promisify(execFile);

async function peakRssOf(cmd: string, args: string[]): Promise<{ ms: number; rssMB: number }> {
  const t = performance.now();
  const { stderr } = await exec('/usr/bin/time', ['-f', '%M', cmd, ...args]);
  return { ms: performance.now() - t, rssMB: Math.round(Number(stderr.trim().split('\n').at(-1)) / 1024) };
}

const root = join(
  process.env.TIDE_CACHE ?? join(process.env.HOME ?? tmpdir(), '.cache', 'tide'),
  `bench-source-${FILES}`,
);
mkdirSync(root, { recursive: true });
buildRepo(root);
const server = await startGitHttpServer({ root });
try {
  const url = server.url('big');
  const git: { ms: number; rssMB: number }[] = [];
  const tide: { ms: number; fetchMs: number; maxRssMB: number; files: number; size: number }[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dir = mkdtempSync(join(tmpdir(), 'tide-bench-git-'));
    const clone = await peakRssOf('git', [
      'clone',
      '-q',
      '--depth',
      '1',
      '--single-branch',
      '--branch',
      'main',
      url,
      join(dir, 'checkout'),
    ]);
    const pack = await peakRssOf('tar', [
      'czf',
      join(dir, 'out.tar.gz'),
      '--exclude=.git',
      '-C',
      join(dir, 'checkout'),
      '.',
    ]);
    git.push({ ms: clone.ms + pack.ms, rssMB: Math.max(clone.rssMB, pack.rssMB) });
    rmSync(dir, { recursive: true, force: true });
    const { stdout } = await exec(process.execPath, [join(import.meta.dirname, 'source-fetch.ts'), url, 'main']);
    tide.push(JSON.parse(stdout.trim().split('\n').at(-1)!));
  }
  const g = median(git.map((r) => r.ms));
  const t = median(tide.map((r) => r.ms));
  console.log(
    `tide source benchmark: ${FILES} files, ${COMMITS} commits, git http-backend on 127.0.0.1, ` +
      `median of ${RUNS} runs, Node ${process.version}`,
  );
  console.log(
    `baseline git clone --depth 1 + tar czf   ${(g / 1000).toFixed(2)}s   ` +
      `peak RSS ${Math.max(...git.map((r) => r.rssMB))} MB (largest process)`,
  );
  console.log(
    `tide fetch + package                     ${(t / 1000).toFixed(2)}s   ` +
      `peak RSS ${Math.max(...tide.map((r) => r.maxRssMB))} MB (whole process)   ` +
      `fetch ${(median(tide.map((r) => r.fetchMs)) / 1000).toFixed(2)}s   ` +
      `${tide[0]!.files} files, ${(tide[0]!.size / 1048576).toFixed(1)} MiB artifact`,
  );
  console.log(`ratio tide / git                         ${(t / g).toFixed(2)}x   (target: at most 1.5x, under 100 MB)`);
} finally {
  await server.close();
}
