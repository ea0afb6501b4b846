import { expect } from 'chai';
import {
  InvalidRefError,
  RefNotFoundError,
  resolveRef,
  revisionOf,
  semverRange,
  validateRef,
  type AdvertisedRef,
} from './refs.ts';

const sha = (c: string) => c.repeat(40).slice(0, 40);
const advertised: AdvertisedRef[] = [
  { ref: 'HEAD', oid: sha('a') },
  { ref: 'refs/heads/master', oid: sha('a') },
  { ref: 'refs/heads/main', oid: sha('b') },
  { ref: 'refs/tags/v1.0.0', oid: sha('c') },
  { ref: 'refs/tags/v1.2.0', oid: sha('d'), peeled: sha('e') },
  { ref: 'refs/tags/v2.0.0-rc.1', oid: sha('f') },
  { ref: 'refs/tags/not-semver', oid: sha('1') },
  { ref: 'refs/pull/7/head', oid: sha('2') },
];

describe('GitRepository ref resolution', () => {
  it('defaults to the master branch', () => {
    expect(resolveRef(undefined, advertised)).to.deep.include({
      fetchRef: 'refs/heads/master',
      commit: sha('a'),
      revisionName: 'master',
      shallow: true,
    });
  });

  it('follows Flux precedence: commit > name > semver > tag > branch', () => {
    const all = { branch: 'main', tag: 'v1.0.0', semver: '>=1.0.0', name: 'refs/pull/7/head', commit: sha('9') };
    expect(resolveRef(all, advertised)).to.deep.include({ commit: sha('9'), revisionName: 'main', shallow: false });
    const { commit: _c, ...noCommit } = all;
    expect(resolveRef(noCommit, advertised)).to.deep.include({ commit: sha('2'), revisionName: 'refs/pull/7/head' });
    const { name: _n, ...noName } = noCommit;
    expect(resolveRef(noName, advertised)).to.deep.include({ commit: sha('e'), revisionName: 'v1.2.0' });
    const { semver: _s, ...noSemver } = noName;
    expect(resolveRef(noSemver, advertised)).to.deep.include({ commit: sha('c'), revisionName: 'v1.0.0' });
    const { tag: _t, ...branchOnly } = noSemver;
    expect(resolveRef(branchOnly, advertised)).to.deep.include({ commit: sha('b'), revisionName: 'main' });
  });

  it('peels annotated tags to their commit and keeps the tag object for verification', () => {
    expect(resolveRef({ tag: 'v1.2.0' }, advertised)).to.deep.include({
      commit: sha('e'),
      tagObject: sha('d'),
      fetchRef: 'refs/tags/v1.2.0',
    });
    expect(resolveRef({ tag: 'v1.0.0' }, advertised)).to.not.have.property('tagObject');
  });

  it('picks the highest tag in a semver range, without prereleases unless asked', () => {
    expect(resolveRef({ semver: '*' }, advertised).revisionName).to.equal('v1.2.0');
    expect(resolveRef({ semver: '~1.0' }, advertised).revisionName).to.equal('v1.0.0');
    expect(resolveRef({ semver: '>=2.0.0-rc.0' }, advertised).revisionName).to.equal('v2.0.0-rc.1');
    expect(() => resolveRef({ semver: '>=3' }, advertised)).to.throw(
      RefNotFoundError,
      "no tag matches semver range '>=3'",
    );
  });

  it('a commit alone is fetched in full and has a bare sha1 revision', () => {
    const r = resolveRef({ commit: sha('9') }, advertised);
    expect(r).to.deep.include({ fetchRef: undefined, shallow: false, revisionName: '' });
    expect(revisionOf(r.revisionName, sha('9'))).to.equal(`sha1:${sha('9')}`);
    expect(revisionOf('main', sha('9'))).to.equal(`main@sha1:${sha('9')}`);
  });

  it('names what is missing', () => {
    expect(() => resolveRef({ branch: 'nope' }, advertised)).to.throw(
      RefNotFoundError,
      "couldn't find remote ref 'refs/heads/nope' for branch 'nope'",
    );
    expect(() => resolveRef({ tag: 'v9' }, advertised)).to.throw(RefNotFoundError, 'refs/tags/v9');
    expect(() => resolveRef({ commit: sha('9'), branch: 'gone' }, advertised)).to.throw(RefNotFoundError, 'gone');
  });

  it('rejects refs that can never resolve, before asking any server', () => {
    expect(() => validateRef({ semver: '>=1.0.0 <<' })).to.throw(InvalidRefError, "invalid semver range '>=1.0.0 <<'");
    expect(() => validateRef({ commit: 'abc' })).to.throw(InvalidRefError, 'full 40-character');
    expect(() => validateRef({ name: 'main' })).to.throw(InvalidRefError, 'refs/heads/main');
    expect(() => validateRef({ semver: 'latest' })).to.throw(InvalidRefError);
    expect(() => validateRef({ branch: 'main', semver: '^1' })).to.not.throw();
  });

  it('reads ranges in the syntax Flux documents', () => {
    expect(semverRange('>= 1.2, < 2.0').toString()).to.equal('>=1.2 <2.0');
    expect(semverRange('1.2 - 1.4.5 || ~2').toString()).to.equal('>=1.2 <=1.4.5 || ~2');
    expect(resolveRef({ semver: '>= 1.0, < 1.1' }, advertised).revisionName).to.equal('v1.0.0');
  });
});

