// The file-rewriting core of ImageUpdateAutomation's `Setters` strategy (Flux image-automation-controller,
// pkg/update). A field is marked by a line comment after its scalar value:
//
//   image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "flux-system:app"}
//   tag: 1.0.0 # {"$imagepolicy": "flux-system:app:tag"}
//
// The marker names a policy as "<namespace>:<name>", optionally followed by ":tag", ":name" or ":digest".
// The file is edited in place, text-level: only the bytes of a replaced scalar change, so comments, key
// order, quoting, indentation, line endings and the trailing newline stay as they were.

import { type Document, parseAllDocuments, type Scalar, visit } from 'yaml';

/** The token Flux screens files for before parsing them (the JSON key, quotes included). */
export const MARKER_TOKEN = '"$imagepolicy"';

/** The latest image a policy selected (ImagePolicy `.status.latestRef`). */
export interface PolicyImage {
  /** Image name without tag or digest, e.g. `ghcr.io/org/app`. */
  image: string;
  tag: string;
  digest?: string;
}

export interface SetterChange {
  /** 1-based line of the replaced value. */
  line: number;
  /** The setter named by the marker, e.g. `ns:app:tag`. */
  marker: string;
  from: string;
  to: string;
}

export interface SkippedMarker {
  line: number;
  marker: string;
  /** `no-policy`: the policy is not in the map; `no-digest`: a `:digest` marker, the policy has no digest;
   * `bad-marker`: the marker's value is not `<ns>:<name>[:tag|:name|:digest]`. */
  reason: 'no-policy' | 'no-digest' | 'bad-marker';
}

export interface SetterResult {
  text: string;
  changed: SetterChange[];
  skipped: SkippedMarker[];
}

export interface SetterOptions {
  /** Not a Flux feature: Flux needs the namespace in every marker. When set, a marker naming no namespace
   * (`"app"`, or `"app:tag"` when no policy `app:tag` exists) is looked up in this namespace. */
  defaultNamespace?: string;
}

/** A file that passed screening but is not valid YAML. `line` and `column` are 1-based. */
export class SetterError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(`line ${line}, column ${column}: ${message}`);
    this.name = 'SetterError';
    this.line = line;
    this.column = column;
  }
}

/** Cheap pre-check: whether the text may hold a setter marker, and so needs parsing. */
export function findMarkers(text: string): boolean {
  return text.includes(MARKER_TOKEN);
}

type Field = 'image' | 'tag' | 'name' | 'digest';
const FIELDS = new Set(['tag', 'name', 'digest']);

interface Edit {
  start: number;
  end: number;
  text: string;
}

/** Replaces the value of every marked scalar whose policy is in `policies` (keyed `<namespace>:<name>`). */
export function applySetters(
  text: string,
  policies: ReadonlyMap<string, PolicyImage>,
  opts: SetterOptions = {},
): SetterResult {
  const changed: SetterChange[] = [];
  const skipped: SkippedMarker[] = [];
  if (!findMarkers(text)) return { text, changed, skipped };

  const lines = new LineCounter(text);
  const edits: Edit[] = [];
  for (const chunk of markedChunks(text)) {
    const docs = parseAllDocuments(text.slice(chunk.start, chunk.end), { uniqueKeys: false, prettyErrors: false });
    const list: Document[] = Array.isArray(docs) ? docs : [];
    for (const doc of list) {
      const err = doc.errors[0];
      if (err) {
        const at = lines.position(chunk.start + err.pos[0]);
        throw new SetterError(err.message.split('\n')[0] ?? err.code, at.line, at.column);
      }
    }
    for (const doc of list) {
      visit(doc, {
        Scalar(key, node) {
          if (key === 'key') return;
          const edit = markedValue(text, chunk.start, node);
          if (!edit) return;
          const line = lines.position(edit.start).line;
          const found = resolveMarker(edit.marker, policies, opts);
          if ('reason' in found) {
            skipped.push({ line, marker: edit.marker, reason: found.reason });
            return;
          }
          const from = oldValue(node);
          if (from === found.value) return;
          edits.push({ start: edit.start, end: edit.end, text: render(found.value, node.type) });
          changed.push({ line, marker: edit.marker, from, to: found.value });
        },
      });
    }
  }
  if (edits.length === 0) return { text, changed, skipped };
  edits.sort((a, b) => a.start - b.start);
  const parts: string[] = [];
  let at = 0;
  for (const edit of edits) {
    parts.push(text.slice(at, edit.start), edit.text);
    at = edit.end;
  }
  parts.push(text.slice(at));
  return { text: parts.join(''), changed, skipped };
}

// Documents are parsed only when they hold the marker token, the way Flux screens whole files: parsing is
// the costly part, and a multi-document file usually has few marked documents. A document starts at a
// `---` line; directives before the first one stay with it.
function* markedChunks(text: string): Generator<{ start: number; end: number }> {
  const starts = [0];
  const re = /^---(?=[ \t\r\n]|$)/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    // Directive lines belong to the document that follows them.
    let at = m.index;
    while (at > 0) {
      const prev = text.lastIndexOf('\n', at - 2) + 1;
      if (text[prev] !== '%') break;
      at = prev;
    }
    if (at > 0) starts.push(at);
  }
  // Neighbouring marked documents are parsed together: one parse costs less than many small ones.
  let next = text.indexOf(MARKER_TOKEN);
  let run: { start: number; end: number } | null = null;
  for (let i = 0; i < starts.length && next >= 0; i++) {
    const start = starts[i] as number;
    const end = i + 1 < starts.length ? (starts[i + 1] as number) : text.length;
    if (next >= end) continue;
    if (run && run.end === start) run.end = end;
    else {
      if (run) yield run;
      run = { start, end };
    }
    next = text.indexOf(MARKER_TOKEN, end);
  }
  if (run) yield run;
}

