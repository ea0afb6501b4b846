import { expect } from 'chai';
import { DEFAULT_EXCLUSIONS, makeMatcher } from './ignore.ts';

describe('makeMatcher', () => {
  const excluded = (m: (p: string, d: boolean) => boolean, paths: string[], isDir = false) =>
    paths.filter((p) => m(p, isDir));

  it('applies the default exclusions at any depth', () => {
    const m = makeMatcher({ sourceIgnores: [] });
    const paths = [
      '.gitignore',
      'sub/.gitattributes',
      '.gitmodules',
      '.github/workflows/ci.yml',
      'a/.circleci/config.yml',
      'img/logo.png',
      'a/b/photo.jpeg',
      'dist/app.tar.gz',
      'x.zip',
      '.travis.yml',
      'a/.gitlab-ci.yml',
      'appveyor.yml',
      '.drone.yml',
      'cloudbuild.yaml',
      'codeship-services.yml',
      'codeship-steps.yml',
      'a/b/.goreleaser.yml',
      '.sops.yaml',
      'clusters/prod/.flux.yaml',
    ];
    expect(excluded(m, paths)).to.deep.equal(paths);
    expect(m('.git', true)).to.equal(true);
    expect(m('.github', true)).to.equal(true);
  });

  it('keeps ordinary files, and matches case-sensitively like git', () => {
    const m = makeMatcher({ sourceIgnores: [] });
    expect(
      excluded(m, ['deploy/app.yaml', 'README.md', 'LOGO.PNG', 'github/x.yml', 'a.tar', 'kustomization.yaml']),
    ).to.deep.equal([]);
  });

  it('lists every default in DEFAULT_EXCLUSIONS', () => {
    const lines = DEFAULT_EXCLUSIONS.trim().split('\n');
    expect(lines).to.include.members(['.git/', '.github/', '*.tar.gz', '**/.flux.yaml', 'cloudbuild.yaml']);
    expect(lines).to.have.length(24);
  });

  it('lets spec.ignore replace the defaults, keeping the VCS exclusions', () => {
    const m = makeMatcher({ specIgnore: '*.md\n', sourceIgnores: [] });
    expect(
      excluded(m, ['README.md', 'docs/a.md', '.gitignore', 'logo.png', '.github/ci.yml', 'app.yaml']),
    ).to.deep.equal(['README.md', 'docs/a.md', '.gitignore']);
  });

  it('treats a spec.ignore or .sourceignore without patterns as absent', () => {
    const m = makeMatcher({ specIgnore: '# nothing\n\n', sourceIgnores: [{ dir: '', content: '# comment only\n' }] });
    expect(m('logo.png', false)).to.equal(true);
  });

  it('drops the defaults when a .sourceignore has patterns, as Flux does', () => {
    const m = makeMatcher({ sourceIgnores: [{ dir: '', content: 'secret/\n' }] });
    expect(excluded(m, ['secret/a', 'logo.png', '.github/ci.yml', '.gitmodules'])).to.deep.equal([
      'secret/a',
      '.gitmodules',
    ]);
  });

  it('scopes a .sourceignore to its directory', () => {
    const m = makeMatcher({
      sourceIgnores: [
        { dir: 'apps', content: '*.txt\n/only-here.yaml\n' },
        { dir: '', content: '/top.yaml\n' },
      ],
    });
    expect(
      excluded(m, [
        'apps/a.txt',
        'apps/x/b.txt',
        'apps/only-here.yaml',
        'apps/x/only-here.yaml',
        'a.txt',
        'apps2/a.txt',
        'only-here.yaml',
        'top.yaml',
        'apps/top.yaml',
      ]),
    ).to.deep.equal(['apps/a.txt', 'apps/x/b.txt', 'apps/only-here.yaml', 'top.yaml']);
  });

  it('gives deeper .sourceignore files and then spec.ignore the last word', () => {
    const m = makeMatcher({
      specIgnore: '!keep.txt\n',
      sourceIgnores: [
        { dir: 'apps/dev', content: '!*.yaml\n' },
        { dir: '', content: '*.yaml\n*.txt\n' },
      ],
    });
    expect(
      excluded(m, [
        'a.yaml',
        'apps/a.yaml',
        'apps/dev/a.yaml',
        'apps/dev/x/b.yaml',
        'a.txt',
        'keep.txt',
        'apps/keep.txt',
      ]),
    ).to.deep.equal(['a.yaml', 'apps/a.yaml', 'a.txt']);
  });

  it('re-includes the contents of a negated directory', () => {
    const m = makeMatcher({ specIgnore: '/*\n!/deploy\n/deploy/**/*.md\n', sourceIgnores: [] });
    expect(
      excluded(m, ['README.md', 'src/main.go', 'deploy/app.yaml', 'deploy/x/y.yaml', 'deploy/x/notes.md']),
    ).to.deep.equal(['README.md', 'src/main.go', 'deploy/x/notes.md']);
    expect(m('deploy', true)).to.equal(false);
    expect(m('src', true)).to.equal(true);
  });

  it('matches directory-only patterns against directories and their contents only', () => {
    const m = makeMatcher({ specIgnore: 'build/\n', sourceIgnores: [] });
    expect(m('build', false)).to.equal(false);
    expect(m('build', true)).to.equal(true);
    expect(m('a/build/out.yaml', false)).to.equal(true);
  });

  it('accepts directories written with slashes around them', () => {
    const m = makeMatcher({ sourceIgnores: [{ dir: '/apps/', content: '*.txt\n' }] });
    expect(m('apps/a.txt', false)).to.equal(true);
    expect(m('a.txt', false)).to.equal(false);
  });
});
