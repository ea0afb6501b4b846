// Turns spec.ref and the refs a server advertises into one commit to fetch, with Flux's
// precedence (commit > name > semver > tag > branch, default branch master) and revision format.
import { type Constraints, newConstraint, parseFluxVersion, type Version } from '../../runtime/semver.ts';

export interface RefSpec {
  branch?: string;
  tag?: string;
  semver?: string;
  name?: string;
  commit?: string;
}

/** One advertised ref; `peeled` is the commit an annotated tag points to. */
export interface AdvertisedRef {
  ref: string;
  oid: string;
  peeled?: string;
}

export interface Resolved {
  /** The full ref to fetch (refs/heads/…, refs/tags/…); undefined when only a commit is known. */
  fetchRef: string | undefined;
  /** The commit the artifact is built from; undefined when it is only known after fetching. */
  commit: string | undefined;
  /** The annotated tag object, for tag signature verification. */
  tagObject?: string;
  /** Flux revision prefix: "main", "v1.2.3", "refs/pull/1/head", or "" for a bare commit. */
  revisionName: string;
  /** Whether a shallow (depth 1) fetch of fetchRef yields `commit`. */
  shallow: boolean;
}

export class RefNotFoundError extends Error {}
export class InvalidRefError extends Error {}

export const DEFAULT_BRANCH = 'master';

export function revisionOf(name: string, commit: string): string {
  return name ? `${name}@sha1:${commit}` : `sha1:${commit}`;
}

/**
 * Parses spec.ref.semver as Flux does, with Masterminds/semver v3 rules (`,` or space for AND,
 * `||` for OR, `a - b`, `!=`, `~`, `^`, wildcards; prereleases only where the range names one).
 */
export function semverRange(text: string): Constraints {
  try {
    return newConstraint(text);
  } catch (err) {
    throw new InvalidRefError(`invalid semver range '${text}' in spec.ref.semver: ${(err as Error).message}`);
  }
}

/** Checks the parts of spec.ref that can be wrong without asking any server. */
export function validateRef(ref: RefSpec | undefined): void {
  if (ref?.semver !== undefined) semverRange(ref.semver);
  if (ref?.commit !== undefined && !/^[0-9a-f]{40}$/.test(ref.commit)) {
    throw new InvalidRefError(`invalid commit '${ref.commit}' in spec.ref.commit: expected a full 40-character SHA-1`);
  }
  if (ref?.name !== undefined && !/^refs\/[^\s~^:?*[\\]+$/.test(ref.name)) {
    throw new InvalidRefError(`invalid reference name '${ref.name}' in spec.ref.name: expected e.g. refs/heads/main`);
  }
}

export function resolveRef(ref: RefSpec | undefined, advertised: AdvertisedRef[]): Resolved {
  validateRef(ref);
  const byName = new Map(advertised.map((r) => [r.ref, r]));
  const find = (name: string, what: string): AdvertisedRef => {
    const found = byName.get(name);
    if (!found) throw new RefNotFoundError(`couldn't find remote ref '${name}' for ${what}`);
    return found;
  };
  const tagged = (tagRef: AdvertisedRef, name: string): Resolved => ({
    fetchRef: tagRef.ref,
    commit: tagRef.peeled ?? tagRef.oid,
    ...(tagRef.peeled ? { tagObject: tagRef.oid } : {}),
    revisionName: name,
    shallow: true,
  });

  if (ref?.commit) {
    if (ref.branch) {
      find(`refs/heads/${ref.branch}`, `branch '${ref.branch}'`);
      return { fetchRef: `refs/heads/${ref.branch}`, commit: ref.commit, revisionName: ref.branch, shallow: false };
    }
    return { fetchRef: undefined, commit: ref.commit, revisionName: '', shallow: false };
  }
  if (ref?.name) {
    const r = find(ref.name, `reference '${ref.name}'`);
    if (ref.name.startsWith('refs/tags/')) return tagged(r, ref.name);
    return { fetchRef: ref.name, commit: r.oid, revisionName: ref.name, shallow: true };
  }
  if (ref?.semver) {
    // As source-controller: tags that are not SemVer (an optional leading "v" aside) are skipped,
    // the range filters, the highest version wins.
    const range = semverRange(ref.semver);
    const tags: { r: AdvertisedRef; tag: string; version: Version }[] = [];
    for (const r of advertised) {
      if (!r.ref.startsWith('refs/tags/')) continue;
      const tag = r.ref.slice('refs/tags/'.length);
      let version: Version;
      try {
        version = parseFluxVersion(tag);
      } catch {
        continue;
      }
      if (range.check(version)) tags.push({ r, tag, version });
    }
    if (tags.length === 0) throw new RefNotFoundError(`no tag matches semver range '${ref.semver}'`);
    // Between tags of equal version (v1.0.0 and 1.0.0, or differing build metadata) Flux takes the
    // newest commit; the advertised refs carry no dates, so the name decides, for stability.
    tags.sort((a, b) => b.version.compare(a.version) || a.tag.localeCompare(b.tag));
    return tagged(tags[0]!.r, tags[0]!.tag);
  }
  if (ref?.tag) return tagged(find(`refs/tags/${ref.tag}`, `tag '${ref.tag}'`), ref.tag);
  const branch = ref?.branch || DEFAULT_BRANCH;
  const head = find(`refs/heads/${branch}`, `branch '${branch}'`);
  return { fetchRef: head.ref, commit: head.oid, revisionName: branch, shallow: true };
}
