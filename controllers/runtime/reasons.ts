// Condition types and reasons, as Flux names them. Every reason a controller writes lives here.
export const ConditionType = {
  Ready: 'Ready',
  Reconciling: 'Reconciling',
  Stalled: 'Stalled',
  // Sources
  ArtifactInStorage: 'ArtifactInStorage',
  ArtifactOutdated: 'ArtifactOutdated',
  FetchFailed: 'FetchFailed',
  IncludeUnavailable: 'IncludeUnavailable',
  SourceVerified: 'SourceVerified',
  StorageOperationFailed: 'StorageOperationFailed',
} as const;

export const Reason = {
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Progressing: 'Progressing',
  ProgressingWithRetry: 'ProgressingWithRetry',
  ReconciliationSucceeded: 'ReconciliationSucceeded',
  ReconciliationFailed: 'ReconciliationFailed',
  DependencyNotReady: 'DependencyNotReady',
  InvalidSpec: 'InvalidSpec',
  /** A reference the controller's configuration forbids (--no-cross-namespace-refs). */
  AccessDenied: 'AccessDenied',
  /** A CEL expression of the spec does not parse (Flux's meta.InvalidCELExpressionReason). */
  InvalidCELExpression: 'InvalidCELExpression',
  Suspended: 'Suspended',
  // Sources
  URLInvalid: 'URLInvalid',
  AuthenticationFailed: 'AuthenticationFailed',
  GitOperationFailed: 'GitOperationFailed',
  VerificationError: 'VerificationError',
  ArchiveOperationFailed: 'ArchiveOperationFailed',
  /** Storage could not be read (Flux's StatOperationFailed). */
  StatOperationFailed: 'StatOperationFailed',
  ArtifactUpToDate: 'ArtifactUpToDate',
  NewRevision: 'NewRevision',
  NewArtifact: 'NewArtifact',
  NotFound: 'NotFound',
  NoArtifact: 'NoArtifact',
  UnsupportedFeature: 'UnsupportedFeature',
  InvalidProviderConfiguration: 'InvalidProviderConfiguration',
  // Helm and OCI sources (source-controller's helm chart build errors and OCI reasons)
  IndexationFailed: 'IndexationFailed',
  ChartPullError: 'ChartPullError',
  ChartPackageError: 'ChartPackageError',
  InvalidChartReference: 'InvalidChartReference',
  ValuesFilesError: 'ValuesFilesError',
  DependencyBuildError: 'DependencyBuildError',
  ChartPullSucceeded: 'ChartPullSucceeded',
  ChartPackageSucceeded: 'ChartPackageSucceeded',
  OCIArtifactPullFailed: 'OCIArtifactPullFailed',
  OCIArtifactLayerOperationFailed: 'OCIArtifactLayerOperationFailed',
  /** The tags of an OCI repository could not be listed, or none matched (Flux's ReadOperationFailed). */
  ReadOperationFailed: 'ReadOperationFailed',
  // Kustomizations
  ArtifactFailed: 'ArtifactFailed',
  BuildFailed: 'BuildFailed',
  PruneFailed: 'PruneFailed',
  HealthCheckFailed: 'HealthCheckFailed',
  /** A newer request (revision, generation, reconcile request) ended a health wait (Flux's meta reason). */
  HealthCheckCanceled: 'HealthCheckCanceled',
  // HelmReleases (helm-controller's reasons)
  /** The release could not be prepared: values, the account or cluster to act as. */
  InitFailed: 'InitFailed',
  /** A valuesFrom reference cannot be resolved. */
  ValuesError: 'ValuesError',
  /** TestSuccess while tests are due. */
  Pending: 'Pending',
  InstallSucceeded: 'InstallSucceeded',
  InstallFailed: 'InstallFailed',
  UpgradeSucceeded: 'UpgradeSucceeded',
  UpgradeFailed: 'UpgradeFailed',
  TestSucceeded: 'TestSucceeded',
  TestFailed: 'TestFailed',
  RollbackSucceeded: 'RollbackSucceeded',
  RollbackFailed: 'RollbackFailed',
  UninstallSucceeded: 'UninstallSucceeded',
  UninstallFailed: 'UninstallFailed',
  /** The newest release was left pending-install/upgrade/rollback (and is unlocked once stale). */
  PendingRelease: 'PendingRelease',
  RetriesExceeded: 'RetriesExceeded',
  MissingRollbackTarget: 'MissingRollbackTarget',
  DriftDetected: 'DriftDetected',
  DriftCorrected: 'DriftCorrected',
  DriftCorrectionFailed: 'DriftCorrectionFailed',
  // Image automation (image-reflector and image-automation-controller's reasons)
  /** spec.image does not parse as an image reference. */
  ImageURLInvalid: 'ImageURLInvalid',
  /** An ImagePolicy's policy or filter cannot work (no choice, a bad range or pattern). */
  InvalidPolicy: 'InvalidPolicy',
  /** An ImagePolicy found no tag to select, or no digest for it (Flux's generic failure reason). */
  Failure: 'Failure',
} as const;
