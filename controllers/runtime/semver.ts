// Semantic versions and ranges with the semantics of github.com/Masterminds/semver/v3 (v3.4.0), the
// library every Flux controller evaluates `semver` fields with. node-semver differs on many inputs
// (`!=`, `=>`, `~0.0.0`, prereleases across versions, `1.1-3`), so Flux ranges need this port.
// semver.vectors.json holds the upstream test vectors it is checked against.

/** Raised for a version or range that does not parse; `message` is the upstream error text. */
export class SemverError extends Error {}

const MAX_UINT64 = (1n << 64n) - 1n;
const DIGITS = /^[0-9]+$/;
const IDENTIFIER = /^[0-9A-Za-z-]+$/;

// Go's regexp `\s` is ASCII only; JavaScript's also takes \v and Unicode spaces.
const WS = '[\\t\\n\\f\\r ]';

// Dot-separated identifiers of a prerelease or build.
const IDENT = '[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*';

// The loose form NewVersion accepts: optional "v", one to three numbers, then prerelease and build.
const LOOSE_VERSION = new RegExp(`^v?([0-9]+)(?:\\.([0-9]+))?(?:\\.([0-9]+))?(?:-(${IDENT}))?(?:\\+(${IDENT}))?$`);

function uint64(text: string): bigint {
  const n = BigInt(text);
  if (n > MAX_UINT64) throw new SemverError(`error parsing version segment: value out of range: ${text}`);
  return n;
}

function checkPrerelease(pre: string): void {
  for (const part of pre.split('.')) {
    if (part === '' || !IDENTIFIER.test(part)) throw new SemverError('invalid prerelease string');
    if (DIGITS.test(part) && part.length > 1 && part[0] === '0') throw new SemverError('version segment starts with 0');
  }
}

function checkMetadata(meta: string): void {
  for (const part of meta.split('.')) {
    if (part === '' || !IDENTIFIER.test(part)) throw new SemverError('invalid build string');
  }
}

/** Numeric identifiers are those Go's ParseUint accepts: digits only, within uint64. */
function numericIdentifier(part: string): bigint | undefined {
  if (!DIGITS.test(part)) return undefined;
  const n = BigInt(part);
  return n > MAX_UINT64 ? undefined : n;
}

function comparePrereleasePart(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return -1;
  if (b === '') return 1;
  const na = numericIdentifier(a);
  const nb = numericIdentifier(b);
  if (na === undefined && nb === undefined) return a > b ? 1 : -1;
  // A number ranks below any alphanumeric identifier.
  if (na === undefined) return 1;
  if (nb === undefined) return -1;
  return na > nb ? 1 : -1;
}

/** Orders two prerelease strings (without the leading "-"); a missing identifier ranks lowest. */
export function comparePrerelease(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = comparePrereleasePart(pa[i] ?? '', pb[i] ?? '');
    if (d !== 0) return d;
  }
  return 0;
}

export class Version {
  readonly major: bigint;
  readonly minor: bigint;
  readonly patch: bigint;
  readonly prerelease: string;
  readonly metadata: string;
  /** The text this version was parsed from (a tag name, with its "v" if it had one). */
  readonly original: string;

  constructor(major: bigint, minor: bigint, patch: bigint, prerelease: string, metadata: string, original: string) {
    this.major = major;
    this.minor = minor;
    this.patch = patch;
    this.prerelease = prerelease;
    this.metadata = metadata;
    this.original = original;
  }

  toString(): string {
    const pre = this.prerelease ? `-${this.prerelease}` : '';
    const meta = this.metadata ? `+${this.metadata}` : '';
    return `${this.major}.${this.minor}.${this.patch}${pre}${meta}`;
  }

  /** -1, 0 or 1; build metadata is ignored, a prerelease ranks below its release. */
  compare(o: Version): number {
    for (const [a, b] of [
      [this.major, o.major],
      [this.minor, o.minor],
      [this.patch, o.patch],
    ] as const) {
      if (a !== b) return a < b ? -1 : 1;
    }
    if (this.prerelease === o.prerelease) return 0;
    if (this.prerelease === '') return 1;
    if (o.prerelease === '') return -1;
    return comparePrerelease(this.prerelease, o.prerelease);
  }

