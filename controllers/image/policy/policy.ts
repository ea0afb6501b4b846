// ImagePolicy's tag selection, as image-reflector-controller does it: spec.filterTags narrows the
// tags and may extract a value from each, then spec.policy (semver, alphabetical or numerical)
// picks the latest value, and the tag it came from is the result.

import { newConstraint, Version } from '../../runtime/semver.ts';
import { expand } from './expand.ts';
import { parseGoFloat } from './parse-float.ts';
import { Re2SyntaxError, translateRe2 } from './re2.ts';

/** An error of the policy, worded as Flux's, for the Ready condition's message. */
export class PolicyError extends Error {
  /**
   * The spec is wrong and retrying will not help: Flux marks the ImagePolicy Stalled with reason
   * InvalidPolicy. Otherwise (no tag fits) it sets Ready=False, reason Failure, and retries.
   */
  readonly invalidPolicy: boolean;
  /** The spec field at fault, when there is one. */
  readonly field?: string;

  constructor(message: string, invalidPolicy: boolean, field?: string) {
    super(message);
    this.name = 'PolicyError';
    this.invalidPolicy = invalidPolicy;
    this.field = field;
  }
}

/** Every policy's error for an empty list of candidates (none in the database, or none matched). */
export const EMPTY_LIST_MESSAGE = 'version list argument cannot be empty';
/** The semver policy's error when no candidate is a version in the range. */
export const NO_LATEST_VERSION_MESSAGE = 'unable to determine latest version from provided list';
/** The reconciler's error, reason DependencyNotReady, when the repository has no tags scanned yet. */
export const NO_TAGS_IN_DATABASE_MESSAGE = 'no tags in database';

/** The error Flux reports when no tag is left for the policy to choose from. */
export const noTagMatched = (): PolicyError => new PolicyError(EMPTY_LIST_MESSAGE, false);

export interface FilterTags {
  pattern?: string;
  extract?: string;
}

export interface Candidate {
  /** The tag as in the repository. */
  tag: string;
  /** What the policy compares: the tag, or what spec.filterTags.extract made of it. */
  value: string;
}

/** Keeps the tags that match, each with the value the policy will compare. */
export type TagFilter = (tags: readonly string[]) => Candidate[];

/**
 * spec.filterTags. Without a pattern every tag matches; without extract the value is the tag.
 * Tags that extract to the same value are one candidate, with the last of those tags, as Flux keys
 * its filter's result by value. Throws a PolicyError (invalidPolicy) when the pattern is not valid
 * Go RE2 syntax.
 */
export function compileFilter(filterTags?: FilterTags): TagFilter {
  const pattern = filterTags?.pattern ?? '';
  const extract = filterTags?.extract ?? '';
  let compiled: ReturnType<typeof translateRe2>;
  try {
    compiled = translateRe2(pattern);
  } catch (e) {
    if (!(e instanceof Re2SyntaxError)) throw e;
    throw new PolicyError(
      `failed to filter tags: invalid regular expression pattern '${pattern}' in spec.filterTags.pattern: ${e.message}`,
      true,
      'spec.filterTags.pattern',
    );
  }
  const { regexp, names } = compiled;
  const matchAll = pattern === '';
  return (tags) => {
    const byValue = new Map<string, string>();
    for (const tag of tags) {
      if (matchAll && extract === '') {
        byValue.set(tag, tag);
        continue;
      }
      const m = regexp.exec(tag);
      if (m === null) continue;
      byValue.set(extract === '' ? tag : expand(extract, m, names), tag);
    }
    return Array.from(byValue, ([value, tag]) => ({ tag, value }));
  };
}

export interface PolicyChoice {
  semver?: { range: string };
  alphabetical?: { order?: string };
  numerical?: { order?: string };
}

/** Picks the latest of the values given; throws a PolicyError when it cannot. */
export type Policer = (values: readonly string[]) => string;

// Go's strings.ToUpper maps each character alone; JavaScript's may expand one (ß to SS).
const goToUpper = (s: string): string =>
  Array.from(s, (c) => {
    const u = c.toUpperCase();
    return [...u].length === 1 ? u : c;
  }).join('');

function order(text: string | undefined): 'ASC' | 'DESC' {
  const o = goToUpper(text ?? '');
  if (o === '') return 'ASC';
  if (o === 'ASC' || o === 'DESC') return o;
  throw new PolicyError(
    `invalid policy: invalid order argument provided: '${o}', must be one of: ASC, DESC`,
    true,
    'spec.policy',
  );
}

