// Bare repositories for the git servers, built with the real git CLI. Commits are written with
// plumbing straight into the bare repository (no work tree), with a fixed identity and date, so
// the same calls always produce the same SHAs.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Files of a commit: path → content; `null` deletes the path from the parent's tree. */
export type FileChanges = Record<string, string | null>;

export interface CreateRepoOptions {
  /** Files of the first commit. */
  files: Record<string, string>;
  /** The branch of the first commit, also the repository's HEAD. Default `main`. */
  branch?: string;
  message?: string;
}

export interface Repo {
  /** Absolute path of the bare repository, `<root>/<name>.git`. */
  path: string;
  /** SHA of the first commit. */
  commit: string;
}

export interface CommitOptions {
  branch: string;
  files: FileChanges;
  message?: string;
  /** Parent commit; default the branch's tip, or none when the branch does not exist yet. */
  parent?: string;
}

export interface TagOptions {
  /** A commit SHA or any revision git understands. */
  target: string;
  /** Makes an annotated tag with this message; a lightweight tag without it. */
  message?: string;
}

// A fixed identity and date; the user's own git configuration must not change the outcome.
const gitEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Tide Test',
  GIT_AUTHOR_EMAIL: 'test@tide.invalid',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'Tide Test',
  GIT_COMMITTER_EMAIL: 'test@tide.invalid',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};

/** Runs git and returns its trimmed stdout; the error names the command and git's stderr. */
export function git(
  args: string[],
  opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      { cwd: opts.cwd, env: { ...gitEnv, ...opts.env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`git ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
        else resolve(stdout.trim());
      },
    );
    // git may exit before reading all of stdin; that surfaces as its own error, not EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input);
  });
}

/** Creates `<root>/<name>.git` with one commit on `branch`; `root` is created when missing. */
export async function createRepo(root: string, name: string, opts: CreateRepoOptions): Promise<Repo> {
  const branch = opts.branch ?? 'main';
  const repoPath = path.join(root, `${name}.git`);
  fs.mkdirSync(root, { recursive: true });
  await git(['init', '--quiet', '--bare', `--initial-branch=${branch}`, repoPath]);
  const sha = await commit(repoPath, { branch, files: opts.files, message: opts.message ?? 'initial commit' });
  return { path: repoPath, commit: sha };
}

/** Adds a commit to `branch` (creating the branch when needed) and returns its SHA. */
export async function commit(repoPath: string, opts: CommitOptions): Promise<string> {
  const parent = opts.parent ?? (await revParse(repoPath, `refs/heads/${opts.branch}`));
  // A private index keeps concurrent commits to different branches apart.
  const indexDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-git-index-'));
  const env = { GIT_INDEX_FILE: path.join(indexDir, 'index') };
  try {
    await git(parent ? ['read-tree', parent] : ['read-tree', '--empty'], { cwd: repoPath, env });
    for (const [file, content] of Object.entries(opts.files)) {
      if (content === null) {
        // Mode 0 removes the entry; unlike --force-remove it needs no work tree.
        await git(['update-index', '--index-info'], { cwd: repoPath, env, input: `0 ${'0'.repeat(40)}\t${file}\n` });
      } else {
        const blob = await git(['hash-object', '-w', '--stdin'], { cwd: repoPath, input: content });
        await git(['update-index', '--add', '--cacheinfo', `100644,${blob},${file}`], { cwd: repoPath, env });
      }
    }
    const tree = await git(['write-tree'], { cwd: repoPath, env });
    const parents = parent ? ['-p', parent] : [];
    const sha = await git(['commit-tree', tree, ...parents, '-m', opts.message ?? `update ${opts.branch}`], {
      cwd: repoPath,
    });
    await git(['update-ref', `refs/heads/${opts.branch}`, sha], { cwd: repoPath });
    return sha;
  } finally {
    fs.rmSync(indexDir, { recursive: true, force: true });
  }
}

/** Points `refs/heads/<name>` at `from` (a SHA or revision) and returns the commit SHA. */
export async function branch(repoPath: string, name: string, from: string): Promise<string> {
  const sha = await git(['rev-parse', '--verify', `${from}^{commit}`], { cwd: repoPath });
  await git(['update-ref', `refs/heads/${name}`, sha], { cwd: repoPath });
  return sha;
}

/**
 * Creates `refs/tags/<name>`. Returns the SHA the ref points at: the tag object for an annotated
 * tag, the commit for a lightweight one. The commit behind either is `revParse(repo, name + '^{}')`.
 */
export async function tag(repoPath: string, name: string, opts: TagOptions): Promise<string> {
  const target = await git(['rev-parse', '--verify', `${opts.target}^{commit}`], { cwd: repoPath });
  if (opts.message === undefined) {
    await git(['update-ref', `refs/tags/${name}`, target], { cwd: repoPath });
  } else {
    await git(['tag', '--annotate', '--message', opts.message, name, target], { cwd: repoPath });
  }
  return git(['rev-parse', `refs/tags/${name}`], { cwd: repoPath });
}

/** The SHA `rev` resolves to, or undefined when it does not exist. */
export async function revParse(repoPath: string, rev: string): Promise<string | undefined> {
  try {
    return await git(['rev-parse', '--verify', '--quiet', rev], { cwd: repoPath });
  } catch {
    return undefined;
  }
}
