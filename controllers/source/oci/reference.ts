// OCI repository URLs as Flux takes them (OCIRepository and HelmRepository type oci:
// `oci://host[:port]/path/to/repo`), split into the registry host and the repository path, and
// tag/digest references composed from them. The grammar is distribution's (github.com/distribution/reference):
// the first path element is the registry when it looks like a host (has a dot or a port, or is
// localhost), otherwise the repository is on Docker Hub, as go-containerregistry (Flux's library) reads it.

export const ociScheme = 'oci://';

/** Where go-containerregistry sends Docker Hub requests. */
export const dockerHubRegistry = 'index.docker.io';

export interface OciRepository {
  /** `host` or `host:port`; IPv6 hosts in brackets. */
  registry: string;
  /** The path inside the registry, e.g. `org/app`; empty only when `repositoryOptional` allowed it. */
  repository: string;
}

export class InvalidReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}

const hostComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const hostPattern = new RegExp(`^(?:${hostComponent}(?:\\.${hostComponent})*|\\[[0-9a-fA-F:.]+\\])(?::([0-9]+))?$`);
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const knownDigests: Record<string, number> = { sha256: 64, sha512: 128 };
/** distribution's limit on `host/repository`. */
const maxNameLength = 255;

const formatHint = "URL must be in format 'oci://<domain>/<org>/<repo>'";

/**
 * Splits an `oci://` URL into registry and repository. Throws InvalidReferenceError naming what is
 * wrong. `repositoryOptional` admits `oci://host` alone (a HelmRepository may hold charts at the top).
 */
export function parseOciUrl(url: string, opts: { repositoryOptional?: boolean } = {}): OciRepository {
  if (!url.startsWith(ociScheme)) {
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url)?.[1];
    // Only the scheme is echoed: the rest may hold credentials.
    throw new InvalidReferenceError(scheme ? `${formatHint}, not '${scheme}://'` : formatHint);
  }
  let rest = url.slice(ociScheme.length);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (rest === '') throw new InvalidReferenceError(`${formatHint}: the registry host is missing`);
  if (/[?#]/.test(rest)) throw new InvalidReferenceError(`${formatHint}: a query or fragment is not allowed`);
  if (/\s/.test(rest)) throw new InvalidReferenceError(`${formatHint}: whitespace is not allowed`);
  if (rest.includes('@')) {
    throw new InvalidReferenceError(
      `URL must not contain a digest or credentials; remove '@${rest.slice(rest.indexOf('@') + 1)}'`,
    );
  }

  const slash = rest.indexOf('/');
  const first = slash < 0 ? rest : rest.slice(0, slash);
  let registry: string;
  let repository: string;
  if (looksLikeHost(first)) {
    registry = first;
    repository = slash < 0 ? '' : rest.slice(slash + 1);
  } else {
    // As docker and go-containerregistry: no host means Docker Hub, official images under library/.
    registry = dockerHubRegistry;
    repository = rest.includes('/') ? rest : `library/${rest}`;
  }
  const port = hostPattern.exec(registry);
  if (!port) throw new InvalidReferenceError(`invalid registry host '${registry}' in ${url}`);
  if (port[1] !== undefined && (Number(port[1]) < 1 || Number(port[1]) > 65535)) {
    throw new InvalidReferenceError(`invalid port ${port[1]} in registry '${registry}'`);
  }

  const components = repository === '' ? [] : repository.split('/');
  const last = components.at(-1);
  if (last?.includes(':')) {
    throw new InvalidReferenceError(`URL must not contain a tag; remove ':${last.slice(last.indexOf(':') + 1)}'`);
  }
  if (components.length === 0 && !opts.repositoryOptional) {
    throw new InvalidReferenceError(`${formatHint}: the repository path after '${registry}' is missing`);
  }
  for (const c of components) checkPathComponent(c, url);
  if (`${registry}/${repository}`.length > maxNameLength) {
    throw new InvalidReferenceError(`repository name ${registry}/${repository} is longer than ${maxNameLength}`);
  }
  return { registry, repository };
}

/** The repository `name` below `parent` (a HelmRepository's chart): `host/parent/name`. */
export function childRepository(parent: OciRepository, name: string): OciRepository {
  const path = name.replace(/^\/+|\/+$/g, '');
  if (path === '') throw new InvalidReferenceError('the repository name is empty');
  for (const c of path.split('/')) checkPathComponent(c, name);
  const repository = parent.repository ? `${parent.repository}/${path}` : path;
  if (`${parent.registry}/${repository}`.length > maxNameLength) {
    throw new InvalidReferenceError(`repository name ${parent.registry}/${repository} is longer than ${maxNameLength}`);
  }
  return { registry: parent.registry, repository };
}

/** Checks a repository path (`org/app`) as parseOciUrl does. */
export function checkRepositoryPath(repository: string): void {
  if (repository === '') throw new InvalidReferenceError('the repository name is empty');
  for (const c of repository.split('/')) checkPathComponent(c, repository);
}

/** `host/repo`, for messages and as the base of references. */
export function repositoryName(repo: OciRepository): string {
  return repo.repository ? `${repo.registry}/${repo.repository}` : repo.registry;
}

/** `host/repo:tag`. */
export function tagReference(repo: OciRepository, tag: string): string {
  checkTag(tag);
  return `${repositoryName(repo)}:${tag}`;
}

/** `host/repo@algorithm:hex`. */
export function digestReference(repo: OciRepository, digest: string): string {
  checkDigest(digest);
  return `${repositoryName(repo)}@${digest}`;
}

/** Whether `reference` (what follows `:` or `@` in a reference) is a digest rather than a tag. */
export function isDigest(reference: string): boolean {
  return reference.includes(':');
}

export function checkTag(tag: string): void {
  if (!tagPattern.test(tag)) {
    throw new InvalidReferenceError(
      `invalid tag '${tag}': a tag is 1 to 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'`,
    );
  }
}

/** Accepts `algorithm:hex`; for sha256 and sha512 the hex part must have the right length. */
export function checkDigest(digest: string): void {
  const ok = digestPattern.test(digest);
  const [algorithm, hex] = digest.split(':') as [string, string | undefined];
  const length = knownDigests[algorithm];
  if (!ok || (length !== undefined && !new RegExp(`^[a-f0-9]{${length}}$`).test(hex ?? ''))) {
    throw new InvalidReferenceError(`invalid digest '${digest}': expected e.g. sha256:<64 lowercase hex digits>`);
  }
}

/** A tag or a digest, checked, for a manifest request. */
export function checkReference(reference: string): void {
  if (isDigest(reference)) checkDigest(reference);
  else checkTag(reference);
}

function looksLikeHost(first: string): boolean {
  return /[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first;
}

function checkPathComponent(component: string, whole: string): void {
  if (pathComponentPattern.test(component)) return;
  if (component === '') throw new InvalidReferenceError(`empty path element in '${whole}'`);
  if (component.toLowerCase() !== component && pathComponentPattern.test(component.toLowerCase())) {
    throw new InvalidReferenceError(`repository path '${component}' must be lowercase`);
  }
  throw new InvalidReferenceError(
    `invalid repository path element '${component}' in '${whole}': ` +
      `use lowercase letters and digits, separated by '.', '_', '__' or '-'`,
  );
}