/** Go's string order: by UTF-8 bytes, which is by code point (JavaScript's < compares UTF-16 units). */
export function compareGoStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  const fix = (c: number) => (c >= 0xd800 && c <= 0xdfff ? c + 0x2000 : c >= 0xe000 ? c - 0x800 : c);
  return fix(a.charCodeAt(i)) - fix(b.charCodeAt(i));
}

// What fluxcd/pkg/version.ParseVersion accepts: strict SemVer 2.0 after an optional "v", numbers
// within uint64. Matched here in one pass (ParseVersion parses each tag twice).
const NUM = '(0|[1-9][0-9]*)';
const PRE_ID = '(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)';
const STRICT_VERSION = new RegExp(
  `^v?${NUM}\\.${NUM}\\.${NUM}(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?(?:\\+([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`,
);
const MAX_UINT64 = (1n << 64n) - 1n;

/** fluxcd/pkg/version.ParseVersion, undefined where it errs. */
export function fluxVersion(text: string): Version | undefined {
  const m = STRICT_VERSION.exec(text);
  if (m === null) return undefined;
  const [major, minor, patch] = [m[1]!, m[2]!, m[3]!].map((n) => BigInt(n));
  if (major! > MAX_UINT64 || minor! > MAX_UINT64 || patch! > MAX_UINT64) return undefined;
  return new Version(major!, minor!, patch!, m[4] ?? '', m[5] ?? '', text);
}

function semverPolicer(range: string): Policer {
  let constraint: ReturnType<typeof newConstraint>;
  try {
    constraint = newConstraint(range);
  } catch (e) {
    throw new PolicyError(
      `invalid policy: spec.policy.semver.range '${range}': ${(e as Error).message}`,
      true,
      'spec.policy.semver.range',
    );
  }
  return (values) => {
    if (values.length === 0) throw noTagMatched();
    let latest: Version | undefined;
    for (const value of values) {
      const v = fluxVersion(value);
      if (v === undefined) continue;
      // Strictly greater: of equal versions (`v1.0.0`, `1.0.0`, `1.0.0+b`) the first one stays.
      if (constraint.check(v) && (latest === undefined || v.greaterThan(latest))) latest = v;
    }
    if (latest === undefined) throw new PolicyError(NO_LATEST_VERSION_MESSAGE, false);
    return latest.original;
  };
}

function alphabeticalPolicer(o: 'ASC' | 'DESC'): Policer {
  // Flux sorts and takes the first: the greatest for ASC, the least for DESC.
  const sign = o === 'ASC' ? 1 : -1;
  return (values) => {
    if (values.length === 0) throw noTagMatched();
    let latest = values[0]!;
    for (let i = 1; i < values.length; i++) {
      if (sign * compareGoStrings(values[i]!, latest) > 0) latest = values[i]!;
    }
    return latest;
  };
}

function numericalPolicer(o: 'ASC' | 'DESC'): Policer {
  return (values) => {
    if (values.length === 0) throw noTagMatched();
    let latest = '';
    let previous = 0;
    for (const [i, value] of values.entries()) {
      const n = parseGoFloat(value);
      if (n === undefined) throw new PolicyError(`failed to parse invalid numeric value '${value}'`, false);
      // Flux's loop: a value replaces the latest unless it is on the wrong side of it, so of equal
      // numbers the last wins, and a NaN (never less, never greater) always does.
      if (i > 0 && ((o === 'ASC' && n < previous) || (o === 'DESC' && n > previous))) continue;
      latest = value;
      previous = n;
    }
    return latest;
  };
}

/** Flux's PolicerFromSpec: semver, else alphabetical, else numerical; a PolicyError if none is set. */
export function policerFromSpec(policy: PolicyChoice): Policer {
  if (policy.semver) return semverPolicer(policy.semver.range);
  if (policy.alphabetical) return alphabeticalPolicer(order(policy.alphabetical.order));
  if (policy.numerical) return numericalPolicer(order(policy.numerical.order));
  throw new PolicyError('invalid policy: given ImagePolicyChoice object is invalid', true, 'spec.policy');
}

/**
 * The latest tag among the candidates (the output of a TagFilter) by spec.policy, or a PolicyError.
 * Where Flux's choice depends on the order it meets candidates in (equal semver versions, equal
 * numbers, the first non-number), the order of `candidates` is that order.
 */
export function selectLatest(policy: PolicyChoice, candidates: readonly Candidate[]): string | undefined {
  const policer = policerFromSpec(policy);
  const byValue = new Map<string, string>();
  for (const c of candidates) byValue.set(c.value, c.tag);
  return byValue.get(policer(Array.from(byValue.keys())));
}
