import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { parseFluxVersion } from '../../runtime/semver.ts';
import {
  type Candidate,
  compareGoStrings,
  compileFilter,
  EMPTY_LIST_MESSAGE,
  fluxVersion,
  type FilterTags,
  NO_LATEST_VERSION_MESSAGE,
  noTagMatched,
  PolicyError,
  type PolicyChoice,
  policerFromSpec,
  selectLatest,
} from './policy.ts';

type Row = unknown[];
const vectors = JSON.parse(readFileSync(new URL('./policy.vectors.json', import.meta.url), 'utf8')) as Record<
  string,
  unknown
>;
const rows = (name: string): Row[] => {
  const r = vectors[name];
  if (!Array.isArray(r) || r.length === 0) throw new Error(`no vectors named ${name}`);
  return r as Row[];
};
const errorOf = (f: () => unknown): PolicyError | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    return e;
  }
};
const plain = (tags: string[]): Candidate[] => tags.map((tag) => ({ tag, value: tag }));
const latestOf = (policy: PolicyChoice, tags: string[], filter?: FilterTags) =>
  selectLatest(policy, compileFilter(filter)(tags));
const rotations = <T>(list: T[]): T[][] =>
  list.length === 0 ? [list] : list.map((_, i) => [...list.slice(i), ...list.slice(0, i)]);

describe('image policy: Flux vectors', () => {
  it('TestNewSemVer', () => {
    for (const [range, valid] of rows('TestNewSemVer') as [string, boolean][]) {
      const err = errorOf(() => policerFromSpec({ semver: { range } }));
      expect(err === undefined, range).to.equal(valid);
      if (err) {
        expect(err.invalidPolicy).to.equal(true);
        expect(err.field).to.equal('spec.policy.semver.range');
        expect(err.message).to.contain('spec.policy.semver.range');
      }
    }
  });

  it('TestSemVer_Latest', () => {
    for (const [label, range, values, expected] of rows('TestSemVer_Latest') as [string, string, string[], string][]) {
      const p = { semver: { range } };
      if (expected === null)
        expect(
          errorOf(() => selectLatest(p, plain(values))),
          label,
        ).to.be.instanceOf(PolicyError);
      else expect(selectLatest(p, plain(values)), label).to.equal(expected);
    }
  });

  for (const kind of ['Alphabetical', 'Numerical'] as const) {
    const key = kind.toLowerCase() as 'alphabetical' | 'numerical';
    it(`TestNew${kind}`, () => {
      for (const [order, valid] of rows(`TestNew${kind}`) as [string, boolean][]) {
        const err = errorOf(() => policerFromSpec({ [key]: { order } }));
        expect(err === undefined, order).to.equal(valid);
        if (err) {
          expect(err.message).to.equal(
            `invalid policy: invalid order argument provided: '${order.toUpperCase()}', must be one of: ASC, DESC`,
          );
          expect(err.invalidPolicy).to.equal(true);
        }
      }
    });

    it(`Test${kind}_Latest, in every rotation of the list`, () => {
      for (const [label, order, values, expected] of rows(`Test${kind}_Latest`) as [
        string,
        string,
        string[],
        string,
      ][]) {
        for (const list of rotations(values)) {
          const p = { [key]: { order: order.toLowerCase() } };
          if (expected === null)
            expect(
              errorOf(() => selectLatest(p, plain(list))),
              label,
            ).to.be.instanceOf(PolicyError);
          else expect(selectLatest(p, plain(list)), label).to.equal(expected);
        }
      }
    });
  }

  it('TestRegexFilter', () => {
    for (const [label, tags, pattern, extract, expected] of rows('TestRegexFilter') as [
      string,
      string[],
      string,
      string,
      string[],
    ][]) {
      const values = compileFilter({ pattern, extract })(tags).map((c) => c.value);
      expect(values.sort(), label).to.deep.equal(expected);
    }
  });

  it('TestFactory_PolicerFromSpec', () => {
    for (const [label, spec, ok] of rows('TestFactory_PolicerFromSpec') as [string, PolicyChoice, boolean][]) {
      expect(errorOf(() => policerFromSpec(spec)) === undefined, label).to.equal(ok);
    }
    expect(errorOf(() => policerFromSpec({}))?.message).to.equal(
      'invalid policy: given ImagePolicyChoice object is invalid',
    );
  });

  it('the reconciler tests and the docs examples', () => {
    for (const name of ['controller', 'docs']) {
      for (const [label, tags, filter, policy, expected] of rows(name) as [
        string,
        string[],
        FilterTags | null,
        PolicyChoice,
        string | { error: string },
      ][]) {
        if (typeof expected === 'string') {
          expect(latestOf(policy, tags, filter ?? undefined), label).to.equal(expected);
          continue;
        }
        const err = errorOf(() => latestOf(policy, tags, filter ?? undefined));
        expect(err?.invalidPolicy, label).to.equal(true);
        if (expected.error !== 'InvalidPolicy') expect(err?.message, label).to.contain(expected.error);
      }
    }
  });
});

