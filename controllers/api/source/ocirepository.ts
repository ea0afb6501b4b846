// source.toolkit.fluxcd.io/v1 OCIRepository, field for field as Flux defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Artifact, Duration, LocalObjectReference, TIMEOUT_PATTERN, observedStatus } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';

/** OCIRepositoryVerification; HelmChart's spec.verify has the same shape. */
export const OCIRepositoryVerification = Type.Object(
  {
    provider: Type.String({
      enum: ['cosign', 'notation'],
      default: 'cosign',
      description: 'The signing technology to verify the artifact with.',
    }),
    secretRef: Type.Optional(LocalObjectReference('Secret holding the trusted public keys or certificates.')),
    matchOIDCIdentity: Type.Optional(
      Type.Array(
        Type.Object(
          {
            issuer: Type.String({ description: 'Go regular expression the OIDC issuer must match.' }),
            subject: Type.String({ description: 'Go regular expression the certificate subject must match.' }),
          },
          { description: 'An OIDC issuer and subject accepted for keyless signatures.' },
        ),
        { description: 'Identities accepted for Cosign keyless signatures; matching any one of them suffices.' },
      ),
    ),
    trustedRootSecretRef: Type.Optional(
      LocalObjectReference('Secret with a Sigstore trusted_root.json, for self-hosted Sigstore (Fulcio, Rekor).'),
    ),
  },
  { description: 'Signature verification of the OCI artifact.' },
);

const Ref = Type.Object(
  {
    digest: Type.Optional(
      Type.String({ description: "Digest to pull, as 'sha256:<hex>'; takes precedence over semver and tag." }),
    ),
    semver: Type.Optional(
      Type.String({ description: 'SemVer range; the highest matching tag is pulled. Takes precedence over tag.' }),
    ),
    semverFilter: Type.Optional(
      Type.String({ description: 'Regular expression the tags must match to be considered for semver.' }),
    ),
    tag: Type.Optional(Type.String({ description: "Tag to pull; defaults to 'latest'." })),
  },
  { description: "The OCI reference to resolve and watch; defaults to the 'latest' tag." },
);

const LayerSelector = Type.Object(
  {
    mediaType: Type.Optional(
      Type.String({ description: 'Media type of the layer to take; the first layer of that type is used.' }),
    ),
    operation: Type.Optional(
      Type.String({
        enum: ['extract', 'copy'],
        description: "What to do with the layer: 'extract' its contents (the default) or 'copy' it as is.",
      }),
    ),
  },
  { description: 'Which layer of the artifact to take, and how; defaults to extracting the first layer.' },
);

export const OCIRepositorySpec = Type.Object(
  {
    url: Type.String({
      pattern: '^oci://.*$',
      description: 'The repository in a container registry, as oci://<host>/<path>, without tag or digest.',
    }),
    ref: Type.Optional(Ref),
    layerSelector: Type.Optional(LayerSelector),
    provider: Type.Optional(
      Type.String({
        enum: ['generic', 'aws', 'azure', 'gcp'],
        default: 'generic',
        description: 'Authentication provider.',
      }),
    ),
    credential: Type.Optional(
      Type.String({
        enum: ['ServiceAccountToken'],
        description:
          "Credential sent to the provider: 'ServiceAccountToken' sends a token of the ServiceAccount " +
          "(serviceAccountName, else the controller's) as bearer token; only with the 'generic' provider.",
      }),
    ),
    audiences: Type.Optional(
      Type.Array(Type.String(), {
        description: "Audiences of the JWT credential; required with credential 'ServiceAccountToken'.",
      }),
    ),
    secretRef: Type.Optional(
      LocalObjectReference('Secret of type kubernetes.io/dockerconfigjson with the registry credentials.'),
    ),
    verify: Type.Optional(OCIRepositoryVerification),
    serviceAccountName: Type.Optional(
      Type.String({
        description: 'ServiceAccount whose image pull secrets (or workload identity, with a cloud provider) are used.',
      }),
    ),
    certSecretRef: Type.Optional(
      LocalObjectReference('Secret with a client certificate and key (tls.crt, tls.key) and/or a CA (ca.crt).'),
    ),
    proxySecretRef: Type.Optional(LocalObjectReference('Secret with the proxy configuration for the registry.')),
    interval: Duration('How often the repository is checked for new revisions.'),
    timeout: Type.Optional(
      Duration('Timeout for registry operations such as pulling.', { pattern: TIMEOUT_PATTERN, default: '60s' }),
    ),
    ignore: Type.Optional(
      Type.String({ description: 'Exclusion patterns in .gitignore format, replacing the default ones.' }),
    ),
    insecure: Type.Optional(Type.Boolean({ description: 'Allow plain HTTP to the registry.' })),
    suspend: Type.Optional(Type.Boolean({ description: 'Suspends reconciliation of this OCIRepository.' })),
  },
  {
    description: 'OCIRepositorySpec describes the OCI artifact to produce an artifact from.',
    'x-kubernetes-validations': [
      {
        rule:
          '!has(self.audiences) || size(self.audiences) == 0 || ' +
          "(has(self.credential) && self.credential == 'ServiceAccountToken')",
        message: "spec.audiences can be set only when spec.credential is set to 'ServiceAccountToken'",
      },
      {
        rule:
          "!has(self.credential) || self.credential != 'ServiceAccountToken' || " +
          '(has(self.audiences) && size(self.audiences) > 0)',
        message: "spec.audiences must be set when spec.credential is set to 'ServiceAccountToken'",
      },
      {
        rule:
          "!has(self.credential) || self.credential != 'ServiceAccountToken' || " +
          "!has(self.provider) || self.provider == 'generic'",
        message: "spec.credential 'ServiceAccountToken' can only be used with spec.provider 'generic'",
      },
    ],
  },
);

export const OCIRepositoryStatus = Type.Object(
  {
    ...observedStatus,
    url: Type.Optional(Type.String({ description: 'Address at which the latest artifact can be fetched.' })),
    artifact: Type.Optional(Artifact),
    observedIgnore: Type.Optional(
      Type.String({ description: 'The exclusion patterns used for the current artifact.' }),
    ),
    observedLayerSelector: Type.Optional(
      Type.Object(LayerSelector.properties, { description: 'The layer selector used for the current artifact.' }),
    ),
  },
  { description: 'OCIRepositoryStatus records the observed state of an OCI repository.' },
);

export type OCIRepositoryVerification = Static<typeof OCIRepositoryVerification>;
export type OCIRepositorySpec = Static<typeof OCIRepositorySpec>;
export type OCIRepositoryStatus = Static<typeof OCIRepositoryStatus>;

const [ageColumn, readyColumn, statusColumn] = readyColumns;

export const OCIRepositoryKind: KindDefinition<typeof OCIRepositorySpec, typeof OCIRepositoryStatus> = {
  group: 'source.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'OCIRepository',
  plural: 'ocirepositories',
  singular: 'ocirepository',
  shortNames: ['ocirepo'],
  categories: ['all', 'fluxcd', 'fluxcd-sources'],
  description: 'OCIRepository is the Schema for the ocirepositories API.',
  // Flux lists Age last for this kind.
  printerColumns: [{ name: 'URL', type: 'string', jsonPath: '.spec.url' }, readyColumn!, statusColumn!, ageColumn!],
  spec: OCIRepositorySpec,
  status: OCIRepositoryStatus,
  statusDefault: { observedGeneration: -1 },
};
