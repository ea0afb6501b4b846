// The values a release is installed with: spec.valuesFrom (ConfigMaps and Secrets, in order), then
// spec.values on top, merged as Flux merges them. Values may hold secrets: they go to the Helm
// helper and into a digest, never into status, events or logs.
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';

export type Values = Record<string, unknown>;

export interface ValuesReference {
  kind: string;
  name: string;
  valuesKey?: string;
  targetPath?: string;
  /** With targetPath: the value as it is, a string (helm --set-literal). */
  literal?: boolean;
  optional?: boolean;
}

/** The data of a ConfigMap (as is) or a Secret (decoded), or undefined when it does not exist. */
export type ReadValuesSource = (
  kind: 'ConfigMap' | 'Secret',
  name: string,
) => Promise<Record<string, string> | undefined>;

/** A valuesFrom entry that cannot be used; its message names the object and key, never a value. */
export class ValuesReferenceError extends Error {
  override name = 'ValuesReferenceError';
}

const DEFAULT_KEY = 'values.yaml';

/**
 * Resolves the references in order (later ones override earlier ones), then merges `values` on
 * top. A missing object or key fails unless the reference is optional; each object is read once.
 */
export async function composeValues(
  namespace: string,
  values: Values | undefined,
  refs: readonly ValuesReference[],
  read: ReadValuesSource,
): Promise<Values> {
  let result: Values = {};
  const objects = new Map<string, Promise<Record<string, string> | undefined>>();
  for (const ref of refs) {
    const key = ref.valuesKey || DEFAULT_KEY;
    const describe = (reason: string) =>
      `could not resolve${ref.optional ? ' optional' : ''} ${ref.kind} chart values reference ` +
      `'${namespace}/${ref.name}' with key '${key}': ${reason}`;
    if (ref.kind !== 'ConfigMap' && ref.kind !== 'Secret') {
      throw new ValuesReferenceError(describe('unsupported values reference kind'));
    }
    const id = `${ref.kind}/${ref.name}`;
    if (!objects.has(id)) objects.set(id, read(ref.kind, ref.name));
    const data = await objects.get(id)!;
    if (!data) {
      if (ref.optional) continue;
      throw new ValuesReferenceError(describe('resource not found'));
    }
    const text = data[key];
    if (text === undefined) {
      if (ref.optional) continue;
      throw new ValuesReferenceError(describe('key not found'));
    }
    if (ref.targetPath) {
      try {
        setPathValue(result, ref.targetPath, text, ref.literal);
      } catch (err) {
        throw new ValuesReferenceError(describe(`failed to merge value: ${(err as Error).message}`));
      }
      continue;
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (err) {
      // The YAML error names a line and column, not the content.
      const first = String((err as Error).message).split('\n')[0];
      throw new ValuesReferenceError(describe(`failed to read values data: ${first}`));
    }
    if (parsed === null || parsed === undefined) continue;
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ValuesReferenceError(describe('failed to read values data: not a YAML mapping'));
    }
    result = mergeValues(result, parsed as Values);
  }
  return mergeValues(result, values ?? {});
}

/** Deep merge: maps merge key by key, anything else in `over` replaces what `base` has. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isMap(prev) && isMap(v) ? mergeValues(prev, v) : v;
  }
  return out;
}

function isMap(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Sets `value` at a Helm --set path (`a.b`, `a\.b` for a dot in a key, `list[0]`), typed as
 * `helm --set` types it (true/false, null, integers; anything else a string), or always a string
 * when the value is quoted, as Flux does for targetPath. Unlike --set, the value is taken whole:
 * a comma does not start another assignment.
 */
export function setPathValue(root: Values, path: string, raw: string, literal = false): void {
  const quoted = !literal && raw.length >= 2 && /^(['"]).*\1$/s.test(raw);
  const value = literal ? raw : quoted ? raw.slice(1, -1) : typed(raw);
  const segments = parsePath(path);
  let node: unknown = root;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    const next = segments[i + 1];
    const child = () => (typeof next === 'number' ? [] : {});
    if (typeof seg === 'number') {
      const list = node as unknown[];
      while (list.length <= seg) list.push(null);
      if (last) list[seg] = value;
      else if (!isContainer(list[seg], next)) list[seg] = child();
      node = list[seg];
    } else {
      const map = node as Values;
      if (last) map[seg] = value;
      else if (!isContainer(map[seg], next)) map[seg] = child();
      node = map[seg];
    }
  }
}

function isContainer(v: unknown, next: string | number | undefined): boolean {
  return typeof next === 'number' ? Array.isArray(v) : isMap(v);
}

const MAX_INDEX = 65536;

function parsePath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  let key = '';
  let pendingKey = true;
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '\\' && i + 1 < path.length) {
      key += path[++i];
    } else if (c === '.') {
      if (pendingKey) {
        if (key === '') throw new Error(`invalid path '${path}': empty key`);
        out.push(key);
      }
      key = '';
      pendingKey = true;
    } else if (c === '[') {
      const end = path.indexOf(']', i);
      const index = end === -1 ? Number.NaN : Number(path.slice(i + 1, end));
      if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) {
        throw new Error(`invalid path '${path}': bad list index`);
      }
      if (pendingKey && key !== '') out.push(key);
      key = '';
      pendingKey = false;
      out.push(index);
      i = end;
    } else {
      if (!pendingKey) throw new Error(`invalid path '${path}': expected '.' or '[' after ']'`);
      key += c;
    }
  }
  if (pendingKey) {
    if (key === '') throw new Error(`invalid path '${path}': empty key`);
    out.push(key);
  }
  return out;
}

function typed(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (raw === 'null') return null;
  // Like --set: integers become numbers unless they would lose precision or have a leading zero.
  if (/^-?(0|[1-9][0-9]*)$/.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
  return raw;
}

/**
 * "sha256:<hex>" of the values as canonical JSON (keys sorted): what the Helm helper computes for
 * the values stored with a release, so the two can be compared.
 */
export function valuesDigest(values: Values): string {
  return `sha256:${createHash('sha256').update(canonicalJson(values)).digest('hex')}`;
}

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (isMap(v)) {
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