describe('image policy: selection', () => {
  it('errors as Flux words them', () => {
    for (const policy of [{ semver: { range: '*' } }, { alphabetical: {} }, { numerical: {} }]) {
      const err = errorOf(() => selectLatest(policy, []));
      expect(err?.message).to.equal(EMPTY_LIST_MESSAGE);
      expect(err?.message).to.equal('version list argument cannot be empty');
      expect(err?.invalidPolicy).to.equal(false);
    }
    expect(noTagMatched().message).to.equal(EMPTY_LIST_MESSAGE);
    expect(errorOf(() => selectLatest({ semver: { range: '1.x' } }, plain(['2.0.0', 'latest'])))?.message).to.equal(
      NO_LATEST_VERSION_MESSAGE,
    );
    // The first value that is not a number fails the policy, even among numbers.
    expect(errorOf(() => selectLatest({ numerical: {} }, plain(['1', 'x', 'y', '3'])))?.message).to.equal(
      "failed to parse invalid numeric value 'x'",
    );
    // An invalid policy is reported before the empty list.
    expect(errorOf(() => selectLatest({ numerical: { order: 'up' } }, []))?.message).to.contain("'UP'");
    expect(errorOf(() => selectLatest({ semver: { range: 'a' } }, []))?.field).to.equal('spec.policy.semver.range');
  });

  it('semver: strict versions with an optional v, highest in range, the first of equals', () => {
    const p = { semver: { range: '>=1.0.0' } };
    // fluxcd/pkg/version.ParseVersion: `1.0` and `v1` are not versions to the image policy.
    expect(selectLatest(p, plain(['1.0', '1.0.0']))).to.equal('1.0.0');
    expect(selectLatest(p, plain(['1.1', 'v2', '1.0.0']))).to.equal('1.0.0');
    expect(selectLatest(p, plain(['v1.0.0', '1.0.0']))).to.equal('v1.0.0');
    expect(selectLatest(p, plain(['1.0.0', 'v1.0.0']))).to.equal('1.0.0');
    expect(selectLatest(p, plain(['1.0.0+b', '1.0.0+a']))).to.equal('1.0.0+b');
    expect(selectLatest(p, plain(['01.0.0', '1.0.0-rc.1', '1.0.0']))).to.equal('1.0.0');
    // A prerelease only when the range names one.
    expect(selectLatest({ semver: { range: '>=1.0.0-0' } }, plain(['1.0.0', '1.1.0-rc.1']))).to.equal('1.1.0-rc.1');
    expect(selectLatest(p, plain(['1.0.0', '1.1.0-rc.1']))).to.equal('1.0.0');
  });

  it('reads versions as fluxcd/pkg/version.ParseVersion does', () => {
    const semverVectors = JSON.parse(
      readFileSync(new URL('../../runtime/semver.vectors.json', import.meta.url), 'utf8'),
    ) as Record<string, unknown>;
    const inputs = new Set<string>([
      'v1.2.3',
      'vv1.2.3',
      'V1.2.3',
      '1.2.3-a-b+c-d',
      '1.2.3+a+b',
      '18446744073709551616.0.0',
    ]);
    for (const key of ['TestStrictNewVersion', 'TestNewVersion']) {
      for (const [text] of semverVectors[key] as [string][]) {
        inputs.add(text);
        inputs.add(`v${text}`);
      }
    }
    for (const text of inputs) {
      let expected: string | undefined;
      try {
        expected = parseFluxVersion(text).toString();
      } catch {
        expected = undefined;
      }
      expect(fluxVersion(text)?.toString(), text).to.equal(expected);
    }
  });

  it('alphabetical: in Go byte order, asc takes the last, desc the first', () => {
    const tags = ['b', 'B', 'a', '10', '9', 'b-1'];
    expect(selectLatest({ alphabetical: { order: 'asc' } }, plain(tags))).to.equal('b-1');
    expect(selectLatest({ alphabetical: { order: 'desc' } }, plain(tags))).to.equal('10');
    expect(selectLatest({ alphabetical: { order: 'ASC' } }, plain(tags))).to.equal('b-1');
    // U+FF5E sorts after U+1F600 in UTF-16 code units, before it in UTF-8 bytes (Go).
    expect(selectLatest({ alphabetical: {} }, plain(['\u{ff5e}', '\u{1f600}']))).to.equal('\u{1f600}');
    expect(compareGoStrings('\u{ff5e}', '\u{1f600}')).to.be.lessThan(0);
    expect(compareGoStrings('a', 'ab')).to.be.lessThan(0);
    expect(compareGoStrings('ab', 'ab')).to.equal(0);
  });

  it('numerical: Go ParseFloat values, asc the max, desc the min, the last of equals', () => {
    expect(selectLatest({ numerical: {} }, plain(['1', '1.0', '01', '0.5']))).to.equal('01');
    expect(selectLatest({ numerical: { order: 'desc' } }, plain(['2', '1', '1e0', '3']))).to.equal('1e0');
    expect(selectLatest({ numerical: {} }, plain(['1_000', '999', '0x1p10']))).to.equal('0x1p10');
    expect(selectLatest({ numerical: {} }, plain(['inf', '1e308']))).to.equal('inf');
    expect(errorOf(() => selectLatest({ numerical: {} }, plain(['1e400'])))?.message).to.contain("'1e400'");
    // NaN is never less nor greater, so Flux's loop takes it and everything after it.
    expect(selectLatest({ numerical: {} }, plain(['5', 'NaN', '1']))).to.equal('1');
  });

  it('maps the chosen value back to its tag', () => {
    const tags = ['main-abc123-1649146862', 'main-def456-1649146900', 'main-0a1b2c-1649140000', 'feature-x-1749146999'];
    const filter = { pattern: '^main-[a-fA-F0-9]+-(?P<ts>.*)', extract: '$ts' };
    expect(latestOf({ numerical: { order: 'asc' } }, tags, filter)).to.equal('main-def456-1649146900');
    expect(latestOf({ numerical: { order: 'desc' } }, tags, filter)).to.equal('main-0a1b2c-1649140000');
    expect(latestOf({ alphabetical: {} }, tags, { pattern: '-(?P<ts>[0-9]+)$', extract: '${ts}' })).to.equal(
      'feature-x-1749146999',
    );
    // Tags extracting to the same value: the last of them stands for it.
    expect(
      latestOf({ semver: { range: '*' } }, ['a-1.0.0', 'b-1.0.0', 'c-0.9.0'], { pattern: '-(.*)', extract: '$1' }),
    ).to.equal('b-1.0.0');
  });

  // Speed is measured by benchmarks, not asserted here: this checks 10,000 tags are handled.
  it('selects among 10,000 tags with each policy', () => {
    const tags = Array.from({ length: 10_000 }, (_, i) => `${i % 7}.${i % 101}.${i}`);
    const ts = Array.from({ length: 10_000 }, (_, i) => `main-${i.toString(16)}-${1649146862 + i * 37}`);
    for (const [policy, list, filter] of [
      [{ semver: { range: '>=1.0.0 <6.0.0' } }, tags, undefined],
      [{ alphabetical: {} }, tags, undefined],
      [{ numerical: {} }, ts, { pattern: '^main-[a-f0-9]+-(?P<ts>\\d+)$', extract: '$ts' }],
    ] as [PolicyChoice, string[], FilterTags | undefined][]) {
      expect(latestOf(policy, list, filter), JSON.stringify(policy)).to.be.a('string');
    }
  });
});

