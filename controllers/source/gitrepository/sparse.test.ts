import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ReconcileError } from '../../runtime/outcome.ts';
import { GIT_TEST_ENV } from '../git/test-env.ts';
import { checkSparseDirs, sparseDirs } from './sparse.ts';

function outcomeOf(fn: () => unknown): ReconcileError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ReconcileError);
    return err as ReconcileError;
  }
  throw new Error('expected a ReconcileError');
}

describe('GitRepository sparseCheckout', () => {
  it('cleans directories as Flux does: no leading ./, no trailing /', () => {
    expect(sparseDirs(undefined)).to.equal(undefined);
    expect(sparseDirs([])).to.equal(undefined);
    expect(sparseDirs(['./deploy/', 'charts', 'a//b/./c'])).to.deep.equal(['deploy', 'charts', 'a/b/c']);
  });

  it('stalls with InvalidSpec naming the entry for empty, absolute, escaping or root paths', () => {
    for (const [path, why] of [
      ['', /empty/],
      ['/etc', /relative/],
      ['../other', /'\.\.'/],
      ['deploy/../../x', /'\.\.'/],
      ['.', /root/],
      ['./', /root/],
    ] as const) {
      const err = outcomeOf(() => sparseDirs(['ok', path]));
      expect(err.outcome, path).to.equal('stalled');
      expect(err.reason).to.equal('InvalidSpec');
      expect(err.message).to.contain(`spec.sparseCheckout[1] '${path}'`).and.match(why);
    }
  });

  describe('against a commit', () => {
    let tmp: string;
    let gitdir: string;
    let commit: string;
    before(() => {
      tmp = mkdtempSync(join(tmpdir(), 'tide-sparse-'));
      const git = (...args: string[]) =>
        execFileSync('git', args, { cwd: tmp, env: GIT_TEST_ENV, encoding: 'utf8' }).trim();
      for (const f of ['deploy/app.yaml', 'deploy/sub/x.yaml', 'README.md']) {
        mkdirSync(dirname(join(tmp, f)), { recursive: true });
        writeFileSync(join(tmp, f), f);
      }
      git('init', '-q', '-b', 'main');
      git('add', '-A');
      git('commit', '-q', '-m', 'c');
      commit = git('rev-parse', 'HEAD');
      gitdir = join(tmp, '.git');
    });
    after(() => rmSync(tmp, { recursive: true, force: true }));

    it('accepts directories of the commit', async () => {
      await checkSparseDirs(gitdir, commit, ['deploy', 'deploy/sub']);
    });

    it('fails with GitOperationFailed (retried) for a missing directory or a file', async () => {
      for (const [dir, why] of [
        ['charts', 'does not exist'],
        ['README.md', 'is not a directory'],
      ]) {
        const err = (await checkSparseDirs(gitdir, commit, ['deploy', dir!]).catch((e) => e)) as ReconcileError;
        expect(err).to.be.instanceOf(ReconcileError);
        expect(err.outcome).to.equal('error');
        expect(err.reason).to.equal('GitOperationFailed');
        expect(err.message).to.contain(`sparse checkout dir '${dir}' ${why}`);
      }
    });
  });
});