// The marker of a scalar is the comment that follows it on the same line (kyaml reads the node's line
// comment). In a flow collection the comment may come after the separating comma.
function markedValue(text: string, base: number, node: Scalar): { start: number; end: number; marker: string } | null {
  const range = node.range;
  if (!range || range[0] === range[1]) return null;
  if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') return null;
  const start = base + range[0];
  const end = base + range[1];
  let i = end;
  while (text[i] === ' ' || text[i] === '\t') i++;
  if (text[i] === ',') {
    i++;
    while (text[i] === ' ' || text[i] === '\t') i++;
  }
  if (text[i] !== '#' || (text[i - 1] !== ' ' && text[i - 1] !== '\t')) return null;
  let eol = text.indexOf('\n', i);
  if (eol < 0) eol = text.length;
  const comment = text.slice(i, eol);
  if (!comment.includes(MARKER_TOKEN)) return null;
  const marker = parseMarker(comment);
  return marker === null ? null : { start, end, marker };
}

// kyaml strips the leading `#`s and reads the rest as a JSON object of strings; anything else (extra text,
// non-string values) is an ordinary comment.
function parseMarker(comment: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(comment.replace(/^#+/, ''));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const entries = Object.entries(parsed as Record<string, unknown>);
  // Go decodes a JSON null into a string map as "", any other non-string fails.
  if (entries.some(([, v]) => typeof v !== 'string' && v !== null)) return null;
  const name = (parsed as Record<string, string>).$imagepolicy;
  return name ? name : null;
}

function resolveMarker(
  marker: string,
  policies: ReadonlyMap<string, PolicyImage>,
  opts: SetterOptions,
): { value: string } | { reason: SkippedMarker['reason'] } {
  const parts = marker.split(':');
  let key: string;
  let field: Field;
  if (parts.length === 2) {
    key = marker;
    field = 'image';
  } else if (parts.length === 3 && FIELDS.has(parts[2] as string)) {
    key = `${parts[0]}:${parts[1]}`;
    field = parts[2] as Field;
  } else if (parts.length === 1 && opts.defaultNamespace) {
    key = `${opts.defaultNamespace}:${marker}`;
    field = 'image';
  } else {
    return { reason: 'bad-marker' };
  }
  let policy = policies.get(key);
  if (!policy && opts.defaultNamespace && parts.length === 2 && FIELDS.has(parts[1] as string)) {
    policy = policies.get(`${opts.defaultNamespace}:${parts[0]}`);
    field = parts[1] as Field;
  }
  if (!policy) return { reason: 'no-policy' };
  switch (field) {
    case 'tag':
      return { value: policy.tag };
    case 'name':
      return { value: policy.image };
    case 'digest':
      return policy.digest ? { value: policy.digest } : { reason: 'no-digest' };
    default:
      return { value: imageRef(policy) };
  }
}

/** `name:tag`, or `name:tag@digest` when the policy has a digest (Flux's ImageRef string). */
export function imageRef(p: PolicyImage): string {
  const named = p.tag ? `${p.image}:${p.tag}` : p.image;
  return p.digest ? `${named}@${p.digest}` : named;
}

// The value as yaml.v3 decodes it, without type resolution: a plain scalar's folded text, a quoted
// scalar's unescaped string.
function oldValue(node: Scalar): string {
  if (node.type === 'PLAIN' && typeof node.source === 'string') return node.source;
  return typeof node.value === 'string' ? node.value : String(node.value);
}

function render(value: string, style: Scalar['type']): string {
  if (style === 'QUOTE_SINGLE') return `'${value.replaceAll("'", "''")}'`;
  if (style === 'QUOTE_DOUBLE') return doubleQuoted(value);
  // kyaml double-quotes a plain value that YAML 1.1 would read as something other than a string.
  if (!PLAIN_SAFE.test(value) || isYaml11NonString(value)) return doubleQuoted(value);
  return value;
}

const PLAIN_SAFE = /^[A-Za-z0-9_./~][A-Za-z0-9_./~:@+=-]*$/;

function doubleQuoted(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

const YAML11_WORDS = new Set(
  (
    'y Y yes Yes YES n N no No NO true True TRUE false False FALSE on On ON off Off OFF ' +
    'null Null NULL ~ .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF .nan .NaN .NAN'
  ).split(' '),
);
const YAML11_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const YAML11_INT = /^[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[0-9]+)$/;
const YAML11_TIME = /^\d{4}-\d{1,2}-\d{1,2}([Tt ]\d{1,2}:\d{1,2}:\d{1,2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** Whether a plain scalar with this text would be read as a bool, null, number or timestamp (YAML 1.1,
 * as go-yaml v2 resolves it). */
export function isYaml11NonString(value: string): boolean {
  if (value === '') return true;
  if (YAML11_WORDS.has(value)) return true;
  const bare = value.replaceAll('_', '');
  return YAML11_INT.test(bare) || YAML11_FLOAT.test(bare) || YAML11_TIME.test(value);
}

// Offsets to 1-based line/column; positions are asked for mostly in increasing order.
class LineCounter {
  private readonly text: string;
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  constructor(text: string) {
    this.text = text;
  }
  position(offset: number): { line: number; column: number } {
    if (offset < this.pos) {
      this.pos = 0;
      this.line = 1;
      this.lineStart = 0;
    }
    for (let nl = this.text.indexOf('\n', this.pos); nl >= 0 && nl < offset; nl = this.text.indexOf('\n', nl + 1)) {
      this.line++;
      this.lineStart = nl + 1;
    }
    this.pos = offset;
    return { line: this.line, column: offset - this.lineStart + 1 };
  }
}
