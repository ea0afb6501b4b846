// source.toolkit.fluxcd.io/v1 GitRepository, field for field as Flux defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Artifact, Duration, LocalObjectReference, observedStatus } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';

const Include = Type.Object(
  {
    repository: LocalObjectReference('The GitRepository whose artifact contents are included.'),
    fromPath: Type.Optional(
      Type.String({ description: 'Path to copy contents from; defaults to the root of the artifact.' }),
    ),
    toPath: Type.Optional(
      Type.String({ description: 'Path to copy contents to; defaults to the name of the repository reference.' }),
    ),
  },
  { description: 'A GitRepository whose artifact (sub-)contents are included, and where they are placed.' },
);

const Ref = Type.Object(
  {
    branch: Type.Optional(
      Type.String({ description: "Branch to check out; defaults to 'master' when no other field is set." }),
    ),
    tag: Type.Optional(Type.String({ description: 'Tag to check out; takes precedence over branch.' })),
    semver: Type.Optional(
      Type.String({ description: 'SemVer range of tags to check out; takes precedence over tag.' }),
    ),
    name: Type.Optional(
      Type.String({
        description: 'Full reference name (e.g. refs/heads/main); takes precedence over branch, tag and semver.',
      }),
    ),
    commit: Type.Optional(
      Type.String({ description: 'Commit SHA to check out; takes precedence over every other field.' }),
    ),
  },
  { description: 'The Git reference to resolve and watch; defaults to the master branch.' },
);

const Verify = Type.Object(
  {
    mode: Type.Optional(
      Type.String({
        enum: ['head', 'HEAD', 'Tag', 'TagAndHEAD'],
        default: 'HEAD',
        description: 'Which Git objects are verified.',
      }),
    ),
    secretRef: LocalObjectReference('Secret holding the trusted public keys (PGP keys under keys ending in .asc).'),
  },
  { description: 'Verification of the commit and/or tag signatures.' },
);

export const GitRepositorySpec = Type.Object(
  {
    url: Type.String({
      pattern: '^(http|https|ssh)://.*$',
      description: 'The Git repository URL: http, https or ssh.',
    }),
    secretRef: Type.Optional(
      LocalObjectReference(
        'Secret with credentials: username/password or bearerToken for HTTPS, identity and known_hosts for SSH.',
      ),
    ),
    provider: Type.Optional(
      Type.String({
        enum: ['generic', 'aws', 'azure', 'github'],
        description: "Authentication provider; defaults to 'generic'.",
      }),
    ),
    serviceAccountName: Type.Optional(
      Type.String({ description: "ServiceAccount used to authenticate; only with the 'azure' and 'aws' providers." }),
    ),
    interval: Duration('How often the repository is checked for new revisions.'),
    timeout: Type.Optional(
      Type.String({
        pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m))+$',
        default: '60s',
        description: 'Timeout for Git operations.',
      }),
    ),
    ref: Type.Optional(Ref),
    verify: Type.Optional(Verify),
    proxySecretRef: Type.Optional(LocalObjectReference('Secret with the proxy configuration for the Git server.')),
    ignore: Type.Optional(
      Type.String({ description: 'Exclusion patterns in .gitignore format, replacing the default ones.' }),
    ),
    suspend: Type.Optional(Type.Boolean({ description: 'Suspends reconciliation of this GitRepository.' })),
    recurseSubmodules: Type.Optional(Type.Boolean({ description: 'Initialise all submodules of the repository.' })),
    include: Type.Optional(
      Type.Array(Include, { description: 'GitRepositories whose artifacts are included in this one.' }),
    ),
    sparseCheckout: Type.Optional(
      Type.Array(Type.String(), { description: 'Directories to check out; only they end up in the artifact.' }),
    ),
  },
  {
    description: 'GitRepositorySpec describes the Git repository to produce an artifact from.',
    'x-kubernetes-validations': [
      {
        rule:
          '!has(self.serviceAccountName) || ' +
          "(has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))",
        message: "serviceAccountName can only be set when provider is 'azure' or 'aws'",
      },
    ],
  },
);

export const GitRepositoryStatus = Type.Object(
  {
    ...observedStatus,
    artifact: Type.Optional(Artifact),
    includedArtifacts: Type.Optional(
      Type.Array(Artifact, { description: 'The last included artifacts, per spec.include.' }),
    ),
    observedIgnore: Type.Optional(
      Type.String({ description: 'The exclusion patterns used for the current artifact.' }),
    ),
    observedRecurseSubmodules: Type.Optional(
      Type.Boolean({ description: 'The submodule setting used for the current artifact.' }),
    ),
    observedInclude: Type.Optional(Type.Array(Include, { description: 'The includes used for the current artifact.' })),
    observedSparseCheckout: Type.Optional(
      Type.Array(Type.String(), { description: 'The sparse checkout used for the current artifact.' }),
    ),
    sourceVerificationMode: Type.Optional(Type.String({ description: 'The verification mode last used.' })),
  },
  { description: 'GitRepositoryStatus records the observed state of a Git repository.' },
);

export type GitRepositorySpec = Static<typeof GitRepositorySpec>;
export type GitRepositoryStatus = Static<typeof GitRepositoryStatus>;

export const GitRepositoryKind: KindDefinition<typeof GitRepositorySpec, typeof GitRepositoryStatus> = {
  group: 'source.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'GitRepository',
  plural: 'gitrepositories',
  singular: 'gitrepository',
  shortNames: ['gitrepo'],
  categories: ['all', 'fluxcd', 'fluxcd-sources'],
  annotations: { 'kustomize.toolkit.fluxcd.io/substitute': 'disabled' },
  description: 'GitRepository is the Schema for the gitrepositories API.',
  printerColumns: [{ name: 'URL', type: 'string', jsonPath: '.spec.url' }, ...readyColumns],
  spec: GitRepositorySpec,
  status: GitRepositoryStatus,
  statusDefault: { observedGeneration: -1 },
};