describe('GitRepository semver refs where Masterminds/semver (Flux) and node-semver disagree', () => {
  const tags = (...names: string[]): AdvertisedRef[] =>
    names.map((name, i) => ({ ref: `refs/tags/${name}`, oid: sha(String(i + 1)) }));
  const pick = (range: string, refs: AdvertisedRef[]) => resolveRef({ semver: range }, refs).revisionName;
  const releases = tags('v1.0.0', 'v1.1.0', 'v1.1.5', 'v1.2.0', 'v2.0.0', 'v2.1.0-rc.1', 'v2.1.0');

  it('accepts != and the reversed operators => and =<', () => {
    expect(pick('>=1.0.0, !=2.1.0, <3', releases)).to.equal('v2.0.0');
    expect(pick('=> 1.1, =< 1.1.9', releases)).to.equal('v1.1.5');
  });

  it('reads ~0.0.0 as any version, and 1.1-3 as a version with a prerelease, not a range', () => {
    expect(pick('~0.0.0', releases)).to.equal('v2.1.0');
    expect(pick('1.1-3', releases)).to.equal('v1.1.5');
  });

  it('lets a prerelease anywhere in an AND group admit prereleases of any version', () => {
    const withPre = tags('v1.0.0', 'v1.5.0-rc.1', 'v2.0.0');
    expect(pick('>= 1.0.0 <= 2.0.0-beta', withPre)).to.equal('v1.5.0-rc.1');
    expect(pick('>= 1.0.0 < 2.0.0', withPre)).to.equal('v1.0.0');
    expect(pick('~1.2.3-beta.2', tags('v1.2.4-beta.2', 'v1.3.0'))).to.equal('v1.2.4-beta.2');
  });

  it('only considers tags that are strict SemVer but for a leading v, as Flux parses tags', () => {
    expect(pick('*', tags('v1.0.0', 'v3', 'v2.1', '04.0.0', 'V5.0.0', '1.5.0'))).to.equal('1.5.0');
    expect(() => pick('>=2', tags('v3', 'v2.1'))).to.throw(RefNotFoundError);
  });

  it('ignores build metadata when comparing, the name settling ties', () => {
    expect(pick('^1', tags('v1.2.0+b.2', 'v1.2.0+b.1', 'v1.1.0'))).to.equal('v1.2.0+b.1');
  });

  it('names why a range does not parse', () => {
    expect(() => validateRef({ semver: '>=1.0 <<' })).to.throw(InvalidRefError, 'improper constraint');
    expect(() => validateRef({ semver: '12.3.34~ 1.2.3' })).to.throw(InvalidRefError);
    expect(() => validateRef({ semver: '1.2.3.4' })).to.throw(InvalidRefError);
  });
});
