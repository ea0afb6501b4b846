import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  comparePrerelease,
  isWildcard,
  newConstraint,
  newVersion,
  parseComparator,
  parseFluxVersion,
  rewriteRange,
  SemverError,
  sortVersions,
  strictNewVersion,
  type Version,
} from './semver.ts';

type Row = [string, ...(string | number | boolean | null)[]];
const vectors = JSON.parse(readFileSync(new URL('./semver.vectors.json', import.meta.url), 'utf8')) as Record<
  string,
  unknown
>;
const rows = (name: string) => {
  const r = vectors[name];
  if (!Array.isArray(r) || r.length === 0) throw new Error(`no vectors named ${name}`);
  return r as Row[];
};
const errorOf = (f: () => unknown): Error | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e as Error;
  }
};
const v = (text: string): Version => newVersion(text);

// Upstream names its comparison functions; these are the operators each one stands for.
const COMPARISON_OF_OPERATOR: Record<string, string> = {
  '': 'constraintTildeOrEqual',
  '=': 'constraintTildeOrEqual',
  '!=': 'constraintNotEqual',
  '>': 'constraintGreaterThan',
  '<': 'constraintLessThan',
  '>=': 'constraintGreaterThanEqual',
  '=>': 'constraintGreaterThanEqual',
  '<=': 'constraintLessThanEqual',
  '=<': 'constraintLessThanEqual',
  '~': 'constraintTilde',
  '~>': 'constraintTilde',
  '^': 'constraintCaret',
};
const ERROR_TEXT: Record<string, string> = {
  ErrSegmentStartsZero: 'version segment starts with 0',
  ErrInvalidPrerelease: 'invalid prerelease string',
  ErrInvalidMetadata: 'invalid build string',
};

describe('semver: Masterminds/semver v3 vectors', () => {
  it('names its source and counts what it holds', () => {
    const source = vectors.source as { repository: string; version: string; vectors: number };
    expect(source.repository).to.equal('https://github.com/Masterminds/semver');
    expect(source.version).to.equal('v3.4.0');
    expect(source.vectors).to.be.greaterThan(800);
  });

  for (const [name, parse] of [
    ['TestStrictNewVersion', strictNewVersion],
    ['TestNewVersion', newVersion],
  ] as const) {
    it(`${name}: accepts and rejects what upstream does`, () => {
      for (const [text, wantError] of rows(name)) {
        const err = errorOf(() => parse(text));
        expect(err === undefined ? false : err instanceof SemverError, `${name}(${JSON.stringify(text)})`).to.equal(
          wantError,
        );
      }
    });
  }

  it('TestOriginal and TestCoerceString: keeps the text, prints the coerced version', () => {
    for (const text of vectors.TestOriginal as string[]) expect(v(text).original).to.equal(text);
    for (const [text, want] of rows('TestCoerceString')) expect(v(text).toString(), text).to.equal(want);
  });

  it('TestParts: reads every part', () => {
    const p = vectors.TestParts as Record<string, string | number>;
    const got = v(p.version as string);
    expect([got.major, got.minor, got.patch]).to.deep.equal([BigInt(p.major!), BigInt(p.minor!), BigInt(p.patch!)]);
    expect([got.prerelease, got.metadata]).to.deep.equal([p.prerelease, p.metadata]);
  });

  it('TestCompare and the comparison helpers', () => {
    for (const [a, b, want] of rows('TestCompare')) expect(v(a).compare(v(b as string)), `${a} vs ${b}`).to.equal(want);
    const helpers = {
      TestLessThan: (a: Version, b: Version) => a.lessThan(b),
      TestLessThanEqual: (a: Version, b: Version) => a.lessThanOrEqual(b),
      TestGreaterThan: (a: Version, b: Version) => a.greaterThan(b),
      TestGreaterThanEqual: (a: Version, b: Version) => a.greaterThanOrEqual(b),
      TestEqual: (a: Version, b: Version) => a.equals(b),
    };
    for (const [name, f] of Object.entries(helpers)) {
      for (const [a, b, want] of rows(name)) expect(f(v(a), v(b as string)), `${name} ${a} ${b}`).to.equal(want);
    }
  });

  it('TestValidatePrerelease and TestValidateMetadata, through versions that carry them', () => {
    for (const [name, sep] of [
      ['TestValidatePrerelease', '-'],
      ['TestValidateMetadata', '+'],
    ] as const) {
      for (const [ids, want] of rows(name)) {
        const err = errorOf(() => strictNewVersion(`1.2.3${sep}${ids}`));
        expect(err?.message, `${name} ${ids}`).to.equal(want === null ? undefined : ERROR_TEXT[want as string]);
      }
    }
  });

  it('TestCollection: sorts ascending', () => {
    const c = vectors.TestCollection as { unsorted: string[]; sorted: string[] };
    expect(sortVersions(c.unsorted.map(v)).map(String)).to.deep.equal(c.sorted);
  });

  it('TestParseConstraint: operator and version of one comparison', () => {
    for (const [text, fn, version, wantError] of rows('TestParseConstraint')) {
      const err = errorOf(() => parseComparator(text));
      expect(err !== undefined, text).to.equal(wantError);
      if (wantError) continue;
      const c = parseComparator(text);
      expect(COMPARISON_OF_OPERATOR[c.operator], text).to.equal(fn);
      expect(c.version.toString(), text).to.equal(version);
    }
  });

  it('TestConstraintCheck: one comparison', () => {
    for (const [text, version, want] of rows('TestConstraintCheck')) {
      const c = parseComparator(text);
      const [got] = c.test(v(version as string), c.version.prerelease !== '');
      expect(got, `${JSON.stringify(text)} ${version}`).to.equal(want);
    }
  });

  it('TestNewConstraint: OR and AND groups, rejected ranges', () => {
    for (const [text, ors, count, wantError] of rows('TestNewConstraint')) {
      const err = errorOf(() => newConstraint(text));
      expect(err === undefined ? false : err instanceof SemverError, text).to.equal(wantError);
      if (wantError) continue;
      const c = newConstraint(text);
      expect([c.groups.length, c.groups[0]!.length], text).to.deep.equal([ors, count]);
    }
  });

  for (const [name, includePrerelease] of [
    ['TestConstraintsCheck', false],
    ['TestConstraintsCheckIncludePrerelease', true],
  ] as const) {
    it(`${name}: ranges`, () => {
      for (const [text, version, want] of rows(name)) {
        const c = newConstraint(text);
        c.includePrerelease = includePrerelease;
        expect(c.check(v(version as string)), `${JSON.stringify(text)} ${version}`).to.equal(want);
      }
    });
  }

  it('TestRewriteRange and TestIsX', () => {
    for (const [text, want] of rows('TestRewriteRange')) expect(rewriteRange(text)).to.equal(want);
    for (const [text, want] of rows('TestIsX')) expect(isWildcard(text), text).to.equal(want);
  });

  for (const [name, includePrerelease] of [
    ['TestConstraintsValidate', false],
    ['TestConstraintsValidateIncludePrerelease', true],
  ] as const) {
    it(`${name}: result and reasons`, () => {
      for (const [text, version, want] of rows(name)) {
        const c = newConstraint(text);
        c.includePrerelease = includePrerelease;
        const got = c.validate(v(version as string));
        expect(got.ok, `${text} ${version}`).to.equal(want);
        expect(got.errors.length === 0, `${text} ${version} reasons`).to.equal(want);
      }
      const multi = vectors['TestConstraintsValidate multiple reasons'] as Record<string, string | string[]>;
      const c = newConstraint(multi.constraint as string);
      c.includePrerelease = includePrerelease;
      expect(c.validate(strictNewVersion(multi.version as string)).errors).to.deep.equal(multi.reasons);
      for (const [text, version, reason] of rows(`${name} messages`)) {
        const m = newConstraint(text);
        m.includePrerelease = includePrerelease;
        expect(m.validate(strictNewVersion(version as string)).errors[0], `${text} ${version}`).to.equal(reason);
      }
    });
  }

  it('TestConstraintString, TestTextMarshalConstraints, TestTextUnmarshalConstraints: prints what parses again', () => {
    for (const name of ['TestConstraintString', 'TestTextMarshalConstraints', 'TestTextUnmarshalConstraints']) {
      for (const [text, want] of rows(name)) {
        expect(newConstraint(text).toString(), text).to.equal(want);
        expect(newConstraint(want as string).toString()).to.equal(want);
      }
    }
  });
});

