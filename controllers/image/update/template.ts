// Commit message templating for ImageUpdateAutomation (`spec.git.commit.messageTemplate`). Flux executes the
// template with Go's text/template and Sprig's hermetic function map; this is a port of the subset of that
// language real-world commit templates use, with Go's whitespace trimming, sorted map ranging, `<no value>`
// for missing map keys and fmt's %v printing of structs, slices and maps.

import { createHash } from 'node:crypto';

/** The object an update touched (Flux `update.ObjectIdentifier`). */
export interface ObjectIdentifier {
  Name: string;
  Namespace: string;
  APIVersion: string;
  Kind: string;
}

/** One value a setter replaced (Flux `update.Change`). */
export interface Change {
  OldValue: string;
  NewValue: string;
  Setter: string;
}

/** Changes per object in one file (Flux `update.ObjectChanges`, a map keyed by ObjectIdentifier). */
export type ObjectChanges = ReadonlyMap<ObjectIdentifier, readonly Change[]>;

/** The data a commit message template sees (Flux `source.TemplateData`). */
export interface CommitTemplateData {
  AutomationObject: { Name: string; Namespace: string };
  Changed: { FileChanges: Readonly<Record<string, ObjectChanges>> };
  Values?: Readonly<Record<string, string>>;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const TEMPLATE_NAME = 'commit';
const SEE = 'See: https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template';
const REMOVED_UPDATED = `template uses removed '.Updated' field. Please use '.Changed' instead. ${SEE}`;
const REMOVED_IMAGE_RESULT =
  "template uses removed '.Changed.ImageResult' field. Please use '.Changed.FileChanges' or '.Changed.Objects' " +
  `instead. ${SEE}`;

// ---------------------------------------------------------------------------------------------------------
// Go values

/** A Go struct value: ordered fields, zero-argument methods and an optional String() method. */
class GoStruct {
  readonly type: string;
  readonly fields: ReadonlyMap<string, unknown>;
  readonly methods: Readonly<Record<string, () => unknown>>;
  readonly stringer: (() => string) | undefined;
  constructor(
    type: string,
    fields: ReadonlyMap<string, unknown>,
    methods: Readonly<Record<string, () => unknown>> = {},
    stringer?: () => string,
  ) {
    this.type = type;
    this.fields = fields;
    this.methods = methods;
    this.stringer = stringer;
  }
}

/** A Go map; ranged and printed in sorted key order. `zero` is what `index` yields for a missing key. */
class GoMap {
  readonly type: string;
  readonly entries: Map<unknown, unknown>;
  readonly zero: unknown;
  constructor(type: string, entries: Map<unknown, unknown>, zero: unknown = undefined) {
    this.type = type;
    this.entries = entries;
    this.zero = zero;
  }
  get(key: unknown): unknown {
    if (typeof key === 'string' || typeof key === 'number' || typeof key === 'boolean') return this.entries.get(key);
    for (const [k, v] of this.entries) if (compareKeys(k, key) === 0) return v;
    return undefined;
  }
  sortedKeys(): unknown[] {
    return [...this.entries.keys()].sort(compareKeys);
  }
}

/** A Go slice with a known type name (plain arrays are `[]interface {}`). */
type GoSlice = unknown[] & { goType?: string };

function slice(items: unknown[], type: string): GoSlice {
  const s = items as GoSlice;
  s.goType = type;
  return s;
}

function compareKeys(a: unknown, b: unknown): number {
  if (a instanceof GoStruct && b instanceof GoStruct) {
    for (const [name, v] of a.fields) {
      const c = compareKeys(v, b.fields.get(name));
      if (c !== 0) return c;
    }
    return 0;
  }
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function objectIdentifier(o: ObjectIdentifier): GoStruct {
  return new GoStruct(
    'update.ObjectIdentifier',
    new Map([
      ['Name', o.Name],
      ['Namespace', o.Namespace],
      ['APIVersion', o.APIVersion],
      ['Kind', o.Kind],
    ]),
  );
}

function change(c: Change): GoStruct {
  return new GoStruct(
    'update.Change',
    new Map([
      ['OldValue', c.OldValue],
      ['NewValue', c.NewValue],
      ['Setter', c.Setter],
    ]),
  );
}

function objectChanges(pairs: Array<[GoStruct, GoStruct[]]>): GoMap {
  const merged = new Map<unknown, unknown>();
  for (const [id, changes] of pairs) {
    let key: unknown = id;
    for (const k of merged.keys()) if (compareKeys(k, id) === 0) key = k;
    const prev = (merged.get(key) as GoStruct[] | undefined) ?? [];
    merged.set(key, slice([...prev, ...changes], '[]update.Change'));
  }
  return new GoMap('update.ObjectChanges', merged);
}

/** Converts the reconciler's data into the Go-shaped values the template walks. */
function toGo(data: CommitTemplateData): GoStruct {
  const ao = data.AutomationObject;
  const automation = new GoStruct(
    'types.NamespacedName',
    new Map([
      ['Namespace', ao.Namespace],
      ['Name', ao.Name],
    ]),
    {},
    () => `${ao.Namespace}/${ao.Name}`,
  );
  const files = new Map<unknown, unknown>();
  const all: Array<[GoStruct, GoStruct[]]> = [];
  for (const file of Object.keys(data.Changed.FileChanges).sort()) {
    const pairs: Array<[GoStruct, GoStruct[]]> = [];
    for (const [id, changes] of data.Changed.FileChanges[file] ?? new Map()) {
      pairs.push([objectIdentifier(id), changes.map(change)]);
    }
    const oc = objectChanges(pairs);
    files.set(file, oc);
    for (const k of oc.sortedKeys()) all.push([k as GoStruct, oc.entries.get(k) as GoStruct[]]);
  }
  const fileChanges = new GoMap('map[string]update.ObjectChanges', files);
  const result = new GoStruct('update.Result', new Map([['FileChanges', fileChanges]]), {
    Changes: () =>
      slice(
        all.flatMap(([, cs]) => cs),
        '[]update.Change',
      ),
    Objects: () => objectChanges(all),
  });
  const values = new GoMap('map[string]string', new Map(Object.entries(data.Values ?? {})), '');
  return new GoStruct(
    'source.TemplateData',
    new Map<string, unknown>([
      ['AutomationObject', automation],
      ['Changed', result],
      ['Values', values],
    ]),
  );
}

function goTypeName(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (v instanceof GoStruct || v instanceof GoMap) return v.type;
  if (Array.isArray(v)) return (v as GoSlice).goType ?? '[]interface {}';
  return typeof v;
}

/** Go's fmt %v (with `plus`, %+v). */
function formatValue(v: unknown, plus = false): string {
  if (v === undefined || v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof GoStruct) {
    if (v.stringer) return v.stringer();
    const parts = [...v.fields].map(([k, f]) => (plus ? `${k}:` : '') + formatValue(f, plus));
    return `{${parts.join(' ')}}`;
  }
  if (v instanceof GoMap) {
    const parts = v.sortedKeys().map((k) => `${formatValue(k, plus)}:${formatValue(v.entries.get(k), plus)}`);
    return `map[${parts.join(' ')}]`;
  }
  if (Array.isArray(v)) return `[${v.map((x) => formatValue(x, plus)).join(' ')}]`;
  return String(v);
}

/** Go's strconv.Quote. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof GoMap) return v.entries.size > 0;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Lexer

type ItemType =
  | 'text'
  | 'left'
  | 'right'
  | 'space'
  | 'ident'
  | 'keyword'
  | 'field'
  | 'variable'
  | 'dot'
  | 'string'
  | 'rawString'
  | 'number'
  | 'bool'
  | 'nil'
  | 'pipe'
  | 'leftParen'
  | 'rightParen'
  | 'declare'
  | 'assign'
  | 'char'
  | 'eof'
  | 'error';

interface Item {
  type: ItemType;
  val: string;
  pos: number;
  line: number;
}

const KEYWORDS = new Set(['block', 'break', 'continue', 'define', 'else', 'end', 'if', 'range', 'template', 'with']);
const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isAlnum = (c: string | undefined) => c !== undefined && /^[\p{L}\p{N}_]$/u.test(c);

function lex(input: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let line = 1;
  const emit = (type: ItemType, start: number, val = input.slice(start, pos)) => {
    items.push({ type, val, pos: start, line });
    for (const c of val) if (c === '\n') line++;
  };
  const fail = (msg: string) => {
    items.push({ type: 'error', val: msg, pos, line });
  };
  let trimNextText = false;
  while (pos < input.length) {
    // Text up to the next action.
    let next = input.indexOf('{{', pos);
    if (next < 0) next = input.length;
    let text = input.slice(pos, next);
    const trimLeft = next < input.length && input[next + 2] === '-' && isSpace(input[next + 3]);
    if (trimNextText) {
      const before = text.length;
      text = text.replace(/^[ \t\r\n]+/, '');
      for (const c of input.slice(pos, pos + before - text.length)) if (c === '\n') line++;
      pos += before - text.length;
      trimNextText = false;
    }
    if (trimLeft) text = text.replace(/[ \t\r\n]+$/, '');
    if (text.length > 0) {
      items.push({ type: 'text', val: text, pos, line });
      for (const c of text) if (c === '\n') line++;
    }
    for (const c of input.slice(pos + text.length, next)) if (c === '\n') line++;
    pos = next;
    if (pos >= input.length) break;
    // The action.
    const leftStart = pos;
    pos += trimLeft ? 3 : 2;
    const afterMarker = trimLeft ? pos + 1 : pos;
    if (input.startsWith('/*', afterMarker)) {
      const end = input.indexOf('*/', afterMarker + 2);
      if (end < 0) {
        fail('unclosed comment');
        return items;
      }
      for (const c of input.slice(pos, end)) if (c === '\n') line++;
      pos = end + 2;
      if (input.startsWith(' -}}', pos)) {
        trimNextText = true;
        pos += 4;
      } else if (input.startsWith('}}', pos)) pos += 2;
      else {
        fail('comment ends before closing delimiter');
        return items;
      }
      continue;
    }
    emit('left', leftStart, '{{');
    pos = afterMarker;
    let parens = 0;
    for (;;) {
      if (input.startsWith(' -}}', pos) || input.startsWith('}}', pos)) {
        if (parens > 0) {
          fail('unclosed left paren');
          return items;
        }
        const trimRight = input[pos] === ' ';
        if (trimRight) {
          emit('space', pos, ' ');
          pos++;
          pos += 1;
          trimNextText = true;
        }
        const s = pos;
        pos += 2;
        emit('right', s);
        break;
      }
      if (pos >= input.length) {
        fail('unclosed action');
        return items;
      }
      const c = input[pos] as string;
      const start = pos;
      if (isSpace(c)) {
        while (pos < input.length && isSpace(input[pos]) && !input.startsWith(' -}}', pos)) pos++;
        emit('space', start);
      } else if (c === '=') {
        pos++;
        emit('assign', start);
      } else if (c === ':') {
        if (input[pos + 1] !== '=') {
          fail('expected :=');
          return items;
        }
        pos += 2;
        emit('declare', start);
      } else if (c === '|') {
        pos++;
        emit('pipe', start);
      } else if (c === '"') {
        pos++;
        for (;;) {
          const d = input[pos];
          if (d === '\\' && pos + 1 < input.length && input[pos + 1] !== '\n') pos += 2;
          else if (d === undefined || d === '\n') {
            fail('unterminated quoted string');
            return items;
          } else if (d === '"') break;
          else pos++;
        }
        pos++;
        emit('string', start);
      } else if (c === '`') {
        const end = input.indexOf('`', pos + 1);
        if (end < 0) {
          fail('unterminated raw quoted string');
          return items;
        }
        pos = end + 1;
        emit('rawString', start);
      } else if (c === "'") {
        const m = /^'(\\.|[^\\'\n])+'/u.exec(input.slice(pos));
        if (!m) {
          fail('unterminated character constant');
          return items;
        }
        pos += m[0].length;
        emit('number', start);
      } else if (c === '$') {
        pos++;
        while (isAlnum(input[pos])) pos++;
        emit('variable', start);
      } else if (c === '.') {
        if (/[0-9]/.test(input[pos + 1] ?? '')) {
          pos = scanNumber(input, pos);
          emit('number', start);
        } else {
          pos++;
          while (isAlnum(input[pos])) pos++;
          emit(pos - start === 1 ? 'dot' : 'field', start);
        }
      } else if (c === '+' || c === '-' || /[0-9]/.test(c)) {
        pos = scanNumber(input, pos);
        if (isAlnum(input[pos]) || input[pos] === '.') {
          fail(`bad number syntax: ${JSON.stringify(input.slice(start, pos + 1))}`);
          return items;
        }
        emit('number', start);
      } else if (isAlnum(c)) {
        while (isAlnum(input[pos])) pos++;
        const word = input.slice(start, pos);
        if (KEYWORDS.has(word)) emit('keyword', start);
        else if (word === 'true' || word === 'false') emit('bool', start);
        else if (word === 'nil') emit('nil', start);
        else emit('ident', start);
      } else if (c === '(') {
        pos++;
        parens++;
        emit('leftParen', start);
      } else if (c === ')') {
        pos++;
        parens--;
        if (parens < 0) {
          fail('unexpected right paren');
          return items;
        }
        emit('rightParen', start);
      } else {
        pos += c.length;
        emit('char', start);
      }
    }
  }
  items.push({ type: 'eof', val: '', pos, line });
  return items;
}

