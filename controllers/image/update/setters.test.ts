import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applySetters, findMarkers, isYaml11NonString, type PolicyImage, SetterError } from './setters.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'testdata', 'flux-setters');
const DIGEST = 'sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be';

// The policies of Flux's pkg/update/update_test.go.
const fluxPolicies = new Map<string, PolicyImage>([
  ['automation-ns:policy', { image: 'index.repo.fake/updated', tag: 'v1.0.1' }],
  ['automation-ns:unchanged', { image: 'image', tag: 'v1.0.0' }],
  ['automation-ns:digest', { image: 'image', tag: 'v1.0.0', digest: DIGEST }],
]);

const policies = new Map<string, PolicyImage>([
  ['ns:app', { image: 'ghcr.io/org/app', tag: '2.0.0' }],
  ['ns:pinned', { image: 'ghcr.io/org/pinned', tag: '1.1.0', digest: 'sha256:abcd' }],
]);

describe('image update setters', () => {
  describe("Flux's testdata (pkg/update/testdata/setters)", () => {
    for (const file of readdirSync(join(fixtures, 'original'))) {
      it(`${file} matches byte for byte`, () => {
        const original = readFileSync(join(fixtures, 'original', file), 'utf8');
        const expectedPath = join(fixtures, 'expected', file);
        const expected = existsSync(expectedPath) ? readFileSync(expectedPath, 'utf8') : original;
        const result = applySetters(original, fluxPolicies, {});
        expect(result.text).to.equal(expected);
        expect(result.changed.length > 0).to.equal(existsSync(expectedPath));
      });
    }

    it('reports the changes Flux reports for kustomization.yml', () => {
      const original = readFileSync(join(fixtures, 'original', 'kustomization.yml'), 'utf8');
      const { changed, skipped } = applySetters(original, fluxPolicies);
      expect(skipped).to.deep.equal([]);
      expect(changed).to.deep.equal([
        { line: 8, marker: 'automation-ns:policy:name', from: 'replaced', to: 'index.repo.fake/updated' },
        { line: 9, marker: 'automation-ns:policy:tag', from: 'v1', to: 'v1.0.1' },
        { line: 10, marker: 'automation-ns:digest:digest', from: 'sha256:1234567890abcdef', to: DIGEST },
        { line: 28, marker: 'automation-ns:digest', from: 'image', to: `image:v1.0.0@${DIGEST}` },
      ]);
    });

    it('leaves a marker naming a policy of another namespace alone and reports it', () => {
      const original = readFileSync(join(fixtures, 'original', 'otherns.yaml'), 'utf8');
      const result = applySetters(original, fluxPolicies);
      expect(result.text).to.equal(original);
      expect(result.skipped).to.deep.equal([{ line: 11, marker: 'other-namespace:policy', reason: 'no-policy' }]);
    });

    it('screens for the quoted token, as Flux does', () => {
      expect(findMarkers(readFileSync(join(fixtures, 'original', 'unmarked.yaml'), 'utf8'))).to.equal(false);
      expect(findMarkers(readFileSync(join(fixtures, 'original', 'marked.yaml'), 'utf8'))).to.equal(true);
      expect(findMarkers('a: b # $imagepolicy\n')).to.equal(false);
    });
  });

  it('replaces the whole ref, the tag, the name and the digest', () => {
    const text = [
      'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}',
      'pinned: ghcr.io/org/pinned:1.0.0@sha256:0000 # {"$imagepolicy": "ns:pinned"}',
      'repository: old/app # {"$imagepolicy": "ns:app:name"}',
      'tag: 1.0.0 # {"$imagepolicy": "ns:app:tag"}',
      'digest: sha256:0000 # {"$imagepolicy": "ns:pinned:digest"}',
      '',
    ].join('\n');
    const result = applySetters(text, policies);
    expect(result.text).to.equal(
      [
        'image: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}',
        'pinned: ghcr.io/org/pinned:1.1.0@sha256:abcd # {"$imagepolicy": "ns:pinned"}',
        'repository: ghcr.io/org/app # {"$imagepolicy": "ns:app:name"}',
        'tag: 2.0.0 # {"$imagepolicy": "ns:app:tag"}',
        'digest: sha256:abcd # {"$imagepolicy": "ns:pinned:digest"}',
        '',
      ].join('\n'),
    );
    expect(result.changed.map((c) => c.line)).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('keeps the quoting style of a quoted value', () => {
    const text = [
      'a: \'x:1\' # {"$imagepolicy": "ns:app"}',
      'b: "x:1" # {"$imagepolicy": "ns:app"}',
      'c: \'x\' # {"$imagepolicy": "ns:app:tag"}',
      '',
    ].join('\n');
    expect(applySetters(text, policies).text).to.equal(
      [
        'a: \'ghcr.io/org/app:2.0.0\' # {"$imagepolicy": "ns:app"}',
        'b: "ghcr.io/org/app:2.0.0" # {"$imagepolicy": "ns:app"}',
        'c: \'2.0.0\' # {"$imagepolicy": "ns:app:tag"}',
        '',
      ].join('\n'),
    );
  });

  it('double-quotes a plain value that would no longer read as a string', () => {
    const numeric = new Map<string, PolicyImage>([['ns:n', { image: 'x', tag: '1.1' }]]);
    const text = 'tag: 1.0 # {"$imagepolicy": "ns:n:tag"}\n';
    const result = applySetters(text, numeric);
    expect(result.text).to.equal('tag: "1.1" # {"$imagepolicy": "ns:n:tag"}\n');
    expect(result.changed).to.deep.equal([{ line: 1, marker: 'ns:n:tag', from: '1.0', to: '1.1' }]);
    expect(isYaml11NonString('1.0.1')).to.equal(false);
    expect(isYaml11NonString('20240101')).to.equal(true);
    expect(isYaml11NonString('yes')).to.equal(true);
    expect(isYaml11NonString('2024-01-02')).to.equal(true);
    expect(isYaml11NonString('v1')).to.equal(false);
  });

  it('handles flow mappings and sequences', () => {
    const text = [
      'values:',
      '  image: {',
      '    repository: old/app, # {"$imagepolicy": "ns:app:name"}',
      '    tag: "1.0.0" # {"$imagepolicy": "ns:app:tag"}',
      '  }',
      '  images: [',
      '    old/app:1.0.0, # {"$imagepolicy": "ns:app"}',
      '    \'other:1\' # {"$imagepolicy": "ns:app"}',
      '  ]',
      '  same: {a: b} # {"$imagepolicy": "ns:app"}',
      '',
    ].join('\n');
    const result = applySetters(text, policies);
    expect(result.text).to.equal(
      [
        'values:',
        '  image: {',
        '    repository: ghcr.io/org/app, # {"$imagepolicy": "ns:app:name"}',
        '    tag: "2.0.0" # {"$imagepolicy": "ns:app:tag"}',
        '  }',
        '  images: [',
        '    ghcr.io/org/app:2.0.0, # {"$imagepolicy": "ns:app"}',
        '    \'ghcr.io/org/app:2.0.0\' # {"$imagepolicy": "ns:app"}',
        '  ]',
        '  same: {a: b} # {"$imagepolicy": "ns:app"}',
        '',
      ].join('\n'),
    );
  });

  it('handles a Helm values file', () => {
    const text = [
      '# values',
      'image:',
      '  repository: ghcr.io/org/old # {"$imagepolicy": "ns:app:name"}',
      '  tag: "1.0.0"   # {"$imagepolicy": "ns:app:tag"}',
      '  pullPolicy: IfNotPresent',
      'sidecar:',
      '  image: {repository: x, tag: 1.0 # {"$imagepolicy": "ns:app:tag"}',
      '    }',
    ].join('\n');
    const result = applySetters(text, policies);
    expect(result.text).to.equal(
      [
        '# values',
        'image:',
        '  repository: ghcr.io/org/app # {"$imagepolicy": "ns:app:name"}',
        '  tag: "2.0.0"   # {"$imagepolicy": "ns:app:tag"}',
        '  pullPolicy: IfNotPresent',
        'sidecar:',
        '  image: {repository: x, tag: 2.0.0 # {"$imagepolicy": "ns:app:tag"}',
        '    }',
      ].join('\n'),
    );
  });

  it('replaces a marked list item, a multi-line plain value, and keeps anchors', () => {
    const text = [
      'images:',
      '  - old/app:1 # {"$imagepolicy": "ns:app"}',
      '  - keep:1 # a comment',
      'anchored: &img old/app:1 # {"$imagepolicy": "ns:app"}',
      'folded: old/app',
      '  :1 # {"$imagepolicy": "ns:app"}',
      '',
    ].join('\n');
    expect(applySetters(text, policies).text).to.equal(
      [
        'images:',
        '  - ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}',
        '  - keep:1 # a comment',
        'anchored: &img ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}',
        'folded: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}',
        '',
      ].join('\n'),
    );
  });

  it('handles several documents, and documents without markers', () => {
    const text = [
      '%YAML 1.2',
      '---',
      'a: old:1 # {"$imagepolicy": "ns:app"}',
      '---',
      'b: untouched',
      '...',
      '---',
      '# head',
      'c: old:1 # {"$imagepolicy": "ns:app:tag"}',
      '...',
      '%YAML 1.2',
      '---',
      'd: 1',
      '',
    ].join('\n');
    const result = applySetters(text, policies);
    expect(result.text).to.equal(
      [
        '%YAML 1.2',
        '---',
        'a: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}',
        '---',
        'b: untouched',
        '...',
        '---',
        '# head',
        'c: 2.0.0 # {"$imagepolicy": "ns:app:tag"}',
        '...',
        '%YAML 1.2',
        '---',
        'd: 1',
        '',
      ].join('\n'),
    );
    expect(result.changed.map((c) => c.line)).to.deep.equal([3, 9]);
  });

  it('keeps CRLF line endings and a missing trailing newline', () => {
    const text = 'a: 1\r\nimage: old:1 # {"$imagepolicy": "ns:app"}\r\nb: 2\r\nc: x # {"$imagepolicy": "ns:app:tag"}';
    const result = applySetters(text, policies);
    expect(result.text).to.equal(
      'a: 1\r\nimage: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}\r\n' +
        'b: 2\r\nc: 2.0.0 # {"$imagepolicy": "ns:app:tag"}',
    );
    expect(result.changed.map((c) => c.line)).to.deep.equal([2, 4]);
  });

  it('returns the identical string and no changes when nothing changes', () => {
    const text =
      'image: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}\ntag: "2.0.0" # {"$imagepolicy": "ns:app:tag"}\n';
    const result = applySetters(text, policies);
    expect(result.text).to.equal(text);
    expect(result.changed).to.deep.equal([]);
    expect(result.skipped).to.deep.equal([]);
  });

  it('ignores what is not a marker, and reports markers it cannot apply', () => {
    const text = [
      'a: x:1 # {"$imagepolicy": "ns:app"} trailing text',
      'b: x:1 # {"$imagepolicy": "ns:missing"}',
      'c: x:1 # {"$imagepolicy": "app"}',
      'd: x:1 # {"$imagepolicy": "ns:app:bogus"}',
      'e: x # {"$imagepolicy": "ns:app:digest"}',
      'f: x:1 # {"$imagepolicy": 3}',
      '"ns:app": x # {"$imagepolicy": "ns:app"} is a key',
      'g: # {"$imagepolicy": "ns:app"}',
      '  nested: 1',
      '',
    ].join('\n');
    const result = applySetters(text, policies);
    expect(result.text).to.equal(text);
    expect(result.skipped).to.deep.equal([
      { line: 2, marker: 'ns:missing', reason: 'no-policy' },
      { line: 3, marker: 'app', reason: 'bad-marker' },
      { line: 4, marker: 'ns:app:bogus', reason: 'bad-marker' },
      { line: 5, marker: 'ns:app:digest', reason: 'no-digest' },
    ]);
  });

  it('resolves namespace-less markers only when a default namespace is given (not Flux)', () => {
    const text = 'a: x:1 # {"$imagepolicy": "app"}\nb: x # {"$imagepolicy": "app:tag"}\n';
    expect(applySetters(text, policies, { defaultNamespace: 'ns' }).text).to.equal(
      'a: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "app"}\nb: 2.0.0 # {"$imagepolicy": "app:tag"}\n',
    );
  });

  it('throws a SetterError with the position for broken YAML', () => {
    const text = 'a: b\nimage: "old:1 # {"$imagepolicy": "ns:app"}\n  c: [\n';
    expect(() => applySetters(text, policies)).to.throw(SetterError);
    try {
      applySetters('a: b\nc: {x: 1 # {"$imagepolicy": "ns:app"}}\n', policies);
      expect.fail('no error');
    } catch (err) {
      expect(err).to.be.instanceOf(SetterError);
      expect((err as SetterError).line).to.be.greaterThan(0);
    }
    // On one line a comment runs to the end of it, so the closing braces are part of the comment and the
    // flow mapping is left open: not YAML, for Flux (go-yaml) either.
    const oneLine = 'image: {repository: x, tag: 1.0 # {"$imagepolicy": "ns:app:tag"}}\n';
    expect(() => applySetters(oneLine, policies)).to.throw(SetterError);
    // Unmarked files are not parsed at all, as Flux screens them.
    expect(applySetters('a: [\n', policies).text).to.equal('a: [\n');
  });

  // Speed is measured by benchmarks, not asserted here: this checks a 1 MB file is handled right.
  it('rewrites the marked values of a 1 MB file, and only those', function () {
    this.timeout(30_000);
    const doc = (i: number) =>
      [
        '---',
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        `  name: app-${i}`,
        'spec:',
        '  template:',
        '    spec:',
        '      containers:',
        '        - name: app',
        `          image: old/app:1.0.${i}${i % 10 === 0 ? ' # {"$imagepolicy": "ns:app"}' : ''}`,
        '          env:',
        '            - {name: FOO, value: "bar"}',
        '          resources: {limits: {cpu: 100m, memory: 128Mi}}',
        '',
      ].join('\n');
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; size < 1_000_000; i++) {
      parts.push(doc(i));
      size += parts[parts.length - 1]?.length ?? 0;
    }
    const text = parts.join('');
    const result = applySetters(text, policies);
    expect(result.changed.length).to.equal(Math.ceil(parts.length / 10));
    expect(result.text.length - text.length).to.equal(
      result.changed.reduce((sum, c) => sum + c.to.length - c.from.length, 0),
    );
  });
});
