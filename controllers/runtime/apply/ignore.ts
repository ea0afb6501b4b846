// Drift ignore rules (Flux's spec.driftIgnoreRules): fields at JSON pointers that other actors
// own in practice (replicas under an HPA, a CA bundle a webhook injects). An object is created as
// declared; once it exists, an ignored field that another manager has written is left out of the
// apply (ownership goes to that manager, the value stays), and one only we own is applied with
// its live value. Either way no drift is seen and nothing is reverted, while every other field is
// reconciled as usual.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ObjectSelector } from '../../api/common.ts';
import { refOf } from './inventory.ts';

export interface IgnoreRule {
  /** RFC 6901 JSON pointers, e.g. /spec/replicas or /metadata/annotations/example.com~1hash. */
  paths: string[];
  /** Which objects; all when absent. */
  target?: ObjectSelector;
}

/** An invalid selector or pointer: the spec's fault. */
export class IgnoreRuleError extends Error {
  override name = 'IgnoreRuleError';
}

type Requirement = (labels: Record<string, string>) => boolean;

// k8s.io/apimachinery/pkg/labels: the lexer's special characters, its tokens and the key and value rules.
const SPECIAL = new Set([' ', '\t', '\r', '\n', ',', '=', '!', '(', ')', '<', '>']);
const OPERATORS = ['!=', '==', '=', '!', '(', ')', ',', '<', '>'];
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

type Token = { kind: 'id' | 'op' | 'end'; text: string };

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      i++;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op) {
      tokens.push({ kind: 'op', text: op });
      i += op.length;
      continue;
    }
    let j = i;
    while (j < text.length && !SPECIAL.has(text[j]!)) j++;
    tokens.push({ kind: 'id', text: text.slice(i, j) });
    i = j;
  }
  tokens.push({ kind: 'end', text: '' });
  return tokens;
}

function validKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && NAME.test(name);
}

/**
 * Kubernetes label-selector syntax, as k8s.io/apimachinery/pkg/labels parses it: `a=b`, `a==b`,
 * `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma-separated, all must hold.
 */
export function parseSelector(text: string, field: string): Requirement {
  const tokens = lex(text);
  let pos = 0;
  const fail = (why: string): never => {
    throw new IgnoreRuleError(`${field}: cannot parse selector '${text}': ${why}`);
  };
  const next = () => tokens[pos++]!;
  const peek = () => tokens[pos]!;
  const requirements: Requirement[] = [];
  const value = (v: string): string => (LABEL_VALUE.test(v) && v.length <= 63 ? v : fail(`invalid value '${v}'`));
  const key = (): string => {
    const t = next();
    if (t.kind !== 'id') fail(`found '${t.text}', expected: identifier`);
    return validKey(t.text) ? t.text : fail(`invalid key '${t.text}'`);
  };
  if (peek().kind === 'end') return () => true;
  for (;;) {
    if (peek().kind === 'op' && peek().text === '!') {
      next();
      const k = key();
      requirements.push((l) => l[k] === undefined);
    } else {
      const k = key();
      const t = peek();
      if (t.kind === 'end' || t.text === ',') requirements.push((l) => l[k] !== undefined);
      else {
        next();
        const op = t.kind === 'id' && (t.text === 'in' || t.text === 'notin') ? t.text : t.kind === 'op' ? t.text : '';
        if (op === 'in' || op === 'notin') {
          if (next().text !== '(') fail(`found '${tokens[pos - 1]!.text}', expected: '('`);
          const values = new Set<string>();
          for (;;) {
            const v = peek().kind === 'id' ? next().text : '';
            values.add(value(v));
            const sep = next();
            if (sep.text === ')') break;
            if (sep.text !== ',') fail(`found '${sep.text}', expected: ',' or ')'`);
          }
          requirements.push(
            op === 'in'
              ? (l) => l[k] !== undefined && values.has(l[k]!)
              : (l) => l[k] === undefined || !values.has(l[k]!),
          );
        } else if (op === '=' || op === '==' || op === '!=') {
          const v = value(peek().kind === 'id' ? next().text : '');
          requirements.push(op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v);
        } else if (op === '<' || op === '>') {
          const raw = peek().kind === 'id' ? next().text : '';
          if (!/^[+-]?\d+$/.test(raw)) fail(`for '${op}' the value must be an integer, not '${raw}'`);
          const bound = BigInt(raw);
          requirements.push((l) => {
            const have = l[k];
            if (have === undefined || !/^[+-]?\d+$/.test(have)) return false;
            return op === '>' ? BigInt(have) > bound : BigInt(have) < bound;
          });
        } else fail(`found '${t.text}', expected an operator`);
      }
    }
    const sep = next();
    if (sep.kind === 'end') break;
    if (sep.text !== ',') fail(`found '${sep.text}', expected: ',' or end of string`);
    if (peek().kind === 'end') fail("found '', expected: identifier after ','");
  }
  return (labels) => requirements.every((r) => r(labels));
}

