// The reconciler reports a failure with the reason Flux gives it: a bad or missing artifact is
// ArtifactFailed, anything wrong with the manifests is BuildFailed. The error class carries that.

/** Download, verification or unpacking of the source artifact failed, or spec.path is not in it. */
export class ArtifactError extends Error {
  override name = 'ArtifactError';
}

/** The artifact URL answered 404: the source has moved on; worth a retry after the source interval. */
export class ArtifactNotFoundError extends ArtifactError {
  override name = 'ArtifactNotFoundError';
}

/** The manifests could not be turned into objects: kustomize, YAML, references, substitution. */
export class BuildError extends Error {
  override name = 'BuildError';
}
