import { expect } from 'chai';
import { SubmoduleError, parseGitmodules, resolveSubmoduleUrl } from './submodules.ts';

describe('GitRepository submodules', () => {
  it('reads .gitmodules in git-config syntax', () => {
    const text = [
      '# comment',
      '[submodule "lib"]',
      '\tpath = vendor/lib',
      '\turl = ../lib.git',
      '[submodule "with \\"quotes\\""]',
      '  url = "https://example.com/q.git" ; trailing comment',
      '  path = q/',
      '[core]',
      '  path = not-a-submodule',
      '[submodule "no-url"]',
      '  path = x',
    ].join('\n');
    expect(parseGitmodules(text)).to.deep.equal([
      { name: 'lib', path: 'vendor/lib', url: '../lib.git' },
      { name: 'with "quotes"', path: 'q', url: 'https://example.com/q.git' },
    ]);
  });

  it('resolves relative URLs against the superproject URL as git does', () => {
    expect(resolveSubmoduleUrl('../lib.git', 'https://h/org/app.git')).to.equal('https://h/org/lib.git');
    expect(resolveSubmoduleUrl('./lib.git', 'https://h/org/app.git')).to.equal('https://h/org/app.git/lib.git');
    expect(resolveSubmoduleUrl('../../x/y.git', 'ssh://git@h:2222/org/app.git')).to.equal('ssh://git@h:2222/x/y.git');
    expect(resolveSubmoduleUrl('https://other/r.git', 'https://h/org/app.git')).to.equal('https://other/r.git');
  });

  it('refuses URL kinds no transport speaks, without echoing credentials', () => {
    for (const url of ['git@github.com:org/r.git', 'file:///srv/r.git', 'git://user:pw@h/r.git']) {
      expect(() => resolveSubmoduleUrl(url, 'https://h/app.git'))
        .to.throw(SubmoduleError)
        .with.property('message')
        .that.does.not.contain('pw@');
    }
  });
});
