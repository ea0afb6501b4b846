// source.toolkit.fluxcd.io/v1 HelmRepository, field for field as Flux defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Artifact, Duration, LocalObjectReference, TIMEOUT_PATTERN, observedStatus } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';

/** acl.AccessFrom */
const AccessFrom = Type.Object(
  {
    namespaceSelectors: Type.Array(
      Type.Object(
        {
          matchLabels: Type.Optional(
            Type.Record(Type.String(), Type.String(), {
              description: 'Labels a namespace must carry, all of them, to be selected.',
            }),
          ),
        },
        { description: 'Selects namespaces by label; without matchLabels it selects every namespace.' },
      ),
      { description: 'Namespace selectors; a namespace matching any one of them is granted access.' },
    ),
  },
  { description: 'Namespaces whose objects may refer to this one across namespaces.' },
);

export const HelmRepositorySpec = Type.Object(
  {
    url: Type.String({
      pattern: '^(http|https|oci)://.*$',
      description: 'The Helm repository URL: http or https for an index, oci for a registry.',
    }),
    secretRef: Type.Optional(
      LocalObjectReference(
        'Secret with credentials: username and password for basic auth (TLS keys here are deprecated).',
      ),
    ),
    certSecretRef: Type.Optional(
      LocalObjectReference(
        'Secret with a client certificate and key (tls.crt, tls.key) and/or a CA (ca.crt); ' +
          'takes precedence over TLS data in secretRef.',
      ),
    ),
    passCredentials: Type.Optional(
      Type.Boolean({ description: 'Also send the credentials to chart hosts other than the one in url.' }),
    ),
    interval: Type.Optional(Duration('How often the repository index is fetched.')),
    insecure: Type.Optional(Type.Boolean({ description: "Allow plain HTTP to the registry; only with type 'oci'." })),
    timeout: Type.Optional(
      Duration('Timeout for fetching the index, or for OCI operations of the HelmCharts using it; 60s when unset.', {
        pattern: TIMEOUT_PATTERN,
      }),
    ),
    suspend: Type.Optional(Type.Boolean({ description: 'Suspends reconciliation of this HelmRepository.' })),
    accessFrom: Type.Optional(AccessFrom),
    type: Type.Optional(
      Type.String({
        enum: ['default', 'oci'],
        description: "Kind of repository: 'default' (an index over HTTP) or 'oci' (url must then start with oci://).",
      }),
    ),
    provider: Type.Optional(
      Type.String({
        enum: ['generic', 'aws', 'azure', 'gcp'],
        default: 'generic',
        description: "Authentication provider; only with type 'oci'.",
      }),
    ),
  },
  { description: 'HelmRepositorySpec describes the Helm repository to produce an index artifact from.' },
);

export const HelmRepositoryStatus = Type.Object(
  {
    ...observedStatus,
    url: Type.Optional(
      Type.String({ description: 'Address at which the latest artifact can be fetched; prefer artifact.url.' }),
    ),
    artifact: Type.Optional(Artifact),
  },
  { description: 'HelmRepositoryStatus records the observed state of a Helm repository.' },
);

export type HelmRepositorySpec = Static<typeof HelmRepositorySpec>;
export type HelmRepositoryStatus = Static<typeof HelmRepositoryStatus>;

export const HelmRepositoryKind: KindDefinition<typeof HelmRepositorySpec, typeof HelmRepositoryStatus> = {
  group: 'source.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'HelmRepository',
  plural: 'helmrepositories',
  singular: 'helmrepository',
  shortNames: ['helmrepo'],
  categories: ['all', 'fluxcd', 'fluxcd-sources'],
  description: 'HelmRepository is the Schema for the helmrepositories API.',
  printerColumns: [{ name: 'URL', type: 'string', jsonPath: '.spec.url' }, ...readyColumns],
  spec: HelmRepositorySpec,
  status: HelmRepositoryStatus,
  statusDefault: { observedGeneration: -1 },
};
