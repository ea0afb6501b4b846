// Go regexp (RE2 syntax, as regexp.Compile reads it) translated to a JavaScript RegExp with the same
// matches. Written for spec.filterTags.pattern: Flux compiles it with Go's regexp package, so a
// pattern must be accepted or refused as Go does, and match what Go matches:
// - `.` is any character but \n; `^` `$` are the ends of the text, or of \n-separated lines under (?m)
//   (JavaScript's m flag would also split at \r, U+2028 and U+2029);
// - \d \s \w and the [[:alpha:]] classes are ASCII only (JavaScript's \s is Unicode);
// - the inline flags i m s U apply to the rest of their group, or within (?flags:...);
// - capture groups are all emitted unnamed: Go allows names JavaScript does not (`(?P<1st>...)`),
//   and Expand resolves names through `names` below.
// Constructs RE2 lacks (lookaround, backreferences, atomic groups, possessive repeats, \Z) are refused.

/** Go's regexp/syntax error codes, used as the message prefix as Go prints them. */
const ERR = {
  charClass: 'invalid character class',
  charRange: 'invalid character class range',
  escape: 'invalid escape sequence',
  namedCapture: 'invalid named capture',
  perlOp: 'invalid or unsupported Perl syntax',
  repeatOp: 'invalid nested repetition operator',
  repeatSize: 'invalid repeat count',
  bracket: 'missing closing ]',
  paren: 'missing closing )',
  repeatArg: 'missing argument to repetition operator',
  backslash: 'trailing backslash at end of expression',
  unexpectedParen: 'unexpected )',
  duplicateName: 'duplicate capture group name',
} as const;

/** A pattern Go's regexp.Compile refuses; `message` reads as Go's error does. */
export class Re2SyntaxError extends Error {
  constructor(code: string, text: string) {
    super(`error parsing regexp: ${code}: \`${text}\``);
  }
}

export interface Re2Regexp {
  /** The translated expression (flag `v`; never global or sticky). */
  readonly regexp: RegExp;
  /** Name of each capture group by index (index 0, the whole match, is ''), as Go's SubexpNames. */
  readonly names: readonly string[];
}

const MAX_REPEAT = 1000;
const lit = (cp: number): string => `\\u{${cp.toString(16)}}`;

// Go's POSIX classes within brackets, ASCII only.
const ranges = (...rs: [number, number][]): string =>
  rs.map(([a, b]) => (a === b ? lit(a) : `${lit(a)}-${lit(b)}`)).join('');
const POSIX: Record<string, string> = {
  alnum: ranges([0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]),
  alpha: ranges([0x41, 0x5a], [0x61, 0x7a]),
  ascii: ranges([0, 0x7f]),
  blank: ranges([9, 9], [0x20, 0x20]),
  cntrl: ranges([0, 0x1f], [0x7f, 0x7f]),
  digit: ranges([0x30, 0x39]),
  graph: ranges([0x21, 0x7e]),
  lower: ranges([0x61, 0x7a]),
  print: ranges([0x20, 0x7e]),
  punct: ranges([0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]),
  space: ranges([9, 0xd], [0x20, 0x20]),
  upper: ranges([0x41, 0x5a]),
  word: ranges([0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a], [0x5f, 0x5f]),
  xdigit: ranges([0x30, 0x39], [0x41, 0x46], [0x61, 0x66]),
};

// Go's Perl classes, ASCII only; \s is not JavaScript's (no \v, no Unicode spaces).
const PERL: Record<string, string> = {
  d: POSIX.digit!,
  s: ranges([9, 0xa], [0xc, 0xd], [0x20, 0x20]),
  w: POSIX.word!,
};

// Go's unicode.Categories. Its C is Cc, Cf, Co and Cs: unlike Unicode's, it leaves out Cn.
const CATEGORIES = new Set(
  'C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs'.split(' '),
);

const isOctal = (c: string | undefined) => c !== undefined && c >= '0' && c <= '7';
const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);
const isAlnum = (c: string) => /^[0-9A-Za-z]$/.test(c);