function scanNumber(input: string, pos: number): number {
  let p = pos;
  if (input[p] === '+' || input[p] === '-') p++;
  const m = /^(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|[0-9_]*\.?[0-9_]*([eE][+-]?[0-9_]+)?)/.exec(input.slice(p));
  return p + (m ? m[0].length : 0);
}

// ---------------------------------------------------------------------------------------------------------
// Parse tree

interface ControlNode {
  kind: 'if' | 'with' | 'range';
  pipe: Pipe;
  list: Node[];
  elseList: Node[] | null;
  item: Item;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipe; item: Item }
  | ControlNode
  | { kind: 'break' | 'continue'; item: Item };

interface Pipe {
  decl: string[];
  isAssign: boolean;
  cmds: Arg[][];
}

type Arg =
  | { kind: 'field'; ident: string[]; item: Item }
  | { kind: 'variable'; ident: string[]; item: Item }
  | { kind: 'chain'; node: Arg; field: string[]; item: Item }
  | { kind: 'identifier'; name: string; item: Item }
  | { kind: 'pipe'; pipe: Pipe; item: Item }
  | { kind: 'dot' | 'nil'; item: Item }
  | { kind: 'literal'; value: string | number | boolean; item: Item };

function argString(a: Arg): string {
  switch (a.kind) {
    case 'field':
      return `.${a.ident.join('.')}`;
    case 'variable':
      return a.ident.join('.');
    case 'chain':
      return `${argString(a.node)}.${a.field.join('.')}`;
    case 'identifier':
      return a.name;
    case 'pipe':
      return `(${pipeString(a.pipe)})`;
    case 'dot':
      return '.';
    case 'nil':
      return 'nil';
    default:
      return a.item.val;
  }
}

