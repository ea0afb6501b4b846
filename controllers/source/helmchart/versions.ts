// Chart version selection as Helm's index (and Flux's remote builder) does it: the highest version
// in the range by Masterminds rules, versions that do not parse skipped; and Flux's revision
// suffixes for charts rebuilt with values files or per source revision.
import { newConstraint, newVersion, SemverError, type Version } from '../../runtime/semver.ts';
import { stalled } from '../../runtime/outcome.ts';
import { Reason } from '../../runtime/reasons.ts';

export interface Candidate {
  version: string;
}

/** The range of spec.version ('*' when empty); a range that does not parse stalls. */
export function parseRange(range: string | undefined) {
  const text = range?.trim() || '*';
  try {
    return newConstraint(text);
  } catch (err) {
    throw stalled(
      Reason.InvalidChartReference,
      `invalid chart reference: invalid version range '${text}': ${(err as Error).message}`,
    );
  }
}

/** The highest candidate in `range`; stalls with Flux's message when none is. */
export function selectVersion<T extends Candidate>(chart: string, candidates: readonly T[], range?: string): T {
  const constraint = parseRange(range);
  let best: { c: T; v: Version } | undefined;
  for (const c of candidates) {
    let v: Version;
    try {
      v = newVersion(c.version);
    } catch (err) {
      if (err instanceof SemverError) continue;
      throw err;
    }
    if (!constraint.check(v)) continue;
    if (!best || v.compare(best.v) > 0) best = { c, v };
  }
  if (!best) {
    throw stalled(
      Reason.InvalidChartReference,
      `invalid chart reference: failed to get chart version for remote reference: ` +
        `no '${chart}' chart with version matching '${range?.trim() || '*'}' found`,
    );
  }
  return best.c;
}

/** OCI tags carry a chart version with '+' written as '_' (OCI tags cannot hold '+'). */
export function tagToVersion(tag: string): string {
  return tag.replaceAll('_', '+');
}

export function versionToTag(version: string): string {
  return version.replaceAll('+', '_');
}

/**
 * The version a chart is packaged with: as is; `+<generation>` for a repository chart merged with
 * values files; `+<first 12 of the source revision>` with reconcileStrategy Revision. An existing
 * build metadata is extended with '.', as Flux does.
 */
export function artifactVersion(version: string, suffix: string | undefined): string {
  if (!suffix) return version;
  return version.includes('+') ? `${version}.${suffix}` : `${version}+${suffix}`;
}

/** The first 12 characters of the hex digest of a source revision (`main@sha1:abc…`, `sha256:…`). */
export function revisionSuffix(revision: string): string {
  const hex = revision.slice(revision.lastIndexOf(':') + 1);
  return hex.slice(0, 12);
}
