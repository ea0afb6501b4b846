// The `${...}` expansion of Flux's post-build substitution (fluxcd/pkg/envsubst), written to
// behave the same on the same input: only the braced form is expanded (`$var` stays as it is),
// `$$` is a literal `$` (so `$${var}` gives `${var}`), and the bash string functions are:
//   ${var}  ${#var}  ${var^} ${var^^} ${var,} ${var,,}  ${var:offset} ${var:offset:length}
//   ${var#glob} ${var##glob} ${var%glob} ${var%%glob}
//   ${var/str/repl} ${var//str/repl} ${var/#str/repl} ${var/%str/repl}
//   ${var=default} ${var:=default} ${var:-default}  (also :+ and :?, which Flux treats the same)
// A default applies when the variable is unset or empty. Anything else after `${` (`${var-x}`,
// `${}`, an unclosed brace) is an error, as in Flux. Offsets and lengths count UTF-8 bytes.

export type Node = { text: string } | Expr;

export interface Expr {
  name: string;
  op: string;
  args: Node[];
}

const DEFAULT_OPS = new Set(['=', ':=', ':-', ':+', ':?']);
const IDENT = /[\p{L}\p{Nd}_]+/uy;

export class SubstitutionSyntaxError extends Error {
  override name = 'SubstitutionSyntaxError';
}

type Accept = (ch: string) => boolean;
const anyChar: Accept = () => true;
const notClosing: Accept = (ch) => ch !== '}';
const notColonOrClosing: Accept = (ch) => ch !== ':' && ch !== '}';
const notSlash: Accept = (ch) => ch !== '/';

class Parser {
  readonly #src: string;
  #pos = 0;
  #exprStart = 0;

  constructor(src: string) {
    this.#src = src;
  }

  parse(): Node[] {
    const nodes: Node[] = [];
    while (this.#pos < this.#src.length) {
      nodes.push(this.#at('${') ? this.#expr() : { text: this.#text(anyChar, false, true) });
    }
    return nodes;
  }

  #at(s: string): boolean {
    return this.#src.startsWith(s, this.#pos);
  }