function pipeString(p: Pipe): string {
  const decl = p.decl.length ? `${p.decl.join(', ')} ${p.isAssign ? '=' : ':='} ` : '';
  return decl + p.cmds.map((c) => c.map(argString).join(' ')).join(' | ');
}

/** A parsed commit message template, ready to execute. */
export interface ParsedTemplate {
  readonly source: string;
  readonly root: readonly Node[];
}

type Terminator = { kind: 'end' | 'else'; item: Item; elseIf?: 'if' | 'with' };

class Parser {
  private pos = 0;
  private vars: string[] = ['$'];
  private rangeDepth = 0;
  private cur: Item;
  private readonly items: Item[];

  constructor(items: Item[]) {
    this.items = items;
    this.cur = items[0] as Item;
  }

  errorf(msg: string): never {
    throw new TemplateError(`template: ${TEMPLATE_NAME}:${this.cur.line}: ${msg}`);
  }

  next(): Item {
    const it = this.items[Math.min(this.pos, this.items.length - 1)] as Item;
    this.pos++;
    this.cur = it;
    if (it.type === 'error') this.errorf(it.val);
    return it;
  }
  backup(): void {
    this.pos--;
  }
  peek(): Item {
    return this.items[Math.min(this.pos, this.items.length - 1)] as Item;
  }
  nextNonSpace(): Item {
    let it = this.next();
    while (it.type === 'space') it = this.next();
    return it;
  }
  peekNonSpace(): Item {
    const it = this.nextNonSpace();
    this.backup();
    return it;
  }

  describe(it: Item): string {
    switch (it.type) {
      case 'eof':
        return 'EOF';
      case 'keyword':
        return `<${it.val}>`;
      case 'left':
      case 'right':
      case 'char':
        return JSON.stringify(it.val);
      case 'space':
        return 'space';
      default:
        return it.val.length > 10 ? `${JSON.stringify(it.val.slice(0, 10))}...` : JSON.stringify(it.val);
    }
  }
  unexpected(it: Item, context: string): never {
    if (it.type === 'error') this.errorf(it.val);
    this.errorf(`unexpected ${this.describe(it)} in ${context}`);
  }
  expect(type: ItemType, context: string): Item {
    const it = this.nextNonSpace();
    if (it.type !== type) this.unexpected(it, context);
    return it;
  }

  parse(): Node[] {
    const list: Node[] = [];
    while (this.peek().type !== 'eof') {
      if (this.peek().type === 'error') this.next();
      const n = this.textOrAction();
      if ('kind' in n && (n.kind === 'end' || n.kind === 'else')) this.errorf(`unexpected {{${n.kind}}}`);
      list.push(n as Node);
    }
    return list;
  }

  itemList(): [Node[], Terminator] {
    const list: Node[] = [];
    while (this.peekNonSpace().type !== 'eof') {
      const n = this.textOrAction();
      if (n.kind === 'end' || n.kind === 'else') return [list, n as Terminator];
      list.push(n as Node);
    }
    this.errorf('unexpected EOF');
  }

  textOrAction(): Node | Terminator {
    const it = this.nextNonSpace();
    if (it.type === 'text') return { kind: 'text', text: it.val };
    if (it.type === 'left') return this.action();
    this.unexpected(it, 'input');
  }

  action(): Node | Terminator {
    const it = this.nextNonSpace();
    if (it.type === 'keyword') {
      switch (it.val) {
        case 'if':
          return this.control('if', it);
        case 'range':
          return this.control('range', it);
        case 'with':
          return this.control('with', it);
        case 'end':
          this.expect('right', 'end');
          return { kind: 'end', item: it };
        case 'else': {
          const p = this.peekNonSpace();
          if (p.type === 'keyword' && (p.val === 'if' || p.val === 'with')) {
            return { kind: 'else', item: it, elseIf: p.val };
          }
          this.expect('right', 'else');
          return { kind: 'else', item: it };
        }
        case 'break':
        case 'continue': {
          if (this.rangeDepth === 0) this.errorf(`{{${it.val}}} outside {{range}}`);
          this.expect('right', it.val);
          return { kind: it.val, item: it };
        }
        default:
          this.errorf(`{{${it.val}}} is not supported in commit message templates`);
      }
    }
    this.backup();
    return { kind: 'action', pipe: this.pipeline('command', 'right'), item: it };
  }