describe('semver: beyond the upstream vectors', () => {
  it('compares prerelease numbers past 2^53 exactly and big numbers beyond uint64 as text', () => {
    expect(comparePrerelease('9007199254740993', '9007199254740992')).to.equal(1);
    expect(comparePrerelease('99999999999999999999', '1')).to.equal(1);
    expect(v('18446744073709551615.0.0').major).to.equal((1n << 64n) - 1n);
    expect(() => v('18446744073709551616.0.0')).to.throw(SemverError, 'out of range');
  });

  it('parseFluxVersion: strict SemVer with an optional leading v, as Flux reads tags', () => {
    expect(parseFluxVersion('v1.2.3').original).to.equal('v1.2.3');
    expect(parseFluxVersion('1.2.3-rc.1+b').toString()).to.equal('1.2.3-rc.1+b');
    for (const tag of ['v1.2', '1', 'v01.2.3', 'vv1.2.3', 'V1.2.3', 'release-1.2.3']) {
      expect(() => parseFluxVersion(tag), tag).to.throw(SemverError);
    }
  });

  it('reads Go whitespace only: a vertical tab or no-break space is not a separator', () => {
    expect(newConstraint('>=1\t<2').check(v('1.5.0'))).to.equal(true);
    expect(() => newConstraint('>=1\v<2')).to.throw(SemverError);
    expect(() => newConstraint('>=1\u00a0<2')).to.throw(SemverError);
  });

  it('rejects empty ranges and groups, as NewConstraint does', () => {
    for (const text of ['', ' ', '1 ||', '|| 1', '1,', ',1', '1,,2', '>= 1.0 <<', 'latest']) {
      expect(() => newConstraint(text), JSON.stringify(text)).to.throw(SemverError, 'improper constraint');
    }
  });

  it('refuses ranges longer than 512 bytes, as upstream master does', () => {
    expect(newConstraint(`>=1${' '.repeat(507)}<2`).check(v('1.5.0'))).to.equal(true);
    expect(() => newConstraint(`>=1${' '.repeat(508)}<2`)).to.throw(SemverError, 'too long');
  });
});