  equals(o: Version): boolean {
    return this.compare(o) === 0;
  }
  lessThan(o: Version): boolean {
    return this.compare(o) < 0;
  }
  lessThanOrEqual(o: Version): boolean {
    return this.compare(o) <= 0;
  }
  greaterThan(o: Version): boolean {
    return this.compare(o) > 0;
  }
  greaterThanOrEqual(o: Version): boolean {
    return this.compare(o) >= 0;
  }
}

/**
 * NewVersion: also accepts what is not strictly SemVer but can be read as it — a leading "v",
 * missing minor or patch (`1`, `v1.2`, `1.2-beta`), leading zeros in the numbers (CalVer).
 */
export function newVersion(text: string): Version {
  const m = LOOSE_VERSION.exec(text);
  if (!m) throw new SemverError('invalid semantic version');
  const [, major, minor, patch, pre = '', meta = ''] = m;
  const version = new Version(uint64(major!), uint64(minor ?? '0'), uint64(patch ?? '0'), pre, meta, text);
  if (pre) checkPrerelease(pre);
  if (meta) checkMetadata(meta);
  return version;
}

/** StrictNewVersion: exactly MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], no "v", no leading zeros. */
export function strictNewVersion(text: string): Version {
  if (text === '') throw new SemverError('version string empty');
  const dot1 = text.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : text.indexOf('.', dot1 + 1);
  if (dot2 < 0) throw new SemverError('invalid semantic version');
  const numbers = [text.slice(0, dot1), text.slice(dot1 + 1, dot2)];
  // The third part carries the patch number, then the build (after the first "+"), then the
  // prerelease (after the first "-" of what is left); prerelease and build may contain dots.
  let rest = text.slice(dot2 + 1);
  let meta = '';
  let pre = '';
  const plus = rest.indexOf('+');
  if (plus >= 0) {
    meta = rest.slice(plus + 1);
    rest = rest.slice(0, plus);
    checkMetadata(meta);
  }
  const dash = rest.indexOf('-');
  if (dash >= 0) {
    pre = rest.slice(dash + 1);
    rest = rest.slice(0, dash);
    checkPrerelease(pre);
  }
  numbers.push(rest);
  for (const n of numbers) {
    if (!/^[0-9]*$/.test(n)) throw new SemverError('invalid characters in version');
    if (n.length > 1 && n[0] === '0') throw new SemverError('version segment starts with 0');
  }
  // An empty number passes the checks above and fails here, as ParseUint("") does upstream.
  for (const n of numbers) if (n === '') throw new SemverError('error parsing version segment: invalid syntax');
  const [major, minor, patch] = numbers.map(uint64) as [bigint, bigint, bigint];
  return new Version(major, minor, patch, pre, meta, text);
}

/**
 * Flux's `version.ParseVersion` (fluxcd/pkg/version), which source-controller applies to tag
 * names: strict SemVer, except that one leading "v" is allowed (`v1.2.3`, not `1.2` or `v1`).
 */
export function parseFluxVersion(text: string): Version {
  strictNewVersion(text.startsWith('v') ? text.slice(1) : text);
  return newVersion(text);
}

/** Ascending order, stable; versions equal but for build metadata keep their input order. */
export function sortVersions(versions: readonly Version[]): Version[] {
  return [...versions].sort((a, b) => a.compare(b));
}

// --- Ranges ---------------------------------------------------------------------------------

type Operator = '' | '=' | '!=' | '>' | '<' | '>=' | '=>' | '<=' | '=<' | '~' | '~>' | '^';

// Longest first: an operator is always followed by a version, which never starts with an
// operator character, so the longest operator that prefixes the text is the only one that fits.
const OPERATORS: Operator[] = ['!=', '>=', '=>', '<=', '=<', '~>', '=', '>', '<', '~', '^'];