  control(context: 'if' | 'range' | 'with', item: Item): Node {
    const mark = this.vars.length;
    const pipe = this.pipeline(context, 'right');
    if (context === 'range') this.rangeDepth++;
    const [list, next] = this.itemList();
    if (context === 'range') this.rangeDepth--;
    let elseList: Node[] | null = null;
    if (next.kind === 'else') {
      if (
        next.elseIf &&
        ((context === 'if' && next.elseIf === 'if') || (context === 'with' && next.elseIf === 'with'))
      ) {
        const kw = this.nextNonSpace();
        elseList = [this.control(context, kw)];
      } else {
        if (next.elseIf) this.expect('right', 'else');
        const [el, end] = this.itemList();
        if (end.kind !== 'end') this.errorf('expected end; found {{else}}');
        elseList = el;
      }
    }
    this.vars.length = mark;
    return { kind: context, pipe, list, elseList, item };
  }

  pipeline(context: string, end: 'right' | 'rightParen'): Pipe {
    const pipe: Pipe = { decl: [], isAssign: false, cmds: [] };
    const v = this.peekNonSpace();
    if (v.type === 'variable') {
      this.nextNonSpace();
      const after = this.peek();
      const next = this.peekNonSpace();
      if (next.type === 'assign' || next.type === 'declare') {
        pipe.isAssign = next.type === 'assign';
        this.nextNonSpace();
        if (pipe.isAssign && !this.vars.includes(v.val)) this.errorf(`undefined variable "${v.val}"`);
        pipe.decl.push(v.val);
        this.vars.push(v.val);
      } else if (next.type === 'char' && next.val === ',') {
        this.nextNonSpace();
        pipe.decl.push(v.val);
        this.vars.push(v.val);
        if (context !== 'range') this.errorf(`too many declarations in ${context}`);
        const v2 = this.nextNonSpace();
        if (v2.type !== 'variable') this.errorf('range can only initialize variables');
        const op = this.nextNonSpace();
        if (op.type !== 'declare' && op.type !== 'assign') this.unexpected(op, context);
        pipe.isAssign = op.type === 'assign';
        pipe.decl.push(v2.val);
        this.vars.push(v2.val);
      } else {
        this.pos -= after.type === 'space' ? 2 : 1;
      }
    }
    for (;;) {
      const it = this.nextNonSpace();
      if (it.type === end) {
        if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`);
        for (let i = 1; i < pipe.cmds.length; i++) {
          const first = (pipe.cmds[i] as Arg[])[0] as Arg;
          if (first.kind === 'literal' || first.kind === 'dot' || first.kind === 'nil') {
            this.errorf(`non executable command in pipeline stage ${i + 1}`);
          }
        }
        return pipe;
      }
      switch (it.type) {
        case 'bool':
        case 'dot':
        case 'field':
        case 'ident':
        case 'number':
        case 'nil':
        case 'rawString':
        case 'string':
        case 'variable':
        case 'leftParen':
          this.backup();
          pipe.cmds.push(this.command());
          break;
        default:
          this.unexpected(it, context);
      }
    }
  }

  command(): Arg[] {
    const cmd: Arg[] = [];
    for (;;) {
      this.peekNonSpace();
      const op = this.operand();
      if (op) cmd.push(op);
      const it = this.next();
      if (it.type === 'space') continue;
      if (it.type === 'right' || it.type === 'rightParen') this.backup();
      else if (it.type !== 'pipe') this.unexpected(it, 'operand');
      break;
    }
    if (cmd.length === 0) this.errorf('empty command');
    return cmd;
  }

  operand(): Arg | null {
    const node = this.term();
    if (!node) return null;
    if (this.peek().type !== 'field') return node;
    const fields: string[] = [];
    // Go positions a chained operand at its first trailing field.
    const at = this.peek();
    while (this.peek().type === 'field') fields.push(this.next().val.slice(1));
    switch (node.kind) {
      case 'field':
        return { ...node, ident: [...node.ident, ...fields], item: at };
      case 'variable':
        return { ...node, ident: [...node.ident, ...fields], item: at };
      case 'literal':
      case 'dot':
      case 'nil':
        this.errorf(`unexpected . after term ${JSON.stringify(argString(node))}`);
        break;
      default:
        return { kind: 'chain', node, field: fields, item: node.item };
    }
  }

  term(): Arg | null {
    const it = this.nextNonSpace();
    switch (it.type) {
      case 'ident':
        if (!(it.val in FUNCS) && it.val !== 'and' && it.val !== 'or') {
          this.errorf(`function ${JSON.stringify(it.val)} not defined`);
        }
        return { kind: 'identifier', name: it.val, item: it };
      case 'dot':
        return { kind: 'dot', item: it };
      case 'nil':
        return { kind: 'nil', item: it };
      case 'variable':
        if (!this.vars.includes(it.val)) this.errorf(`undefined variable ${JSON.stringify(it.val)}`);
        return { kind: 'variable', ident: [it.val], item: it };
      case 'field':
        return { kind: 'field', ident: [it.val.slice(1)], item: it };
      case 'bool':
        return { kind: 'literal', value: it.val === 'true', item: it };
      case 'number':
        return { kind: 'literal', value: this.number(it), item: it };
      case 'leftParen': {
        const pipe = this.pipeline('parenthesized pipeline', 'rightParen');
        return { kind: 'pipe', pipe, item: it };
      }
      case 'string':
        return { kind: 'literal', value: this.unquote(it.val), item: it };
      case 'rawString':
        return { kind: 'literal', value: it.val.slice(1, -1), item: it };
      default:
        this.backup();
        return null;
    }
  }

  number(it: Item): number {
    const s = it.val;
    if (s.startsWith("'")) {
      const body = s.slice(1, -1);
      const ch = body.startsWith('\\') ? this.unquote(`"${body}"`) : body;
      return ch.codePointAt(0) ?? 0;
    }
    const clean = s.replaceAll('_', '');
    const sign = clean.startsWith('-') ? -1 : 1;
    const abs = clean.replace(/^[+-]/, '');
    let n: number;
    if (/^0[xX]/.test(abs)) n = Number.parseInt(abs.slice(2), 16);
    else if (/^0[bB]/.test(abs)) n = Number.parseInt(abs.slice(2), 2);
    else if (/^0[oO]/.test(abs)) n = Number.parseInt(abs.slice(2), 8);
    else if (/^0[0-9]+$/.test(abs)) n = Number.parseInt(abs, 8);
    else n = Number(abs);
    if (abs === '' || Number.isNaN(n)) this.errorf(`illegal number syntax: ${JSON.stringify(s)}`);
    return sign * n;
  }

  unquote(s: string): string {
    const body = s.slice(1, -1);
    return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (_m, e: string) => {
      const simple: Record<string, string> = {
        n: '\n',
        t: '\t',
        r: '\r',
        a: '\x07',
        b: '\b',
        f: '\f',
        v: '\v',
        '\\': '\\',
        '"': '"',
        "'": "'",
      };
      if (e in simple) return simple[e] as string;
      if (/^[xuU]/.test(e)) return String.fromCodePoint(Number.parseInt(e.slice(1), 16));
      if (/^[0-7]{3}$/.test(e)) return String.fromCodePoint(Number.parseInt(e, 8));
      this.errorf(`invalid syntax`);
    });
  }
}

/** Flux refuses templates written against the pre-v1 data model; this finds them before running anything. */
function checkRemovedFields(nodes: readonly Node[], dotIsRoot: boolean): void {
  const checkArg = (a: Arg, root: boolean) => {
    if ((a.kind === 'field' && root) || (a.kind === 'variable' && a.ident[0] === '$')) {
      const ident = a.kind === 'variable' ? a.ident.slice(1) : a.ident;
      if (ident[0] === 'Updated') throw new TemplateError(REMOVED_UPDATED);
      if (ident[0] === 'Changed' && ident[1] === 'ImageResult') throw new TemplateError(REMOVED_IMAGE_RESULT);
    }
    if (a.kind === 'pipe') checkPipe(a.pipe, root);
    if (a.kind === 'chain') checkArg(a.node, root);
  };
  const checkPipe = (p: Pipe, root: boolean) => {
    for (const cmd of p.cmds) for (const a of cmd) checkArg(a, root);
  };
  for (const n of nodes) {
    if (n.kind === 'action') checkPipe(n.pipe, dotIsRoot);
    if (n.kind === 'if' || n.kind === 'with' || n.kind === 'range') {
      checkPipe(n.pipe, dotIsRoot);
      checkRemovedFields(n.list, n.kind === 'if' && dotIsRoot);
      if (n.elseList) checkRemovedFields(n.elseList, dotIsRoot);
    }
  }
}

/** Parses a commit message template; throws TemplateError with Go's message when it does not parse. */
export function parseCommitTemplate(template: string): ParsedTemplate {
  const root = new Parser(lex(template)).parse();
  checkRemovedFields(root, true);
  return { source: template, root };
}

// ---------------------------------------------------------------------------------------------------------
// Functions

type Fn = (...args: unknown[]) => unknown;

class ExecError extends Error {}

function wantString(v: unknown): string {
  if (typeof v !== 'string') throw new ExecError(`wrong type for value; expected string; got ${goTypeName(v)}`);
  return v;
}

function wantInt(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new ExecError(`wrong type for value; expected int; got ${goTypeName(v)}`);
  }
  return v;
}

/** Sprig's strval. */
function strval(v: unknown): string {
  return formatValue(v);
}

/** Sprig's strslice. */
function strslice(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  if (Array.isArray(v)) return v.filter((x) => x !== null && x !== undefined).map(strval);
  return [strval(v)];
}

function asList(fn: string, v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  throw new ExecError(`error calling ${fn}: Cannot find ${fn} on type ${goTypeName(v)}`);
}

function empty(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (v instanceof GoStruct) return false;
  return !truth(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (a instanceof GoStruct && b instanceof GoStruct) return a.type === b.type && compareKeys(a, b) === 0;
  if (a instanceof GoMap && b instanceof GoMap) {
    return (
      a.entries.size === b.entries.size && [...a.entries].every(([k, v]) => b.entries.has(k) && deepEqual(v, b.get(k)))
    );
  }
  return false;
}

function isTitleSeparator(c: string): boolean {
  if (c.length === 1 && c.charCodeAt(0) < 0x80) return !/[A-Za-z0-9_]/.test(c);
  if (/[\p{L}\p{N}]/u.test(c)) return false;
  return /\s/u.test(c);
}

function basicKind(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string' || typeof v === 'boolean') return typeof v;
  if (v === null || v === undefined) return 'nil';
  return 'other';
}

function eq(a: unknown, ...rest: unknown[]): boolean {
  if (rest.length === 0) throw new ExecError('missing argument for comparison');
  for (const b of rest) {
    const ka = basicKind(a);
    const kb = basicKind(b);
    if (ka === 'nil' || kb === 'nil') {
      if (ka === kb) return true;
      if (ka === 'other' || kb === 'other') return false;
      continue;
    }
    if (ka !== kb && !(ka !== 'other' && kb !== 'other' && typeof a === typeof b)) {
      throw new ExecError(`incompatible types for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
    }
    if (ka === 'other' ? deepEqual(a, b) : a === b) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  if (ka === 'other' || ka === 'nil' || ka === 'boolean') throw new ExecError('invalid type for comparison');
  if (typeof a !== typeof b) {
    throw new ExecError(`incompatible types for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
  }
  return (a as number) < (b as number);
}

function goLen(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (v instanceof GoMap) return v.entries.size;
  throw new ExecError(`error calling len: len of type ${goTypeName(v)}`);
}

function goIndex(item: unknown, ...indices: unknown[]): unknown {
  let v = item;
  for (const i of indices) {
    if (Array.isArray(v) || typeof v === 'string') {
      const n = wantInt(i);
      const len = Array.isArray(v) ? v.length : Buffer.byteLength(v);
      if (n < 0 || n >= len) throw new ExecError(`error calling index: index out of range: ${n}`);
      v = Array.isArray(v) ? v[n] : (Buffer.from(v)[n] as number);
    } else if (v instanceof GoMap) {
      const got = v.get(i);
      v = got === undefined ? v.zero : got;
    } else if (v === null || v === undefined) {
      throw new ExecError('error calling index: index of untyped nil');
    } else {
      throw new ExecError(`error calling index: can't index item of type ${goTypeName(v)}`);
    }
  }
  return v;
}

function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += formatValue(a);
  });
  return out;
}