describe('image policy: filterTags', () => {
  it('no filter or an empty pattern takes every tag as it is', () => {
    expect(compileFilter()(['a', 'b'])).to.deep.equal(plain(['a', 'b']));
    expect(compileFilter({})(['a'])).to.deep.equal(plain(['a']));
    expect(compileFilter({ pattern: '', extract: 'x$0' })(['a'])).to.deep.equal([{ tag: 'a', value: 'x' }]);
  });

  it('matches anywhere in the tag, unanchored, as Go FindStringSubmatchIndex', () => {
    expect(compileFilter({ pattern: 'rc' })(['1.0-rc.1', '1.0']).map((c) => c.tag)).to.deep.equal(['1.0-rc.1']);
    expect(compileFilter({ pattern: 'v(\\d+)', extract: '$1' })(['xv12y']).map((c) => c.value)).to.deep.equal(['12']);
  });

  it('an invalid pattern is an invalid policy naming spec.filterTags.pattern', () => {
    for (const pattern of ['^test-(.*', '(?=x)', '(?<!x)a', '(a)\\1', '(?>a)', 'a++', '\\k<n>']) {
      const err = errorOf(() => compileFilter({ pattern }));
      expect(err, pattern).to.be.instanceOf(PolicyError);
      expect(err!.invalidPolicy).to.equal(true);
      expect(err!.field).to.equal('spec.filterTags.pattern');
      expect(err!.message).to.contain('invalid regular expression pattern').and.contain('spec.filterTags.pattern');
    }
    expect(errorOf(() => compileFilter({ pattern: '^test-(.*' }))?.message).to.equal(
      "failed to filter tags: invalid regular expression pattern '^test-(.*' in spec.filterTags.pattern: " +
        'error parsing regexp: missing closing ): `^test-(.*`',
    );
  });
});