// A version in a range: like a loose version, but each number may be a wildcard (x, X, *).
// Upstream's character class also admits "|", so "1|2" reads as a (failing) number, not an error
// of the range syntax; kept for identical error behaviour.
const NUM = '[0-9xX*|]+';
const RANGE_VERSION = `v?(${NUM})(\\.${NUM})?(\\.${NUM})?(-${IDENT})?(?:\\+${IDENT})?`;
const RANGE_VERSION_PLAIN = RANGE_VERSION.replace(/\((?!\?)/g, '(?:');
const RANGE_VERSION_AT = new RegExp(RANGE_VERSION, 'y');
const HYPHEN_RANGE = new RegExp(`${WS}*(${RANGE_VERSION_PLAIN})${WS}+-${WS}+(${RANGE_VERSION_PLAIN})${WS}*`, 'g');
const IS_WS = /[\t\n\f\r ]/;

/** x, X or * — a number part of a range version that matches any number. */
export const isWildcard = (s: string): boolean => s === 'x' || s === 'X' || s === '*';

/** `a - b` becomes `>= a, <= b `, each occurrence, as upstream rewrites before parsing. */
export function rewriteRange(text: string): string {
  let out = text;
  for (const m of text.matchAll(HYPHEN_RANGE)) {
    out = out.replace(m[0], () => `>= ${m[1]}, <= ${m[2]} `);
  }
  return out;
}

/** One comparison of a range, e.g. `>= 1.2` or `~1.x`. */
export class Comparator {
  readonly operator: Operator;
  /** The version as written (`1.x`, `v2.0-rc.1`), used in messages and toString. */
  readonly written: string;
  /** The written version with wildcards and missing parts as zeros. */
  readonly version: Version;
  /** Some number was a wildcard or missing (`1.x`, `1`, `*`). */
  readonly dirty: boolean;
  /** The minor (and so the patch) was a wildcard or missing (`1.x`, `1`). */
  readonly minorDirty: boolean;
  /** Only the patch was a wildcard or missing (`1.2.x`, `1.2`). */
  readonly patchDirty: boolean;

  constructor(
    operator: Operator,
    written: string,
    version: Version,
    wildcard: { dirty: boolean; minorDirty: boolean; patchDirty: boolean },
  ) {
    this.operator = operator;
    this.written = written;
    this.version = version;
    this.dirty = wildcard.dirty;
    this.minorDirty = wildcard.minorDirty;
    this.patchDirty = wildcard.patchDirty;
  }

  toString(): string {
    return this.operator + this.written;
  }

  /** Whether `v` satisfies this comparison; the reason when it does not. */
  test(v: Version, includePrerelease: boolean): [boolean, string?] {
    if (v.prerelease !== '' && !includePrerelease) {
      return [false, `${v} is a prerelease version and the constraint is only looking for release versions`];
    }
    switch (this.operator) {
      case '':
      case '=':
        if (this.dirty) return this.tilde(v);
        return v.equals(this.version) ? [true] : [false, `${v} is not equal to ${this.written}`];
      case '!=':
        return this.notEqual(v);
      case '>':
        return this.greaterThan(v);
      case '<':
        return v.lessThan(this.version) ? [true] : [false, `${v} is greater than or equal to ${this.written}`];
      case '>=':
      case '=>':
        return v.greaterThanOrEqual(this.version) ? [true] : [false, `${v} is less than ${this.written}`];
      case '<=':
      case '=<':
        return this.lessThanOrEqual(v);
      case '~':
      case '~>':
        return this.tilde(v);
      case '^':
        return this.caret(v);
    }
  }

  private notEqual(v: Version): [boolean, string?] {
    const c = this.version;
    const equal: [boolean, string] = [false, `${v} is equal to ${this.written}`];
    if (this.dirty) {
      if (c.major !== v.major) return [true];
      if (this.minorDirty) return equal;
      if (c.minor !== v.minor) return [true];
      if (this.patchDirty) {
        if (v.prerelease !== '' || c.prerelease !== '') {
          return comparePrerelease(v.prerelease, c.prerelease) !== 0 ? [true] : equal;
        }
        return equal;
      }
      if (c.patch !== v.patch) return [true];
    }
    return v.equals(c) ? equal : [true];
  }

  private greaterThan(v: Version): [boolean, string?] {
    const c = this.version;
    const no: [boolean, string] = [false, `${v} is less than or equal to ${this.written}`];
    if (this.dirty) {
      // `>1` means 2.0.0 and up, `>1.2` means 1.3.0 and up.
      if (v.major > c.major) return [true];
      if (v.major < c.major || this.minorDirty) return no;
      if (this.patchDirty) return v.minor > c.minor ? [true] : no;
    }
    return v.greaterThan(c) ? [true] : no;
  }

  private lessThanOrEqual(v: Version): [boolean, string?] {
    const c = this.version;
    const no: [boolean, string] = [false, `${v} is greater than ${this.written}`];
    if (!this.dirty) return v.lessThanOrEqual(c) ? [true] : no;
    if (v.major > c.major) return no;
    if (v.major === c.major && v.minor > c.minor && !this.minorDirty) return no;
    return [true];
  }

  private tilde(v: Version): [boolean, string?] {
    const c = this.version;
    if (v.lessThan(c)) return [false, `${v} is less than ${this.written}`];
    // ~0.0.0 (and * or ~*) accepts every version at or above 0.0.0.
    if (c.major === 0n && c.minor === 0n && c.patch === 0n && !this.minorDirty && !this.patchDirty) return [true];
    if (v.major !== c.major) return [false, `${v} does not have same major version as ${this.written}`];
    if (v.minor !== c.minor && !this.minorDirty) {
      return [false, `${v} does not have same major and minor version as ${this.written}`];
    }
    return [true];
  }

  private caret(v: Version): [boolean, string?] {
    const c = this.version;
    if (v.lessThan(c)) return [false, `${v} is less than ${this.written}`];
    const otherMajor: [boolean, string] = [false, `${v} does not have same major version as ${this.written}`];
    if (c.major > 0n || this.minorDirty) return v.major === c.major ? [true] : otherMajor;
    if (v.major > 0n) return otherMajor;
    // Major 0: the minor is the compatibility boundary, and with minor 0 too, the patch.
    if (c.minor > 0n || this.patchDirty) {
      if (v.minor === c.minor) return [true];
      return [
        false,
        `${v} does not have same minor version as ${this.written}. ` +
          'Expected minor versions to match when constraint major version is 0',
      ];
    }
    if (v.minor > 0n) return [false, `${v} does not have same minor version as ${this.written}`];
    if (v.patch === c.patch) return [true];
    return [
      false,
      `${v} does not equal ${this.written}. Expect version and constraint to equal when major and minor versions are 0`,
    ];
  }
}

function comparatorOf(operator: Operator, written: string, m: RegExpExecArray): Comparator {
  const [, major = '', minor = '', patch = '', pre = ''] = m;
  let text = written;
  let dirty = false;
  let minorDirty = false;
  let patchDirty = false;
  if (isWildcard(major) || major === '') {
    text = `0.0.0${pre}`;
    dirty = true;
  } else if (isWildcard(minor.slice(1)) || minor === '') {
    text = `${major}.0.0${pre}`;
    dirty = minorDirty = true;
  } else if (isWildcard(patch.slice(1)) || patch === '') {
    text = `${major}${minor}.0${pre}`;
    dirty = patchDirty = true;
  }
  let version: Version;
  try {
    version = newVersion(text);
  } catch {
    throw new SemverError('constraint parser error');
  }
  return new Comparator(operator, written, version, { dirty, minorDirty, patchDirty });
}

/**
 * parseConstraint: one comparison, surrounding whitespace allowed; the empty string is `*`.
 * Exported for the upstream vectors that test single comparisons.
 */
export function parseComparator(text: string): Comparator {
  if (text === '') {
    const zero = new Version(0n, 0n, 0n, '', '', '0.0.0');
    return new Comparator('', '', zero, { dirty: true, minorDirty: false, patchDirty: false });
  }
  const comparators = scanGroup(text);
  if (comparators === undefined || comparators.length !== 1) throw new SemverError(`improper constraint: ${text}`);
  return comparators[0]!;
}

/**
 * Reads one AND group: comparisons separated by whitespace or a comma, each an optional operator,
 * optional whitespace and a range version. undefined when the group is not of that form. A
 * scanner rather than upstream's regular expression, whose nested whitespace repetitions would
 * backtrack exponentially in a JavaScript engine.
 */
function scanGroup(text: string): Comparator[] | undefined {
  const out: Comparator[] = [];
  let i = 0;
  const skipWs = () => {
    while (i < text.length && IS_WS.test(text[i]!)) i++;
  };
  skipWs();
  for (;;) {
    const operator = OPERATORS.find((op) => text.startsWith(op, i)) ?? '';
    i += operator.length;
    skipWs();
    RANGE_VERSION_AT.lastIndex = i;
    const m = RANGE_VERSION_AT.exec(text);
    if (!m) return undefined;
    i += m[0].length;
    out.push(comparatorOf(operator, m[0], m));
    const beforeSep = i;
    skipWs();
    if (i === text.length) return out;
    if (text[i] === ',') {
      i++;
      skipWs();
    } else if (i === beforeSep) {
      return undefined;
    }
  }
}

/** A parsed range: OR groups (`||`) of AND groups (`,` or whitespace). */
export class Constraints {
  /** Lets prereleases through every group, as if each had asked for them. */
  includePrerelease = false;

  readonly groups: readonly (readonly Comparator[])[];
  /** Per group: some comparison names a prerelease, so the group admits prereleases. */
  private readonly groupHasPrerelease: readonly boolean[];

  constructor(groups: readonly (readonly Comparator[])[], groupHasPrerelease: readonly boolean[]) {
    this.groups = groups;
    this.groupHasPrerelease = groupHasPrerelease;
  }

  /** Whether `v` is in the range. A prerelease is only in a group that names a prerelease. */
  check(v: Version): boolean {
    return this.groups.some((group, i) => {
      const pre = this.includePrerelease || this.groupHasPrerelease[i]!;
      return group.every((c) => c.test(v, pre)[0]);
    });
  }

  /** Like check, with the reasons a version is out of range when it is. */
  validate(v: Version): { ok: boolean; errors: string[] } {
    const errors: string[] = [];
    let prereleaseReported = false;
    for (const [i, group] of this.groups.entries()) {
      const pre = this.includePrerelease || this.groupHasPrerelease[i]!;
      let ok = true;
      for (const c of group) {
        if (!pre && v.prerelease !== '') {
          if (!prereleaseReported) {
            errors.push(`${v} is a prerelease version and the constraint is only looking for release versions`);
            prereleaseReported = true;
          }
          ok = false;
          continue;
        }
        const [passed, reason] = c.test(v, pre);
        if (!passed) {
          errors.push(reason!);
          ok = false;
        }
      }
      if (ok) return { ok: true, errors: [] };
    }
    return { ok: false, errors };
  }

  toString(): string {
    return this.groups.map((g) => g.join(' ')).join(' || ');
  }
}

/**
 * Longest range accepted. v3.4.0 has no limit; upstream's master since caps ranges at 512 bytes,
 * and so does this port: the hyphen-range rewrite runs a regular expression over the whole text,
 * which a backtracking engine answers in quadratic time, and a range comes from any tenant's spec.
 */
export const MAX_CONSTRAINT_LENGTH = 512;

/** NewConstraint: parses a range such as `>= 1.2, < 2.0 || ^3`, `1.2 - 1.4`, `~1.x`, `!=1.3.0`. */
export function newConstraint(text: string): Constraints {
  if (Buffer.byteLength(text) > MAX_CONSTRAINT_LENGTH) {
    throw new SemverError(`constraint string is too long (max ${MAX_CONSTRAINT_LENGTH} bytes)`);
  }
  const groups: Comparator[][] = [];
  const hasPre: boolean[] = [];
  for (const part of rewriteRange(text).split('||')) {
    const group = scanGroup(part);
    if (group === undefined) throw new SemverError(`improper constraint: ${part}`);
    groups.push(group);
    hasPre.push(group.some((c) => c.version.prerelease !== ''));
  }
  return new Constraints(groups, hasPre);
}
