// Superprojects for submodule tests: a commit whose tree holds files, gitlinks (mode 160000) and
// the .gitmodules that names them, written with plumbing into a bare repository.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { git, revParse } from './repos.ts';

export interface Gitlink {
  /** Where the submodule sits in the superproject. */
  path: string;
  /** The submodule URL as .gitmodules records it (absolute, or relative like ../lib.git). */
  url: string;
  /** The submodule commit the gitlink records. */
  commit: string;
}

/** Commits `files` plus `links` (and their .gitmodules) on `branch` of a bare repository; returns the SHA. */
export async function commitWithSubmodules(
  repoPath: string,
  branch: string,
  files: Record<string, string>,
  links: Gitlink[],
): Promise<string> {
  const parent = await revParse(repoPath, `refs/heads/${branch}`);
  const indexDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-git-index-'));
  const env = { GIT_INDEX_FILE: path.join(indexDir, 'index') };
  const gitmodules = links.map((l) => `[submodule "${l.path}"]\n\tpath = ${l.path}\n\turl = ${l.url}\n`).join('');
  try {
    await git(parent ? ['read-tree', parent] : ['read-tree', '--empty'], { cwd: repoPath, env });
    for (const [file, content] of Object.entries({ ...files, '.gitmodules': gitmodules })) {
      const blob = await git(['hash-object', '-w', '--stdin'], { cwd: repoPath, input: content });
      await git(['update-index', '--add', '--cacheinfo', `100644,${blob},${file}`], { cwd: repoPath, env });
    }
    for (const l of links) {
      await git(['update-index', '--add', '--cacheinfo', `160000,${l.commit},${l.path}`], { cwd: repoPath, env });
    }
    const tree = await git(['write-tree'], { cwd: repoPath, env });
    const sha = await git(['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', 'submodules'], {
      cwd: repoPath,
    });
    await git(['update-ref', `refs/heads/${branch}`, sha], { cwd: repoPath });
    return sha;
  } finally {
    fs.rmSync(indexDir, { recursive: true, force: true });
  }
}