/** Kustomize's name and namespace selectors are anchored regular expressions. */
function anchored(pattern: string, field: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch {
    throw new IgnoreRuleError(`${field}: '${pattern}' is not a valid regular expression`);
  }
}

function parsePointer(pointer: string, field: string): string[] {
  if (pointer === '' || !pointer.startsWith('/'))
    throw new IgnoreRuleError(`${field}: '${pointer}' is not a JSON pointer (it must start with /)`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

interface CompiledRule {
  matches(obj: KubernetesObject): boolean;
  paths: string[][];
}

export type IgnoreRules = (obj: KubernetesObject) => string[][];

/** Compiles the rules (throws IgnoreRuleError naming the field); returns the paths ignored for an object. */
export function compileIgnoreRules(rules: readonly IgnoreRule[], field = 'spec.driftIgnoreRules'): IgnoreRules {
  const compiled: CompiledRule[] = rules.map((rule, i) => {
    const where = `${field}[${i}]`;
    const t = rule.target ?? {};
    const name = t.name ? anchored(t.name, `${where}.target.name`) : undefined;
    const namespace = t.namespace ? anchored(t.namespace, `${where}.target.namespace`) : undefined;
    const labels = t.labelSelector ? parseSelector(t.labelSelector, `${where}.target.labelSelector`) : undefined;
    const annotations = t.annotationSelector
      ? parseSelector(t.annotationSelector, `${where}.target.annotationSelector`)
      : undefined;
    const paths = rule.paths.map((p, j) => parsePointer(p, `${where}.paths[${j}]`));
    return {
      paths,
      matches(obj) {
        const ref = refOf(obj);
        return (
          (t.group === undefined || t.group === ref.group) &&
          (t.version === undefined || t.version === ref.version) &&
          (t.kind === undefined || t.kind === ref.kind) &&
          (!name || name.test(ref.name)) &&
          (!namespace || namespace.test(ref.namespace ?? '')) &&
          (!labels || labels(obj.metadata?.labels ?? {})) &&
          (!annotations || annotations(obj.metadata?.annotations ?? {}))
        );
      },
    };
  });
  return (obj) => compiled.filter((r) => r.matches(obj)).flatMap((r) => r.paths);
}

type Json = Record<string, unknown> | unknown[];

function lookup(root: unknown, path: string[]): { found: boolean; value?: unknown } {
  let node = root;
  for (const token of path) {
    if (Array.isArray(node)) node = node[Number(token)];
    else if (node && typeof node === 'object' && Object.hasOwn(node, token))
      node = (node as Record<string, unknown>)[token];
    else return { found: false };
    if (node === undefined) return { found: false };
  }
  return { found: true, value: node };
}

function assign(root: Json, path: string[], value: unknown, present: boolean): void {
  let node: unknown = root;
  for (const token of path.slice(0, -1)) {
    const next = Array.isArray(node) ? node[Number(token)] : (node as Record<string, unknown>)[token];
    if (!next || typeof next !== 'object') {
      if (!present) return; // nothing declared below here: nothing to remove
      (node as Record<string, unknown>)[token] = {};
    }
    node = Array.isArray(node) ? node[Number(token)] : (node as Record<string, unknown>)[token];
  }
  const last = path.at(-1)!;
  if (Array.isArray(node)) {
    if (present) node[Number(last)] = value;
    else node.splice(Number(last), 1);
  } else if (present) (node as Record<string, unknown>)[last] = value;
  else delete (node as Record<string, unknown>)[last];
}

/** Whether a manager other than `fieldManager` owns the field at `path` (map keys only). */
function ownedByOthers(live: KubernetesObject, path: readonly string[], fieldManager: string): boolean {
  if (path.some((t) => /^\d+$/.test(t))) return false; // list items are keyed in managedFields; not followed
  const entries = (live.metadata?.managedFields ?? []) as { manager?: string; fieldsV1?: Record<string, unknown> }[];
  return entries.some((e) => {
    if (e.manager === fieldManager) return false;
    let node: unknown = e.fieldsV1;
    for (const token of path) {
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[`f:${token}`] : undefined;
      if (node === undefined) return false;
    }
    return true;
  });
}

/**
 * `desired` as it is applied to the existing `live` object under the ignored `paths`: left out
 * where another manager owns the field or the live object has none, the live value otherwise.
 * A copy; `desired` is unchanged. Without a live object, `desired` itself.
 */
export function withIgnoredFromLive(
  desired: KubernetesObject,
  live: KubernetesObject | undefined,
  paths: readonly string[][],
  fieldManager = '',
): KubernetesObject {
  if (!live || paths.length === 0) return desired;
  const out = structuredClone(desired) as unknown as Json;
  for (const path of paths) {
    const { found, value } = lookup(live, path);
    assign(out, path, structuredClone(value), found && !ownedByOthers(live, path, fieldManager));
  }
  return out as unknown as KubernetesObject;
}
