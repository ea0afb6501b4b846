// oci:// URLs as Flux reads them, and the references composed from them.
import { expect } from 'chai';
import {
  InvalidReferenceError,
  checkReference,
  childRepository,
  digestReference,
  isDigest,
  parseOciUrl,
  repositoryName,
  tagReference,
} from './reference.ts';

const sha = `sha256:${'a'.repeat(64)}`;

describe('parseOciUrl', () => {
  it('splits host, port and a nested repository path', () => {
    expect(parseOciUrl('oci://ghcr.io/stefanprodan/manifests/podinfo')).to.deep.equal({
      registry: 'ghcr.io',
      repository: 'stefanprodan/manifests/podinfo',
    });
    expect(parseOciUrl('oci://127.0.0.1:5000/app')).to.deep.equal({ registry: '127.0.0.1:5000', repository: 'app' });
    expect(parseOciUrl('oci://localhost/a/b')).to.deep.equal({ registry: 'localhost', repository: 'a/b' });
    expect(parseOciUrl('oci://[::1]:5000/x')).to.deep.equal({ registry: '[::1]:5000', repository: 'x' });
    expect(parseOciUrl('oci://registry.example.com/a_b/c.d/e__f/g-h/')).to.deep.equal({
      registry: 'registry.example.com',
      repository: 'a_b/c.d/e__f/g-h',
    });
  });

  it('reads a first path element that is no host as Docker Hub, as go-containerregistry does', () => {
    expect(parseOciUrl('oci://stefanprodan/podinfo')).to.deep.equal({
      registry: 'index.docker.io',
      repository: 'stefanprodan/podinfo',
    });
    expect(parseOciUrl('oci://nginx')).to.deep.equal({ registry: 'index.docker.io', repository: 'library/nginx' });
  });

  it('admits a bare host only when the repository is optional (HelmRepository)', () => {
    expect(() => parseOciUrl('oci://ghcr.io')).to.throw(InvalidReferenceError, /repository path after 'ghcr.io'/);
    expect(parseOciUrl('oci://ghcr.io/', { repositoryOptional: true })).to.deep.equal({
      registry: 'ghcr.io',
      repository: '',
    });
  });

  const bad: [string, RegExp][] = [
    ['https://ghcr.io/org/app', /URL must be in format 'oci:\/\/<domain>\/<org>\/<repo>', not 'https:\/\/'/],
    ['ghcr.io/org/app', /URL must be in format/],
    ['oci://', /registry host is missing/],
    ['oci://ghcr.io/org/app:v1.0.0', /URL must not contain a tag; remove ':v1.0.0'/],
    [`oci://ghcr.io/org/app@${sha}`, /must not contain a digest/],
    ['oci://ghcr.io/Org/app', /'Org' must be lowercase/],
    ['oci://ghcr.io/org//app', /empty path element/],
    ['oci://ghcr.io/org/-app', /invalid repository path element '-app'/],
    ['oci://ghcr.io/org/app?x=1', /query or fragment/],
    ['oci://gh_cr.io/app', /invalid registry host 'gh_cr.io'/],
    ['oci://ghcr.io:99999/app', /invalid port 99999/],
    [`oci://ghcr.io/${'a'.repeat(260)}`, /longer than 255/],
  ];
  for (const [url, message] of bad) {
    it(`refuses ${url.length > 60 ? `${url.slice(0, 60)}…` : url}`, () => {
      expect(() => parseOciUrl(url)).to.throw(InvalidReferenceError, message);
    });
  }

  it('never echoes credentials of a URL', () => {
    for (const url of ['https://user:s3cret@ghcr.io/app', 'oci://user:s3cret@ghcr.io/app', 'user:s3cret@ghcr.io/a']) {
      expect(() => parseOciUrl(url)).to.throw(InvalidReferenceError);
      try {
        parseOciUrl(url);
      } catch (err) {
        expect((err as Error).message).not.to.include('s3cret');
      }
    }
  });
});

describe('references', () => {
  const repo = { registry: '127.0.0.1:5000', repository: 'org/app' };

  it('composes tag and digest references', () => {
    expect(repositoryName(repo)).to.equal('127.0.0.1:5000/org/app');
    expect(tagReference(repo, 'v1.2.3')).to.equal('127.0.0.1:5000/org/app:v1.2.3');
    expect(digestReference(repo, sha)).to.equal(`127.0.0.1:5000/org/app@${sha}`);
    expect(childRepository({ registry: 'ghcr.io', repository: 'charts' }, 'podinfo')).to.deep.equal({
      registry: 'ghcr.io',
      repository: 'charts/podinfo',
    });
    expect(childRepository({ registry: 'ghcr.io', repository: '' }, 'podinfo').repository).to.equal('podinfo');
  });

  it('tells digests from tags and checks both', () => {
    expect(isDigest(sha)).to.equal(true);
    expect(isDigest('latest')).to.equal(false);
    expect(() => checkReference(sha)).not.to.throw();
    expect(() => checkReference(`sha512:${'b'.repeat(128)}`)).not.to.throw();
    expect(() => checkReference('sha256:abc')).to.throw(InvalidReferenceError, /invalid digest/);
    expect(() => tagReference(repo, '.hidden')).to.throw(InvalidReferenceError, /invalid tag '.hidden'/);
    expect(() => tagReference(repo, 'a'.repeat(129))).to.throw(InvalidReferenceError, /invalid tag/);
    expect(() => tagReference(repo, 'v1+build')).to.throw(InvalidReferenceError, /invalid tag/);
    expect(() => childRepository(repo, 'Bad')).to.throw(InvalidReferenceError, /lowercase/);
  });
});