/** The set of a Unicode class name Go knows, as the inside of a JavaScript v-mode class; undefined if unknown. */
function unicodeClass(name: string): string | undefined {
  if (name === 'Any') return '\\u{0}-\\u{10ffff}';
  if (name === 'C') return '\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}';
  if (CATEGORIES.has(name)) return `\\p{${name}}`;
  // Go's unicode.Scripts are keyed by the long Unicode script names (Latin, Old_Italic, ...).
  if (!/^[A-Z][A-Za-z_]*$/.test(name)) return undefined;
  try {
    new RegExp(`\\p{Script=${name}}`, 'v');
  } catch {
    return undefined;
  }
  return `\\p{Script=${name}}`;
}

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
  U: boolean;
}

interface Level {
  /** Flags to restore when this group closes. */
  outer: Flags;
  /** Case-insensitivity in effect (in the emitted JavaScript) where this group's body starts. */
  baseI: boolean;
  /** A `(?i:` or `(?-i:` opened after a mid-group flag change, to close with the group. */
  wrapper: boolean;
}

/** Translates a Go regular expression; throws Re2SyntaxError where Go's regexp.Compile errs. */
export function translateRe2(pattern: string): Re2Regexp {
  const chars = [...pattern];
  let pos = 0;
  let flags: Flags = { i: false, m: false, s: false, U: false };
  const names: string[] = [''];
  const out: string[] = [];
  const stack: Level[] = [];
  let level: Level = { outer: flags, baseI: false, wrapper: false };
  // What the last item of the current sequence is: nothing to repeat, an atom, or a repetition.
  let last: 'none' | 'atom' | 'repeat' = 'none';
  let lastRepeatStart = 0;

  const peek = (k = 0) => chars[pos + k];
  const rest = () => chars.slice(pos).join('');

  const atom = (js: string) => {
    out.push(js);
    last = 'atom';
  };

  const setI = (i: boolean) => {
    if (level.wrapper) {
      out.push(')');
      level.wrapper = false;
    }
    if (i !== level.baseI) {
      out.push(i ? '(?i:' : '(?-i:');
      level.wrapper = true;
    }
  };

  // Reads one escape that stands for a single character (after the backslash); Go's parseEscape.
  const escapeChar = (start: number): number => {
    const c = chars[pos];
    if (c === undefined) throw new Re2SyntaxError(ERR.backslash, '');
    pos++;
    const bad = () => new Re2SyntaxError(ERR.escape, chars.slice(start, pos).join(''));
    const cp = c.codePointAt(0)!;
    if (cp < 0x80 && !isAlnum(c)) return cp;
    if (c >= '0' && c <= '7') {
      // A lone digit other than 0 would be a backreference, which RE2 lacks; more digits are octal.
      if (c !== '0' && !isOctal(peek())) throw bad();
      let v = cp - 48;
      for (let k = 1; k < 3 && isOctal(peek()); k++) v = v * 8 + (chars[pos++]!.codePointAt(0)! - 48);
      return v;
    }
    switch (c) {
      case 'x': {
        if (peek() === '{') {
          pos++;
          let v = 0;
          let n = 0;
          while (isHex(peek())) {
            v = v * 16 + Number.parseInt(chars[pos++]!, 16);
            n++;
            if (v > 0x10ffff) throw bad();
          }
          if (n === 0 || peek() !== '}') {
            if (peek() !== undefined) pos++;
            throw bad();
          }
          pos++;
          return v;
        }
        const h1 = peek();
        const h2 = peek(1);
        if (!isHex(h1) || !isHex(h2)) {
          pos += Math.min(2, chars.length - pos);
          throw bad();
        }
        pos += 2;
        return Number.parseInt(h1! + h2!, 16);
      }
      case 'a':
        return 7;
      case 'f':
        return 12;
      case 't':
        return 9;
      case 'n':
        return 10;
      case 'r':
        return 13;
      case 'v':
        return 11;
    }
    throw bad();
  };

  // \pL \p{Name} \PL \p{^Name}, the backslash and letter already read; a v-mode class item.
  const unicodeEscape = (start: number, negated: boolean): string => {
    let name: string;
    const c = chars[pos];
    if (c === undefined) throw new Re2SyntaxError(ERR.charRange, chars.slice(start).join(''));
    if (c === '{') {
      const end = chars.indexOf('}', pos);
      if (end < 0) throw new Re2SyntaxError(ERR.charRange, chars.slice(start).join(''));
      name = chars.slice(pos + 1, end).join('');
      pos = end + 1;
    } else {
      name = c;
      pos++;
    }
    let neg = negated;
    if (name.startsWith('^')) {
      neg = !neg;
      name = name.slice(1);
    }
    const set = unicodeClass(name);
    if (set === undefined) throw new Re2SyntaxError(ERR.charRange, chars.slice(start, pos).join(''));
    return `[${neg ? '^' : ''}${set}]`;
  };

  // Go's parseClass: `[` already read. Returns a v-mode class.
  const charClass = (start: number): string => {
    let negated = false;
    if (peek() === '^') {
      negated = true;
      pos++;
    }
    const items: string[] = [];
    let first = true;
    while (peek() !== ']' || first) {
      const c = peek();
      if (c === undefined) throw new Re2SyntaxError(ERR.bracket, chars.slice(start).join(''));
      first = false;
      if (c === '[' && peek(1) === ':') {
        const text = rest();
        const m = /^\[:(\^?)([a-z]*):\]/.exec(text);
        if (m) {
          const set = POSIX[m[2]!];
          if (set === undefined) throw new Re2SyntaxError(ERR.charRange, m[0]);
          items.push(`[${m[1] ? '^' : ''}${set}]`);
          pos += [...m[0]].length;
          continue;
        }
      }
      if (c === '\\' && (peek(1) === 'p' || peek(1) === 'P')) {
        const s = pos;
        pos += 2;
        items.push(unicodeEscape(s, chars[s + 1] === 'P'));
        continue;
      }
      if (c === '\\' && peek(1) !== undefined && PERL[peek(1)!.toLowerCase()] && /[dswDSW]/.test(peek(1)!)) {
        const e = peek(1)!;
        pos += 2;
        items.push(`[${e === e.toUpperCase() ? '^' : ''}${PERL[e.toLowerCase()]}]`);
        continue;
      }
      const lo = classChar();
      if (peek() === '-' && peek(1) !== undefined && peek(1) !== ']') {
        const rangeStart = pos - 1;
        pos++;
        const hi = classChar();
        if (hi < lo) {
          throw new Re2SyntaxError(ERR.charRange, chars.slice(rangeStart, pos).join(''));
        }
        items.push(`${lit(lo)}-${lit(hi)}`);
      } else {
        items.push(lit(lo));
      }
    }
    pos++;
    return `[${negated ? '^' : ''}${items.join('')}]`;
  };

  const classChar = (): number => {
    const c = chars[pos]!;
    if (c === '\\') {
      const s = pos;
      pos++;
      return escapeChar(s);
    }
    pos++;
    return c.codePointAt(0)!;
  };

  // A repetition operator at pos, if any: consumes it and returns its JavaScript text.
  const repetition = (): string | undefined => {
    const start = pos;
    const c = peek();
    let js: string;
    if (c === '*' || c === '+' || c === '?') {
      pos++;
      js = c;
    } else if (c === '{') {
      // Go's parseRepeat: numbers without leading zeros; anything else leaves `{` a literal.
      const m = /^\{(0|[1-9][0-9]*)(,(0|[1-9][0-9]*)?)?\}/.exec(rest());
      if (!m) return undefined; // not a repeat: `{` is a literal
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === undefined ? -1 : Number(m[3]);
      pos += m[0].length;
      const text = () => chars.slice(start, pos).join('');
      if (min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max)) {
        throw new Re2SyntaxError(ERR.repeatSize, text());
      }
      js = max < 0 ? `{${min},}` : max === min ? `{${min}}` : `{${min},${max}}`;
    } else {
      return undefined;
    }
    let lazy = flags.U;
    if (peek() === '?') {
      pos++;
      lazy = !lazy;
    }
    const text = chars.slice(start, pos).join('');
    if (last === 'none') throw new Re2SyntaxError(ERR.repeatArg, text);
    if (last === 'repeat') throw new Re2SyntaxError(ERR.repeatOp, chars.slice(lastRepeatStart, pos).join(''));
    lastRepeatStart = start;
    return js + (lazy ? '?' : '');
  };

  // (?flags) or (?flags: — `(?` already read. Returns the new flags and whether a group opens.
  const perlFlags = (start: number): [Flags, boolean] => {
    const f = { ...flags };
    let negate = false;
    let sawFlag = false;
    for (;;) {
      const c = chars[pos++];
      const bad = () => new Re2SyntaxError(ERR.perlOp, chars.slice(start, Math.min(pos, chars.length)).join(''));
      switch (c) {
        case 'i':
        case 'm':
        case 's':
        case 'U':
          f[c] = !negate;
          sawFlag = true;
          break;
        case '-':
          if (negate) throw bad();
          negate = true;
          sawFlag = false;
          break;
        case ':':
        case ')':
          if (negate && !sawFlag) throw bad();
          return [f, c === ':'];
        default:
          throw bad();
      }
    }
  };

  const open = (js: string, inner: Flags) => {
    out.push(js);
    stack.push(level);
    level = { outer: flags, baseI: inner.i, wrapper: false };
    flags = inner;
    last = 'none';
  };

  while (pos < chars.length) {
    const start = pos;
    const c = chars[pos]!;
    const rep = repetition();
    if (rep !== undefined) {
      out.push(rep);
      last = 'repeat';
      continue;
    }
    pos++;
    switch (c) {
      case '(': {
        if (peek() !== '?') {
          names.push('');
          open('(', flags);
          break;
        }
        const named = peek(1) === 'P' && peek(2) === '<' ? 3 : peek(1) === '<' && !'=!'.includes(peek(2) ?? '') ? 2 : 0;
        if (named) {
          const end = chars.indexOf('>', pos);
          if (end < 0) throw new Re2SyntaxError(ERR.namedCapture, chars.slice(start).join(''));
          const name = chars.slice(pos + named, end).join('');
          const text = chars.slice(start, end + 1).join('');
          if (!/^[0-9A-Za-z_]+$/.test(name)) throw new Re2SyntaxError(ERR.namedCapture, text);
          if (names.includes(name)) throw new Re2SyntaxError(ERR.duplicateName, name);
          pos = end + 1;
          names.push(name);
          open('(', flags);
          break;
        }
        pos++;
        const [f, group] = perlFlags(start);
        if (group) {
          open(f.i === flags.i ? '(?:' : f.i ? '(?i:' : '(?-i:', f);
        } else {
          if (f.i !== flags.i) setI(f.i);
          flags = f;
          // Go repeats what came before the flags; this port refuses a repetition there instead.
          last = 'none';
        }
        break;
      }
      case ')': {
        const outer = stack.pop();
        if (outer === undefined) throw new Re2SyntaxError(ERR.unexpectedParen, pattern);
        if (level.wrapper) out.push(')');
        out.push(')');
        flags = level.outer;
        level = outer;
        last = 'atom';
        break;
      }
      case '|':
        if (level.wrapper) out.push(`)|${flags.i ? '(?i:' : '(?-i:'}`);
        else out.push('|');
        last = 'none';
        break;
      case '^':
        atom(flags.m ? '(?:^|(?<=\\n))' : '(?:^)');
        break;
      case '$':
        atom(flags.m ? '(?:$|(?=\\n))' : '(?:$)');
        break;
      case '.':
        atom(flags.s ? '[\\u{0}-\\u{10ffff}]' : '[^\\n]');
        break;
      case '[':
        atom(charClass(start));
        break;
      case '\\': {
        const e = peek();
        if (e === undefined) throw new Re2SyntaxError(ERR.backslash, '');
        if (e === 'A' || e === 'z' || e === 'b' || e === 'B') {
          pos++;
          atom({ A: '(?:^)', z: '(?:$)', b: '(?:\\b)', B: '(?:\\B)' }[e]);
        } else if (e === 'Q') {
          pos++;
          let end = pos;
          while (end < chars.length && !(chars[end] === '\\' && chars[end + 1] === 'E')) end++;
          for (; pos < end; pos++) atom(lit(chars[pos]!.codePointAt(0)!));
          if (pos < chars.length) pos += 2;
        } else if (e === 'p' || e === 'P') {
          pos++;
          atom(unicodeEscape(start, e === 'P'));
        } else if (/[dswDSW]/.test(e)) {
          pos++;
          atom(`[${e === e.toUpperCase() ? '^' : ''}${PERL[e.toLowerCase()]}]`);
        } else {
          atom(lit(escapeChar(start)));
        }
        break;
      }
      default:
        atom(lit(c.codePointAt(0)!));
    }
  }
  if (stack.length > 0) throw new Re2SyntaxError(ERR.paren, pattern);
  if (level.wrapper) out.push(')');
  let regexp: RegExp;
  try {
    regexp = new RegExp(out.join(''), 'v');
  } catch (e) {
    // Not expected: every accepted construct has a JavaScript form.
    throw new Re2SyntaxError(ERR.charClass, `${pattern} (${(e as Error).message})`);
  }
  return { regexp, names };
}