  #fail(why: string): never {
    const snippet = this.#src.slice(this.#exprStart, Math.min(this.#src.length, this.#pos + 1, this.#exprStart + 60));
    throw new SubstitutionSyntaxError(`${why} in ${JSON.stringify(snippet)}`);
  }

  /**
   * Text up to the next `${` or the first character `accept` refuses. `$$` reads as `$` in plain
   * text and in a replace pattern or replacement, where `\/` and `\\` escape too; defaults and
   * offsets take every character as it is.
   */
  #text(accept: Accept, slashEscapes: boolean, dollarEscapes: boolean): string {
    let out = '';
    while (this.#pos < this.#src.length && !this.#at('${')) {
      const ch = this.#src[this.#pos]!;
      const next = this.#src[this.#pos + 1];
      if (
        (dollarEscapes && ch === '$' && next === '$') ||
        (slashEscapes && ch === '\\' && (next === '/' || next === '\\'))
      ) {
        out += next;
        this.#pos += 2;
        continue;
      }
      if (!accept(ch)) break;
      out += ch;
      this.#pos++;
    }
    return out;
  }

  /** One argument: a nested expression, or non-empty text. */
  #param(accept: Accept, escapes = false): Node {
    if (this.#at('${')) return this.#expr();
    const start = this.#pos;
    const text = this.#text(accept, escapes, escapes);
    if (this.#pos === start) this.#fail(this.#pos >= this.#src.length ? 'missing closing brace' : 'bad substitution');
    return { text };
  }

  #close(why = 'bad substitution'): void {
    if (this.#src[this.#pos] !== '}') this.#fail(this.#pos >= this.#src.length ? 'missing closing brace' : why);
    this.#pos++;
  }

  #ident(): string {
    IDENT.lastIndex = this.#pos;
    const m = IDENT.exec(this.#src);
    if (!m) this.#fail('unable to parse variable name');
    this.#pos += m[0].length;
    return m[0];
  }

  #expr(): Expr {
    const outer = this.#exprStart;
    this.#exprStart = this.#pos;
    this.#pos += 2;
    const expr = this.#body();
    this.#exprStart = outer;
    return expr;
  }

  #body(): Expr {
    if (this.#at('#')) {
      this.#pos++;
      const name = this.#ident();
      this.#close();
      return { name, op: '#len', args: [] };
    }
    const name = this.#ident();
    const ch = this.#src[this.#pos];
    const next = this.#src[this.#pos + 1] ?? '';
    if ((ch === ':' && '=-?+'.includes(next) && next !== '') || ch === '=') {
      const op = ch === '=' ? '=' : `:${next}`;
      this.#pos += op.length;
      const args: Node[] = [];
      while (!this.#at('}')) args.push(this.#param(notClosing));
      this.#pos++;
      return { name, op, args };
    }
    if (ch === ':') {
      this.#pos++;
      const args = [this.#param(notColonOrClosing)];
      if (this.#at(':')) {
        while (this.#at(':')) this.#pos++;
        args.push(this.#param(notClosing));
      }
      this.#close();
      return { name, op: ':', args };
    }
    if (ch === ',' || ch === '^') {
      const op = ',^'.includes(next) && next !== '' ? ch + next : ch;
      this.#pos += op.length;
      this.#close();
      return { name, op, args: [] };
    }
    if (ch === '/') {
      const op = '/#%'.includes(next) && next !== '' ? `/${next}` : '/';
      this.#pos += op.length;
      const pattern = this.#at('/') ? { text: '' } : this.#param(notSlash, true);
      if (!this.#at('/')) this.#fail('bad substitution');
      this.#pos++;
      if (this.#at('}')) {
        this.#pos++;
        return { name, op, args: [pattern] };
      }
      const replacement = this.#param(notClosing, true);
      this.#close();
      return { name, op, args: [pattern, replacement] };
    }
    if (ch === '#' || ch === '%') {
      const op = next === ch ? ch + ch : ch;
      this.#pos += op.length;
      const args = [this.#param(notClosing)];
      this.#close();
      return { name, op, args };
    }
    this.#close('missing closing brace');
    return { name, op: '', args: [] };
  }
}

/**
 * A compiled pattern of envsubst's own path.Match copy, where `*` and `?` also match `/` (so a
 * longest `*` then `/` prefix trim leaves the basename); throws on a malformed one.
 */
function globToRegExp(pattern: string): RegExp {
  const chars = [...pattern];
  const hex = (c: string) => `\\u{${c.codePointAt(0)!.toString(16)}}`;
  let re = '';
  let i = 0;
  const esc = (): string => {
    const c = chars[i];
    if (c === undefined || c === '-' || c === ']') throw new Error('bad pattern');
    i++;
    if (c !== '\\') return c;
    const escaped = chars[i++];
    if (escaped === undefined) throw new Error('bad pattern');
    return escaped;
  };
  while (i < chars.length) {
    const c = chars[i++]!;
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '\\') {
      if (i >= chars.length) throw new Error('bad pattern');
      re += hex(chars[i++]!);
    } else if (c === '[') {
      let cls = '';
      if (chars[i] === '^') {
        cls = '^';
        i++;
      }
      let ranges = 0;
      for (;;) {
        if (chars[i] === ']' && ranges > 0) {
          i++;
          break;
        }
        const lo = esc();
        let hi = lo;
        if (chars[i] === '-') {
          i++;
          hi = esc();
        }
        if (lo.codePointAt(0)! <= hi.codePointAt(0)!) cls += `${hex(lo)}-${hex(hi)}`;
        ranges++;
      }
      re += `[${cls}]`;
    } else re += hex(c);
  }
  return new RegExp(`^${re}$`, 'u');
}

function trimPrefix(s: string, pattern: string, longest: boolean): string {
  let re: RegExp;
  try {
    re = globToRegExp(pattern);
  } catch {
    return s;
  }
  let match = '';
  for (let i = 0; i < s.length; i++) {
    const prefix = s.slice(0, s.length - i);
    if (!re.test(prefix)) continue;
    match = prefix;
    if (longest) break;
  }
  return s.slice(match.length);
}

function reverse(s: string): string {
  return [...s].reverse().join('');
}

function trimSuffix(s: string, pattern: string, longest: boolean): string {
  return reverse(trimPrefix(reverse(s), reverse(pattern), longest));
}

/** Go's strings.Replace: an empty `old` matches before every character and at the end. */
function replace(s: string, old: string, replacement: string, all: boolean): string {
  if (old === '') return all ? replacement + [...s].map((c) => c + replacement).join('') : replacement + s;
  return all ? s.split(old).join(replacement) : s.replace(old, () => replacement);
}

function toInt(s: string): number | undefined {
  return /^[+-]?[0-9]+$/.test(s) ? Number.parseInt(s, 10) : undefined;
}

function substring(s: string, args: string[]): string {
  const bytes = Buffer.from(s, 'utf8');
  const len = bytes.length;
  let pos = toInt(args[0] ?? '');
  if (pos === undefined) return s;
  if (pos < 0) pos = Math.max(0, len + pos);
  if (args.length === 1) return pos < len ? bytes.subarray(pos).toString('utf8') : '';
  const length = toInt(args[1] ?? '');
  if (length === undefined) return s;
  if (length < 0) return len + length < pos ? '' : bytes.subarray(pos, len + length).toString('utf8');
  if (pos + length >= len) return pos < len ? bytes.subarray(pos).toString('utf8') : '';
  return bytes.subarray(pos, pos + length).toString('utf8');
}

function firstChar(s: string, change: (c: string) => string): string {
  const first = s.codePointAt(0);
  if (first === undefined) return s;
  const c = String.fromCodePoint(first);
  return change(c) + s.slice(c.length);
}

/** One string function (`op` as the parser names it: '#len', ',', ':', '/#', ':=' …) on a value. */
export function apply(op: string, value: string, args: string[]): string {
  switch (op) {
    case '#len':
      return String(Buffer.byteLength(value, 'utf8'));
    case ',':
      return firstChar(value, (c) => c.toLowerCase());
    case ',,':
      return value.toLowerCase();
    case '^':
      return firstChar(value, (c) => c.toUpperCase());
    case '^^':
      return value.toUpperCase();
    case '#':
    case '##':
      return trimPrefix(value, args[0] ?? '', op === '##');
    case '%':
    case '%%':
      return trimSuffix(value, args[0] ?? '', op === '%%');
    case ':':
      return substring(value, args);
    case '/':
    case '//':
      return replace(value, args[0] ?? '', args[1] ?? '', op === '//');
    case '/#':
      return args.length === 2 && value.startsWith(args[0]!) ? replace(value, args[0]!, args[1]!, false) : value;
    case '/%':
      return args.length === 2 && value.endsWith(args[0]!)
        ? value.slice(0, value.length - args[0]!.length) + args[1]!
        : value;
    default:
      return value === '' ? args.join('') : value;
  }
}

/** The parsed form of `text`: text runs and `${...}` expressions; throws SubstitutionSyntaxError. */
export function parseTemplate(text: string): Node[] {
  return new Parser(text).parse();
}

export interface ExpandOptions {
  /** Flux's StrictPostBuildSubstitutions: a variable without a value and without a default is an error. */
  strict?: boolean;
}

/**
 * Expands every `${...}` in `text`; `lookup` gives a variable's value or undefined when unset.
 * Throws SubstitutionSyntaxError for a malformed expression, and in strict mode for an unset
 * variable used without a default.
 */
export function expand(text: string, lookup: (name: string) => string | undefined, opts: ExpandOptions = {}): string {
  const evaluate = (node: Node): string => {
    if ('text' in node) return node.text;
    const args = node.args.map(evaluate);
    const value = lookup(node.name);
    if (value === undefined && opts.strict && !DEFAULT_OPS.has(node.op)) {
      throw new SubstitutionSyntaxError(`variable not set (strict mode): ${JSON.stringify(node.name)}`);
    }
    return apply(node.op, value ?? '', args);
  };
  return new Parser(text).parse().map(evaluate).join('');
}
