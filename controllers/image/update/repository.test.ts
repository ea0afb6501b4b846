// The git side of an automation run against `git http-backend` (real receive-pack), checked with the git CLI.
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGitHttpServer, type GitHttpServer } from '../../../e2e/support/git/http-server.ts';
import { commit, createRepo, git, revParse } from '../../../e2e/support/git/repos.ts';
import { PushRejectedError } from '../../source/git/push.ts';
import { UpdatePathError } from './files.ts';
import { type AutomationGitRun, GitSpecError, PushError, RepositoryCache, runAutomationGit } from './repository.ts';

const auth = { username: 'bot', password: 'secret' };
const deployment = [
  'apiVersion: apps/v1',
  'kind: Deployment',
  'metadata:',
  '  name: web # the web tier',
  '  namespace: apps',
  'spec:',
  '  template:',
  '    spec:',
  '      containers:',
  '        - image: \'registry.example/web:1.2.3\' # {"$imagepolicy": "apps:web"}',
  '',
].join('\n');

describe('image update: checkout, commit and push', function () {
  this.timeout(60_000);
  let root: string;
  let server: GitHttpServer;
  let repoPath: string;
  let base: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tide-iua-git-'));
    server = await startGitHttpServer({ root, auth });
  });
  after(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });
  let n = 0;
  beforeEach(async () => {
    const repo = await createRepo(root, `apps-${++n}`, {
      files: { 'deploy/web.yaml': deployment, 'README.md': 'apps\n' },
    });
    repoPath = repo.path;
    base = repo.commit;
  });

  const settings = (): AutomationGitRun => ({
    url: server.url(`apps-${n}`),
    creds: auth,
    options: { timeoutMs: 20_000 },
    checkoutRef: { branch: 'main' },
    push: {},
    updatePath: './deploy',
    policies: new Map([['apps:web', { image: 'registry.example/web', tag: '1.2.4' }]]),
    author: { name: 'Image Bot', email: 'bot@example.com' },
    message: (u) => `Update ${u.updated.map((f) => f.path).join(', ')}`,
  });
  const run = (overrides: Partial<AutomationGitRun> = {}): Promise<Awaited<ReturnType<typeof runAutomationGit>>> =>
    runAutomationGit({ ...settings(), ...overrides });

  it('commits the rewritten file on top of the branch and pushes it, keeping every other byte', async () => {
    const result = await run();
    expect(result.kind).to.equal('pushed');
    if (result.kind !== 'pushed') return;
    expect(await revParse(repoPath, 'refs/heads/main')).to.equal(result.commit);
    expect(await git(['--git-dir', repoPath, 'rev-parse', `${result.commit}^`])).to.equal(base);
    expect(await git(['--git-dir', repoPath, 'show', 'main:deploy/web.yaml'])).to.equal(
      deployment.replace('web:1.2.3', 'web:1.2.4').trimEnd(),
    );
    expect(await git(['--git-dir', repoPath, 'log', '-1', '--format=%an <%ae>|%cn|%s', 'main'])).to.equal(
      'Image Bot <bot@example.com>|Image Bot|Update deploy/web.yaml',
    );
    expect(await git(['--git-dir', repoPath, 'fsck', '--strict'])).to.equal('');
    expect(result.sourceRevision).to.equal(`main@sha1:${result.commit}`);
    expect(result.refs).to.deep.equal(['refs/heads/main']);
  });

  it('pushes nothing when the files already hold the latest images, and stops early when up to date', async () => {
    const policies = new Map([['apps:web', { image: 'registry.example/web', tag: '1.2.3' }]]);
    const result = await run({ policies });
    expect(result).to.include({ kind: 'unchanged', sourceRevision: `main@sha1:${base}` });
    expect(await revParse(repoPath, 'refs/heads/main')).to.equal(base);
    let asked = '';
    const early = await run({
      upToDate: (rev) => {
        asked = rev;
        return true;
      },
    });
    expect(early).to.deep.equal({ kind: 'up-to-date', sourceRevision: `main@sha1:${base}` });
    expect(asked).to.equal(`main@sha1:${base}`);
  });

  it('redoes the update on the new tip when the branch moved before the push, never forcing', async () => {
    let moved = '';
    const result = await run({
      beforePush: async (attempt) => {
        if (attempt === 1) moved = await commit(repoPath, { branch: 'main', files: { 'README.md': 'moved\n' } });
      },
    });
    expect(result.kind).to.equal('pushed');
    if (result.kind !== 'pushed') return;
    expect(result.attempts).to.equal(2);
    expect(await git(['--git-dir', repoPath, 'rev-parse', 'main^'])).to.equal(moved);
    expect(await git(['--git-dir', repoPath, 'show', 'main:README.md'])).to.equal('moved');
    expect(await git(['--git-dir', repoPath, 'show', 'main:deploy/web.yaml'])).to.contain('web:1.2.4');
  });

  it('gives up after the attempts when the branch keeps moving, leaving the other commits', async () => {
    let last = '';
    const err = await run({
      maxAttempts: 2,
      beforePush: async (attempt) => {
        last = await commit(repoPath, { branch: 'main', files: { 'README.md': `moved ${attempt}\n` } });
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(PushRejectedError);
    expect((err as Error).message).to.match(/push refused 2 times because the branch kept moving/);
    expect(await revParse(repoPath, 'refs/heads/main')).to.equal(last);
  });

  it('creates the push branch from the checkout, then builds on it', async () => {
    const first = await run({ push: { branch: 'auto' } });
    expect(first.kind).to.equal('pushed');
    expect(await revParse(repoPath, 'refs/heads/main')).to.equal(base);
    expect(await git(['--git-dir', repoPath, 'rev-parse', 'auto^'])).to.equal(base);
    expect(first.sourceRevision).to.equal(`main@sha1:${base}`);
    const second = await run({
      push: { branch: 'auto' },
      policies: new Map([['apps:web', { image: 'registry.example/web', tag: '1.2.5' }]]),
    });
    expect(second.kind).to.equal('pushed');
    if (first.kind !== 'pushed' || second.kind !== 'pushed') return;
    expect(await git(['--git-dir', repoPath, 'rev-parse', 'auto^'])).to.equal(first.commit);
  });

  it('pushes to the refspec too, with push options the server receives', async () => {
    await git(['--git-dir', repoPath, 'config', 'receive.advertisePushOptions', 'true']);
    const seen = join(root, `options-${n}`);
    writeFileSync(
      join(repoPath, 'hooks', 'pre-receive'),
      `#!/bin/sh\ni=0\nwhile [ $i -lt "\${GIT_PUSH_OPTION_COUNT:-0}" ]; do\n` +
        `  eval "echo \\$GIT_PUSH_OPTION_$i" >> ${seen}\n  i=$((i+1))\ndone\ncat >> ${seen}\n`,
      { mode: 0o755 },
    );
    const result = await run({
      push: { refspec: 'refs/heads/main:refs/heads/release', options: { ci: 'skip', topic: 'images' } },
    });
    expect(result.kind).to.equal('pushed');
    if (result.kind !== 'pushed') return;
    expect(result.refs).to.deep.equal(['refs/heads/main', 'refs/heads/release']);
    expect(await revParse(repoPath, 'refs/heads/release')).to.equal(result.commit);
    const { readFileSync } = await import('node:fs');
    const lines = readFileSync(seen, 'utf8').trim().split('\n');
    expect(lines.slice(0, 2)).to.deep.equal(['ci=skip', 'topic=images']);
    expect(lines).to.have.length(4);
  });

  it('refuses forced refspecs and a refspec destination the commit does not contain', async () => {
    const forced = await run({ push: { refspec: '+HEAD:refs/heads/x' } }).catch((e: unknown) => e);
    expect(forced).to.be.instanceOf(GitSpecError);
    const other = await commit(repoPath, { branch: 'elsewhere', files: { 'x.txt': 'x\n' }, parent: base });
    const err = await run({ push: { branch: 'auto', refspec: 'HEAD:elsewhere' } }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(PushRejectedError);
    expect((err as Error).message).to.contain("refspec destination 'refs/heads/elsewhere'");
    expect(await revParse(repoPath, 'refs/heads/elsewhere')).to.equal(other);
    expect(await revParse(repoPath, 'refs/heads/auto')).to.equal(undefined);
  });

  it('does not retry a push a hook declines, and names refused credentials as a push failure', async () => {
    writeFileSync(join(repoPath, 'hooks', 'pre-receive'), '#!/bin/sh\necho "main is protected" >&2\nexit 1\n', {
      mode: 0o755,
    });
    let attempts = 0;
    const declined = await run({
      beforePush: async (attempt) => {
        attempts = attempt;
      },
    }).catch((e: unknown) => e);
    expect(declined).to.be.instanceOf(PushRejectedError);
    expect((declined as Error).message).to.contain('pre-receive hook declined');
    expect((declined as Error).message).to.contain('the server said: main is protected');
    expect(attempts).to.equal(1);
    expect(await revParse(repoPath, 'refs/heads/main')).to.equal(base);

    // Anonymous: git http-backend serves fetches but refuses receive-pack.
    const anonymous = await startGitHttpServer({ root });
    try {
      const err = await run({ url: anonymous.url(`apps-${n}`), creds: {} }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(PushError);
      expect(err).to.include({ auth: true });
    } finally {
      await anonymous.close();
    }
  });

  it('with a cache, runs one at a time per repository and fetches only what is new', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tide-iua-cache-'));
    try {
      const cache = new RepositoryCache(cacheDir);
      const files: Record<string, string> = {};
      for (let i = 0; i < 6; i++) files[`deploy/app-${i}.yaml`] = deployment.replaceAll('apps:web', `apps:app-${i}`);
      await commit(repoPath, { branch: 'main', files });
      const runs = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((i) =>
          runAutomationGit(
            {
              ...settings(),
              updatePath: './deploy',
              policies: new Map([[`apps:app-${i}`, { image: 'registry.example/web', tag: `2.0.${i}` }]]),
            },
            cache,
          ),
        ),
      );
      // Serialised: nobody's push was refused, so nobody had to redo its work.
      expect(runs.map((r) => (r.kind === 'pushed' ? r.attempts : r.kind))).to.deep.equal([1, 1, 1, 1, 1, 1]);
      expect(await git(['--git-dir', repoPath, 'rev-list', '--count', 'main'])).to.equal('8');
      for (let i = 0; i < 6; i++) {
        expect(await git(['--git-dir', repoPath, 'show', `main:deploy/app-${i}.yaml`])).to.contain(`web:2.0.${i}`);
      }
      expect(await git(['--git-dir', repoPath, 'fsck', '--strict'])).to.equal('');
      expect(readdirSync(cacheDir)).to.have.length(1);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it('reads the tree under the update path only, without following links', async () => {
    const target = await git(['--git-dir', repoPath, 'hash-object', '-w', '--stdin'], { input: 'deploy/web.yaml' });
    const main = await git(['--git-dir', repoPath, 'rev-parse', 'main^{tree}']);
    const listing = await git(['--git-dir', repoPath, 'ls-tree', main]);
    const tree = await git(['--git-dir', repoPath, 'mktree'], {
      input: `${listing}\n120000 blob ${target}\tlink.yaml\n`,
    });
    const linked = await git(['--git-dir', repoPath, 'commit-tree', tree, '-p', 'main', '-m', 'link'], {
      env: { GIT_AUTHOR_NAME: 'x', GIT_AUTHOR_EMAIL: 'x@x', GIT_COMMITTER_NAME: 'x', GIT_COMMITTER_EMAIL: 'x@x' },
    });
    await git(['--git-dir', repoPath, 'update-ref', 'refs/heads/main', linked]);
    const result = await run({ updatePath: undefined });
    expect(result.kind, JSON.stringify(result)).to.equal('pushed');
    if (result.kind !== 'pushed') return;
    expect(result.update.updated.map((u) => u.path)).to.deep.equal(['deploy/web.yaml']);
    expect(await git(['--git-dir', repoPath, 'ls-tree', 'main', 'link.yaml'])).to.contain(`120000 blob ${target}`);
    const outside = await run({ updatePath: '../elsewhere' }).catch((e: unknown) => e);
    expect(outside).to.be.instanceOf(UpdatePathError);
    expect(await run({ updatePath: './missing' })).to.include({ kind: 'unchanged' });
  });
});
