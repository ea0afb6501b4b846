// spec.sparseCheckout: the directories that alone end up in the artifact. Their shape is checked
// with the spec (Stalled InvalidSpec); whether they exist is a property of the commit, checked
// after the fetch and, as in Flux, a GitOperationFailed that a new commit may cure.
import * as fs from 'node:fs';
import { posix } from 'node:path';
import git from 'isomorphic-git';
import { failed, stalled } from '../../runtime/outcome.ts';
import { Reason } from '../../runtime/reasons.ts';

/**
 * The directories of spec.sparseCheckout as clean repository paths ("a/b"), in spec order; a
 * leading "./" and trailing "/" are dropped, as Flux drops them. Undefined when the field is
 * unset or empty. Throws a Stalled InvalidSpec outcome for an empty, absolute or escaping path.
 */
export function sparseDirs(list: readonly string[] | undefined): string[] | undefined {
  if (!list || list.length === 0) return undefined;
  return list.map((raw, i) => {
    const field = `spec.sparseCheckout[${i}]`;
    const bad = (why: string) => stalled(Reason.InvalidSpec, `invalid ${field} '${raw}': ${why}`);
    const trimmed = raw.trim();
    if (trimmed === '') throw bad('the path is empty');
    if (trimmed.startsWith('/')) throw bad('the path must be relative to the repository root');
    if (trimmed.includes('\0')) throw bad('the path contains a NUL byte');
    if (trimmed.split('/').includes('..')) throw bad("the path must not contain '..'");
    const clean = posix.normalize(trimmed).replace(/\/+$/, '');
    if (clean === '.' || clean === '') throw bad('the path names the repository root; leave sparseCheckout unset');
    return clean;
  });
}

/** Fails with GitOperationFailed, as Flux does, when one of `dirs` is not a directory of `commit`. */
export async function checkSparseDirs(gitdir: string, commit: string, dirs: readonly string[]): Promise<void> {
  const cache = {};
  for (const dir of dirs) {
    try {
      await git.readTree({ fs, gitdir, oid: commit, filepath: dir, cache });
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why =
        code === 'ObjectTypeError' ? 'is not a directory' : code === 'NotFoundError' ? 'does not exist' : undefined;
      if (!why) throw err;
      throw failed(
        Reason.GitOperationFailed,
        `failed to sparse checkout directories: sparse checkout dir '${dir}' ${why} in commit '${commit}'`,
      );
    }
  }
}