function badVerb(verb: string, v: unknown): string {
  if (v === null || v === undefined) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(v)}=${formatValue(v)})`;
}

/** Go's fmt.Sprintf for the verbs commit templates use: %s %d %v %+v %q %t %x %f and %%. */
function sprintf(format: string, ...args: unknown[]): string {
  let out = '';
  let argi = 0;
  const re = /%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])?/gy;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    re.lastIndex = pct;
    const m = re.exec(format) as RegExpExecArray;
    i = re.lastIndex;
    const [, flags = '', width, prec, verb] = m;
    if (verb === undefined) {
      out += '%!(NOVERB)';
      continue;
    }
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const a = args[argi++];
    let s: string;
    switch (verb) {
      case 'v':
        s = formatValue(a, flags.includes('+'));
        break;
      case 's':
        s =
          typeof a === 'number' || typeof a === 'boolean' || a === null || a === undefined
            ? badVerb(verb, a)
            : formatValue(a);
        if (prec !== undefined && typeof a === 'string') s = [...s].slice(0, Number(prec)).join('');
        break;
      case 'q':
        if (typeof a === 'string') s = goQuote(a);
        else if (Array.isArray(a) && a.every((x) => typeof x === 'string')) s = `[${a.map(goQuote).join(' ')}]`;
        else if (typeof a === 'number' && Number.isInteger(a)) s = `'${String.fromCodePoint(a)}'`;
        else s = badVerb(verb, a);
        break;
      case 'd':
        s = typeof a === 'number' && Number.isInteger(a) ? String(a) : badVerb(verb, a);
        if (flags.includes('+') && typeof a === 'number' && a >= 0) s = `+${s}`;
        break;
      case 't':
        s = typeof a === 'boolean' ? String(a) : badVerb(verb, a);
        break;
      case 'x':
      case 'X':
        if (typeof a === 'number' && Number.isInteger(a)) s = a.toString(16);
        else if (typeof a === 'string') s = Buffer.from(a).toString('hex');
        else s = badVerb(verb, a);
        if (verb === 'X') s = s.toUpperCase();
        break;
      case 'f':
        s = typeof a === 'number' ? a.toFixed(prec === undefined ? 6 : Number(prec)) : badVerb(verb, a);
        break;
      default:
        s = badVerb(verb, a);
    }
    if (width !== undefined) {
      const w = Number(width);
      const len = [...s].length;
      if (len < w) {
        if (flags.includes('-')) s += ' '.repeat(w - len);
        else if (flags.includes('0') && /^[dxXf]$/.test(verb) && typeof a === 'number') {
          const neg = s.startsWith('-');
          s = (neg ? '-' : '') + '0'.repeat(w - len) + (neg ? s.slice(1) : s);
        } else s = ' '.repeat(w - len) + s;
      }
    }
    out += s;
  }
  if (argi < args.length) {
    out += `%!(EXTRA ${args
      .slice(argi)
      .map((a) => `${goTypeName(a)}=${formatValue(a)}`)
      .join(', ')})`;
  }
  return out;
}

/** The template's functions: Go's builtins (and/or are evaluated lazily by the executor) and Sprig's. */
const FUNCS: Record<string, { fn: Fn; min: number; max?: number }> = {
  not: { fn: (a) => !truth(a), min: 1, max: 1 },
  len: { fn: goLen, min: 1, max: 1 },
  index: { fn: goIndex, min: 1 },
  print: { fn: (...a) => sprint(a), min: 0 },
  printf: { fn: (f, ...a) => sprintf(wantString(f), ...a), min: 1 },
  println: { fn: (...a) => `${a.map((x) => formatValue(x)).join(' ')}\n`, min: 0 },
  eq: { fn: eq, min: 1 },
  ne: { fn: (a, b) => !eq(a, b), min: 2, max: 2 },
  lt: { fn: (a, b) => lt(a, b), min: 2, max: 2 },
  le: { fn: (a, b) => lt(a, b) || eq(a, b), min: 2, max: 2 },
  gt: { fn: (a, b) => !lt(a, b) && !eq(a, b), min: 2, max: 2 },
  ge: { fn: (a, b) => !lt(a, b), min: 2, max: 2 },
  join: { fn: (sep, v) => strslice(v).join(wantString(sep)), min: 2, max: 2 },
  trim: { fn: (s) => wantString(s).replace(/^\s+|\s+$/gu, ''), min: 1, max: 1 },
  trimPrefix: {
    fn: (p, s) => {
      const [pre, str] = [wantString(p), wantString(s)];
      return str.startsWith(pre) ? str.slice(pre.length) : str;
    },
    min: 2,
    max: 2,
  },
  trimSuffix: {
    fn: (p, s) => {
      const [suf, str] = [wantString(p), wantString(s)];
      return suf && str.endsWith(suf) ? str.slice(0, str.length - suf.length) : str;
    },
    min: 2,
    max: 2,
  },
  upper: { fn: (s) => wantString(s).toUpperCase(), min: 1, max: 1 },
  lower: { fn: (s) => wantString(s).toLowerCase(), min: 1, max: 1 },
  title: {
    fn: (s) => {
      let prev = ' ';
      let out = '';
      for (const c of wantString(s)) {
        out += isTitleSeparator(prev) ? c.toUpperCase() : c;
        prev = c;
      }
      return out;
    },
    min: 1,
    max: 1,
  },
  replace: {
    fn: (o, n, s) => wantString(s).replaceAll(wantString(o), wantString(n)),
    min: 3,
    max: 3,
  },
  quote: {
    fn: (...a) =>
      a
        .filter((x) => x !== null && x !== undefined)
        .map((x) => goQuote(strval(x)))
        .join(' '),
    min: 0,
  },
  squote: {
    fn: (...a) =>
      a
        .filter((x) => x !== null && x !== undefined)
        .map((x) => `'${strval(x)}'`)
        .join(' '),
    min: 0,
  },
  default: { fn: (d, ...given) => (given.length === 0 || empty(given[0]) ? d : given[0]), min: 1 },
  empty: { fn: empty, min: 1, max: 1 },
  contains: { fn: (sub, s) => wantString(s).includes(wantString(sub)), min: 2, max: 2 },
  hasPrefix: { fn: (p, s) => wantString(s).startsWith(wantString(p)), min: 2, max: 2 },
  hasSuffix: { fn: (p, s) => wantString(s).endsWith(wantString(p)), min: 2, max: 2 },
  toString: { fn: strval, min: 1, max: 1 },
  list: { fn: (...a) => a, min: 0 },
  dict: {
    fn: (...a) => {
      const m = new Map<unknown, unknown>();
      for (let i = 0; i < a.length; i += 2) m.set(strval(a[i]), i + 1 < a.length ? a[i + 1] : '');
      return new GoMap('map[string]interface {}', m);
    },
    min: 0,
  },
  keys: {
    fn: (...dicts) => {
      const out: unknown[] = [];
      for (const d of dicts) {
        if (!(d instanceof GoMap)) {
          throw new ExecError(`wrong type for value; expected map[string]interface {}; got ${goTypeName(d)}`);
        }
        out.push(...d.sortedKeys());
      }
      return slice(out, '[]string');
    },
    min: 0,
  },
  sortAlpha: {
    fn: (v) => (Array.isArray(v) ? slice(strslice(v).sort(), '[]string') : slice([strval(v)], '[]string')),
    min: 1,
    max: 1,
  },
  uniq: {
    fn: (v) => {
      const out: unknown[] = [];
      for (const x of asList('uniq', v)) if (!out.some((y) => deepEqual(x, y))) out.push(x);
      return out;
    },
    min: 1,
    max: 1,
  },
  first: {
    fn: (v) => {
      const l = asList('first', v);
      return l.length === 0 ? null : l[0];
    },
    min: 1,
    max: 1,
  },
  last: {
    fn: (v) => {
      const l = asList('last', v);
      return l.length === 0 ? null : l[l.length - 1];
    },
    min: 1,
    max: 1,
  },
  indent: { fn: (n, s) => indent(wantInt(n), wantString(s)), min: 2, max: 2 },
  nindent: { fn: (n, s) => `\n${indent(wantInt(n), wantString(s))}`, min: 2, max: 2 },
  trunc: {
    fn: (c, s) => {
      const n = wantInt(c);
      const str = wantString(s);
      if (n < 0 && str.length + n > 0) return str.slice(str.length + n);
      if (n >= 0 && str.length > n) return str.slice(0, n);
      return str;
    },
    min: 2,
    max: 2,
  },
  append: { fn: (l, v) => [...asList('append', l), v], min: 2, max: 2 },
  prepend: { fn: (l, v) => [v, ...asList('prepend', l)], min: 2, max: 2 },
  has: { fn: (needle, l) => asList('has', l).some((x) => deepEqual(x, needle)), min: 2, max: 2 },
  splitList: { fn: (sep, s) => wantString(s).split(wantString(sep)), min: 2, max: 2 },
  trimAll: {
    fn: (cut, s) => {
      const set = new Set(wantString(cut));
      const chars = [...wantString(s)];
      while (chars.length && set.has(chars[0] as string)) chars.shift();
      while (chars.length && set.has(chars[chars.length - 1] as string)) chars.pop();
      return chars.join('');
    },
    min: 2,
    max: 2,
  },
  sha256sum: { fn: (s) => createHash('sha256').update(wantString(s)).digest('hex'), min: 1, max: 1 },
  sha1sum: { fn: (s) => createHash('sha1').update(wantString(s)).digest('hex'), min: 1, max: 1 },
  repeat: { fn: (n, s) => wantString(s).repeat(Math.max(0, wantInt(n))), min: 2, max: 2 },
};

function indent(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return pad + s.replaceAll('\n', `\n${pad}`);
}

// ---------------------------------------------------------------------------------------------------------
// Executor

const NO_FINAL = Symbol('missing');
type Final = unknown | typeof NO_FINAL;

class BreakSignal {}
class ContinueSignal {}

class State {
  private vars: Array<{ name: string; value: unknown }>;
  private at: Item;
  private atText = '';
  out = '';
  private readonly source: string;

  constructor(source: string, root: unknown) {
    this.source = source;
    this.vars = [{ name: '$', value: root }];
    this.at = { type: 'eof', val: '', pos: 0, line: 1 };
  }

  setAt(item: Item, text: string): void {
    this.at = item;
    this.atText = text;
  }

  errorf(msg: string): never {
    const before = this.source.slice(0, this.at.pos);
    const nl = before.lastIndexOf('\n');
    const col = nl < 0 ? this.at.pos : this.at.pos - nl - 1;
    const ctx = this.atText;
    throw new TemplateError(
      `template: ${TEMPLATE_NAME}:${this.at.line}:${col}: executing "${TEMPLATE_NAME}" at <${ctx}>: ${msg}`,
    );
  }

  varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const v = this.vars[i] as { name: string; value: unknown };
      if (v.name === name) return v.value;
    }
    this.errorf(`undefined variable: ${name}`);
  }
  setVar(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const v = this.vars[i] as { name: string; value: unknown };
      if (v.name === name) {
        v.value = value;
        return;
      }
    }
  }
  mark(): number {
    return this.vars.length;
  }
  pop(mark: number): void {
    this.vars.length = mark;
  }
  setTopVar(n: number, value: unknown): void {
    (this.vars[this.vars.length - n] as { value: unknown }).value = value;
  }

  walkList(dot: unknown, list: readonly Node[]): void {
    for (const n of list) this.walk(dot, n);
  }

  walk(dot: unknown, node: Node): void {
    switch (node.kind) {
      case 'text':
        this.out += node.text;
        return;
      case 'action': {
        const v = this.evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) this.out += v === undefined ? '<no value>' : formatValue(v);
        return;
      }
      case 'if':
      case 'with': {
        const mark = this.mark();
        const v = this.evalPipeline(dot, node.pipe);
        if (truth(v)) this.walkList(node.kind === 'with' ? v : dot, node.list);
        else if (node.elseList) this.walkList(dot, node.elseList);
        this.pop(mark);
        return;
      }
      case 'range':
        this.walkRange(dot, node as ControlNode);
        return;
      case 'break':
        throw new BreakSignal();
      case 'continue':
        throw new ContinueSignal();
    }
  }

  walkRange(dot: unknown, r: ControlNode): void {
    const mark = this.mark();
    const val = this.evalPipeline(dot, r.pipe);
    const iteration = (index: unknown, elem: unknown): boolean => {
      const m = this.mark();
      if (r.pipe.decl.length > 0) {
        if (r.pipe.isAssign) {
          if (r.pipe.decl.length > 1) {
            this.setVar(r.pipe.decl[0] as string, index);
            this.setVar(r.pipe.decl[1] as string, elem);
          } else this.setVar(r.pipe.decl[0] as string, elem);
        } else {
          this.setTopVar(1, elem);
          if (r.pipe.decl.length > 1) this.setTopVar(2, index);
        }
      }
      try {
        this.walkList(elem, r.list);
      } catch (e) {
        if (e instanceof BreakSignal) return false;
        if (!(e instanceof ContinueSignal)) throw e;
      } finally {
        this.pop(m);
      }
      return true;
    };
    let ran = false;
    if (Array.isArray(val)) {
      for (let i = 0; i < val.length; i++) {
        ran = true;
        if (!iteration(i, val[i])) break;
      }
    } else if (val instanceof GoMap) {
      for (const k of val.sortedKeys()) {
        ran = true;
        if (!iteration(k, val.entries.get(k))) break;
      }
    } else if (typeof val === 'number' && Number.isInteger(val)) {
      if (r.pipe.decl.length > 1) this.errorf("can't use two iteration variables with range over int");
      for (let i = 0; i < val; i++) {
        ran = true;
        if (!iteration(i, i)) break;
      }
    } else if (val !== undefined && val !== null) {
      this.errorf(`range can't iterate over ${formatValue(val)}`);
    }
    if (!ran && r.elseList) this.walkList(dot, r.elseList);
    this.pop(mark);
  }

  evalPipeline(dot: unknown, pipe: Pipe): unknown {
    let value: unknown = NO_FINAL;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    for (const name of pipe.decl) {
      if (pipe.isAssign) this.setVar(name, value);
      else this.vars.push({ name, value });
    }
    return value;
  }

  notAFunction(args: readonly Arg[] | null, final: Final): void {
    if ((args && args.length > 1) || final !== NO_FINAL) {
      this.errorf(`can't give argument to non-function ${argString((args as Arg[])[0] as Arg)}`);
    }
  }

  evalCommand(dot: unknown, cmd: Arg[], final: Final): unknown {
    const first = cmd[0] as Arg;
    this.setAt(first.item, argString(first));
    switch (first.kind) {
      case 'field':
        return this.evalFieldChain(dot, first.ident, cmd, final);
      case 'chain':
        return this.evalChain(dot, first, cmd, final);
      case 'identifier':
        return this.evalFunction(dot, first, cmd, final);
      case 'pipe':
        this.notAFunction(cmd, final);
        return this.evalPipeline(dot, first.pipe);
      case 'variable':
        return this.evalVariable(first, cmd, final);
    }
    this.notAFunction(cmd, final);
    switch (first.kind) {
      case 'dot':
        return dot;
      case 'nil':
        this.errorf('nil is not a command');
        break;
      default:
        return first.value;
    }
  }

  evalChain(dot: unknown, chain: Extract<Arg, { kind: 'chain' }>, args: Arg[] | null, final: Final): unknown {
    if (chain.node.kind === 'nil') this.errorf(`indirection through explicit nil in ${argString(chain)}`);
    const pipe = this.evalArg(dot, chain.node);
    return this.evalFieldChain(pipe, chain.field, args, final);
  }

  evalVariable(v: Extract<Arg, { kind: 'variable' }>, args: Arg[] | null, final: Final): unknown {
    const value = this.varValue(v.ident[0] as string);
    if (v.ident.length === 1) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(value, v.ident.slice(1), args, final);
  }

  evalFieldChain(receiver: unknown, ident: string[], args: Arg[] | null, final: Final): unknown {
    let r = receiver;
    for (let i = 0; i < ident.length - 1; i++) r = this.evalField(ident[i] as string, null, NO_FINAL, r);
    return this.evalField(ident[ident.length - 1] as string, args, final, r);
  }

  evalField(name: string, args: Arg[] | null, final: Final, receiver: unknown): unknown {
    if (receiver === undefined) return undefined;
    const hasArgs = (args !== null && args.length > 1) || final !== NO_FINAL;
    if (receiver instanceof GoStruct) {
      const method = receiver.methods[name];
      if (method) {
        if (hasArgs) this.errorf(`wrong number of args for ${name}: want 0 got ${this.argCount(args, final)}`);
        return method();
      }
      if (receiver.fields.has(name)) {
        if (hasArgs) this.errorf(`${name} has arguments but cannot be invoked as function`);
        return receiver.fields.get(name);
      }
      this.errorf(`can't evaluate field ${name} in type ${receiver.type}`);
    }
    if (receiver instanceof GoMap) {
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      return receiver.get(name);
    }
    if (receiver === null) this.errorf(`nil pointer evaluating interface {}.${name}`);
    this.errorf(`can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  argCount(args: Arg[] | null, final: Final): number {
    return (args ? args.length - 1 : 0) + (final === NO_FINAL ? 0 : 1);
  }

  evalFunction(dot: unknown, ident: Extract<Arg, { kind: 'identifier' }>, args: Arg[] | null, final: Final) {
    const name = ident.name;
    const at = args ? args.map(argString).join(' ') : name;
    this.setAt(ident.item, at);
    const rest = args ? args.slice(1) : [];
    const thunks: Array<() => unknown> = rest.map((a) => () => this.evalArg(dot, a));
    if (final !== NO_FINAL) thunks.push(() => final);
    if (name === 'and' || name === 'or') {
      if (thunks.length === 0) this.errorf(`wrong number of args for ${name}: want at least 1 got 0`);
      let v: unknown;
      for (const t of thunks) {
        v = t();
        if (name === 'and' ? !truth(v) : truth(v)) return v;
      }
      return v;
    }
    const f = FUNCS[name] as { fn: Fn; min: number; max?: number };
    const n = thunks.length;
    if (n < f.min || (f.max !== undefined && n > f.max)) {
      this.setAt(ident.item, name);
      const want = f.max === f.min ? `${f.min}` : `at least ${f.min}`;
      this.errorf(`wrong number of args for ${name}: want ${want} got ${n}`);
    }
    const values = thunks.map((t) => {
      const v = t();
      return v === undefined ? null : v;
    });
    try {
      return f.fn(...values);
    } catch (e) {
      if (e instanceof ExecError) {
        this.setAt(ident.item, at);
        this.errorf(e.message.startsWith('error calling') ? e.message : `error calling ${name}: ${e.message}`);
      }
      throw e;
    }
  }

  evalArg(dot: unknown, a: Arg): unknown {
    this.setAt(a.item, argString(a));
    switch (a.kind) {
      case 'dot':
        return dot;
      case 'nil':
        return null;
      case 'field':
        return this.evalFieldChain(dot, a.ident, [a], NO_FINAL);
      case 'variable':
        return this.evalVariable(a, null, NO_FINAL);
      case 'pipe':
        return this.evalPipeline(dot, a.pipe);
      case 'identifier':
        return this.evalFunction(dot, a, null, NO_FINAL);
      case 'chain':
        return this.evalChain(dot, a, null, NO_FINAL);
      case 'literal':
        return a.value;
    }
  }
}

/** Executes a template (source text or parsed) over the automation's data, as Flux's templateMsg does. */
export function renderCommitMessage(template: string | ParsedTemplate, data: CommitTemplateData): string {
  const parsed = typeof template === 'string' ? parseCommitTemplate(template) : template;
  const state = new State(parsed.source, toGo(data));
  try {
    state.walkList(state.varValue('$'), parsed.root);
  } catch (e) {
    if (e instanceof TemplateError) {
      if (e.message.includes("can't evaluate field Updated in type source.TemplateData")) {
        throw new TemplateError(REMOVED_UPDATED);
      }
      if (e.message.includes("can't evaluate field ImageResult in type update.Result")) {
        throw new TemplateError(REMOVED_IMAGE_RESULT);
      }
    }
    if (e instanceof BreakSignal || e instanceof ContinueSignal) return state.out;
    throw e;
  }
  return state.out;
}
