import { expect } from 'chai';
import { expand } from './expand.ts';
import { parseGoFloat } from './parse-float.ts';
import { Re2SyntaxError, translateRe2 } from './re2.ts';

const matches = (pattern: string, text: string): boolean => translateRe2(pattern).regexp.test(text);
const groups = (pattern: string, text: string) => translateRe2(pattern).regexp.exec(text);
const refused = (pattern: string): string => {
  try {
    translateRe2(pattern);
  } catch (e) {
    expect(e).to.be.instanceOf(Re2SyntaxError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${pattern}`);
};

describe('RE2 translation', () => {
  it('accepts named groups in both spellings, with names JavaScript would refuse', () => {
    for (const p of ['(?P<ts>\\d+)', '(?<ts>\\d+)', '(?P<1st>\\d+)']) {
      const t = translateRe2(p);
      expect(t.names.length, p).to.equal(2);
      expect(t.regexp.exec('a-42')?.[1]).to.equal('42');
    }
    expect(translateRe2('(a)(?P<x>b)(?:c)(d)').names).to.deep.equal(['', '', 'x', '']);
  });

  it('\\A \\z ^ $, and line anchors under (?m) at \\n only', () => {
    expect(matches('\\Aab\\z', 'ab')).to.equal(true);
    expect(matches('\\Aab\\z', 'ab\n')).to.equal(false);
    expect(matches('^ab$', 'ab\n')).to.equal(false);
    expect(matches('(?m)^b$', 'a\nb\nc')).to.equal(true);
    expect(matches('(?m)^b$', 'a\rb\rc')).to.equal(false);
    expect(matches('(?m)\\Ab', 'a\nb')).to.equal(false);
  });

  it('inline flags: at the start, mid-pattern to the end of the group, and scoped (?i:...)', () => {
    expect(matches('(?i)^release', 'RELEASE')).to.equal(true);
    expect(matches('^a(?i)b$', 'aB')).to.equal(true);
    expect(matches('^a(?i)b$', 'AB')).to.equal(false);
    // A flag set mid-group holds in the group's later alternatives too, not before it.
    expect(matches('^(?:a(?i)b|c)$', 'C')).to.equal(true);
    expect(matches('^(?:a(?i)b|c)$', 'AB')).to.equal(false);
    expect(matches('^(?i:a)b$', 'Ab')).to.equal(true);
    expect(matches('^(?i:a)b$', 'AB')).to.equal(false);
    expect(matches('(?i)^a(?-i)b$', 'Ab')).to.equal(true);
    expect(matches('(?i)^a(?-i)b$', 'AB')).to.equal(false);
    expect(matches('^(?s).$', '\n')).to.equal(true);
    expect(matches('^.$', '\n')).to.equal(false);
    expect(matches('^.$', '\r')).to.equal(true);
    expect(groups('(?U)(a+)', 'aaa')?.[1]).to.equal('a');
    expect(groups('(?U)(a+?)', 'aaa')?.[1]).to.equal('aaa');
    expect(matches('(?)a', 'a')).to.equal(true);
  });

  it('ASCII Perl and POSIX classes, Unicode classes by Go names', () => {
    expect(matches('^\\d+$', '\u0663')).to.equal(false);
    expect(matches('^\\s$', '\u00a0')).to.equal(false);
    expect(matches('^\\s$', '\v')).to.equal(false);
    expect(matches('^[[:space:]]$', '\v')).to.equal(true);
    expect(matches('^\\w+$', 'a_1')).to.equal(true);
    expect(matches('^[[:alpha:][:digit:]]+$', 'a1')).to.equal(true);
    expect(matches('^[[:^digit:]]$', 'a')).to.equal(true);
    expect(matches('^[^\\d\\s]$', 'x')).to.equal(true);
    expect(matches('^[^\\d\\s]$', '1')).to.equal(false);
    expect(matches('^\\pL\\p{Greek}\\PN\\p{^Lu}$', 'aαxb')).to.equal(true);
    expect(matches('^\\p{Any}$', '\n')).to.equal(true);
    expect(refused('\\p{Foo}')).to.contain('invalid character class range');
    expect(refused('[[:foo:]]')).to.contain('invalid character class range');
  });

  it('escapes, literals and repeats as Go reads them', () => {
    expect(matches('^\\x41\\x{42}\\101\\0\\-\\#$', 'ABA\0-#')).to.equal(true);
    expect(matches('^a{,2}$', 'a{,2}')).to.equal(true);
    expect(matches('^a{01}$', 'a{01}')).to.equal(true);
    expect(matches('^a{2,}$', 'aaa')).to.equal(true);
    expect(matches('^\\Q.*\\E$', '.*')).to.equal(true);
    expect(matches('^[]a]+$', ']a')).to.equal(true);
    expect(matches('^[a-]+$', '-a')).to.equal(true);
    expect(matches('^(?:^)*a$', 'a')).to.equal(true);
    expect(matches('^x*?$', 'xx')).to.equal(true);
  });

  it('refuses what RE2 does not have, with Go error codes', () => {
    const cases: [string, string][] = [
      ['(?=a)', 'invalid or unsupported Perl syntax'],
      ['(?!a)', 'invalid or unsupported Perl syntax'],
      ['(?<=a)b', 'invalid or unsupported Perl syntax'],
      ['(?<!a)b', 'invalid or unsupported Perl syntax'],
      ['(?>a)', 'invalid or unsupported Perl syntax'],
      ['(?#c)', 'invalid or unsupported Perl syntax'],
      ['(a)\\1', 'invalid escape sequence: `\\1`'],
      ['\\k<a>', 'invalid escape sequence'],
      ['\\Z', 'invalid escape sequence'],
      ['\\C', 'invalid escape sequence'],
      ['[\\b]', 'invalid escape sequence'],
      ['a++', 'invalid nested repetition operator: `++`'],
      ['a**', 'invalid nested repetition operator: `**`'],
      ['*', 'missing argument to repetition operator'],
      ['(*)', 'missing argument to repetition operator'],
      ['a{1001}', 'invalid repeat count'],
      ['a{2,1}', 'invalid repeat count'],
      ['(a', 'missing closing )'],
      ['a)', 'unexpected )'],
      ['[a', 'missing closing ]'],
      ['[z-a]', 'invalid character class range'],
      ['a\\', 'trailing backslash at end of expression'],
      ['(?P<a>x)(?P<a>y)', 'duplicate capture group name'],
      ['(?P<a-b>x)', 'invalid named capture'],
      ['(?P<>x)', 'invalid named capture'],
      ['(?i-)a', 'invalid or unsupported Perl syntax'],
      ['\\x{110000}', 'invalid escape sequence'],
      ['\\xZ1', 'invalid escape sequence'],
    ];
    for (const [p, message] of cases)
      expect(refused(p), p)
        .to.contain(message)
        .and.match(/^error parsing regexp: /);
  });

  it('departs from Go: a repetition right after a flag group is refused (Go repeats the atom before it)', () => {
    expect(refused('a(?i)*')).to.contain('missing argument to repetition operator');
  });
});

describe("Go's regexp.Expand", () => {
  const expandWith = (template: string, pattern: string, text: string) => {
    const t = translateRe2(pattern);
    const m = t.regexp.exec(text)!;
    return expand(template, m, t.names);
  };

  it('numbers, names, braces and $$', () => {
    const p = '(?P<first>[a-z]+)-(?P<second>[0-9]+)(x)?';
    expect(expandWith('$1', p, 'ab-12')).to.equal('ab');
    expect(expandWith('${1}', p, 'ab-12')).to.equal('ab');
    expect(expandWith('$0', p, 'ab-12')).to.equal('ab-12');
    expect(expandWith('$second/$first', p, 'ab-12')).to.equal('12/ab');
    expect(expandWith('${second}x', p, 'ab-12')).to.equal('12x');
    expect(expandWith('$$1', p, 'ab-12')).to.equal('$1');
    // The name runs as long as letters, digits and underscores do.
    expect(expandWith('$secondx', p, 'ab-12')).to.equal('');
    expect(expandWith('$1x', p, 'ab-12')).to.equal('');
    expect(expandWith('$2.$1', p, 'ab-12')).to.equal('12.ab');
    // Unknown groups and groups that did not match expand to nothing.
    expect(expandWith('[$9][$nope][$3]', p, 'ab-12')).to.equal('[][][]');
    // A leading zero makes a name, not a number.
    expect(expandWith('[$01]', p, 'ab-12')).to.equal('[]');
    // A dollar not followed by a reference stays.
    expect(expandWith('$ $- ${1 ${} $', p, 'ab-12')).to.equal('$ $- ${1 ${} $');
    expect(expandWith('${first}}', p, 'ab-12')).to.equal('ab}');
    // Unicode letters and digits are name characters.
    expect(expandWith('$1é', p, 'ab-12')).to.equal('');
  });
});

describe("Go's strconv.ParseFloat", () => {
  it('accepts what Go accepts', () => {
    const ok: [string, number][] = [
      ['1', 1],
      ['-1.5', -1.5],
      ['+.5', 0.5],
      ['5.', 5],
      ['1e3', 1000],
      ['1E-2', 0.01],
      ['1_000', 1000],
      ['0x1p-2', 0.25],
      ['0x1.8p1', 3],
      ['0X_1P0', 1],
      ['-0x.8p0', -0.5],
      ['1e-400', 0],
      ['Inf', Number.POSITIVE_INFINITY],
      ['-infinity', Number.NEGATIVE_INFINITY],
      ['+INF', Number.POSITIVE_INFINITY],
      ['0x1p-1074', 5e-324],
      ['0x1.fffffffffffff8p1023', Number.NaN],
      ['1649146862', 1649146862],
    ];
    for (const [s, v] of ok) {
      if (Number.isNaN(v)) expect(parseGoFloat(s), s).to.equal(undefined);
      else expect(parseGoFloat(s), s).to.equal(v);
    }
    expect(Number.isNaN(parseGoFloat('nan'))).to.equal(true);
    expect(Number.isNaN(parseGoFloat('NaN'))).to.equal(true);
  });

  it('refuses what Go refuses', () => {
    for (const s of [
      '',
      ' 1',
      '1 ',
      'a',
      '1a',
      '0x1',
      '0x',
      '1e',
      '.',
      'e5',
      '_1',
      '1_',
      '1__0',
      '1._5',
      '+nan',
      'infin',
      '1e400',
      '-1e400',
      '0x1p1024',
      '1,5',
      '0b1',
      '0o7',
      '١',
    ]) {
      expect(parseGoFloat(s), s).to.equal(undefined);
    }
  });
});
