// image.toolkit.fluxcd.io/v1 ImageRepository, field for field as Flux 2.9's image-reflector-controller (v1.2)
// defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Duration, LocalObjectReference, TIMEOUT_PATTERN, observedStatus } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';

/** acl.AccessFrom (fluxcd/pkg/apis/acl): which namespaces may refer to this object. */
export const AccessFrom = Type.Object(
  {
    namespaceSelectors: Type.Array(
      Type.Object(
        {
          matchLabels: Type.Optional(
            Type.Record(Type.String(), Type.String(), {
              description: 'Labels a namespace must all carry to be selected; empty selects every namespace.',
            }),
          ),
        },
        { description: 'Selects namespaces by their labels.' },
      ),
      { description: 'Namespace selectors; a referrer in a namespace matching any one of them is allowed.' },
    ),
  },
  { description: 'Which namespaces, besides its own, may refer to this ImageRepository (by their labels).' },
);

export const ImageRepositorySpec = Type.Object(
  {
    image: Type.String({ description: 'The image repository to scan, e.g. ghcr.io/fluxcd/flux or alpine.' }),
    interval: Duration('How long to wait between two scans of the repository.'),
    timeout: Type.Optional(
      Duration('Time limit of one scan; when unset, the interval is used.', { pattern: TIMEOUT_PATTERN }),
    ),
    secretRef: Type.Optional(
      LocalObjectReference('Secret of type kubernetes.io/dockerconfigjson with the registry credentials.'),
    ),
    proxySecretRef: Type.Optional(LocalObjectReference('Secret with the proxy settings for the registry.')),
    serviceAccountName: Type.Optional(
      Type.String({
        maxLength: 253,
        description: 'ServiceAccount whose image pull secrets are used to authenticate to the registry.',
      }),
    ),
    certSecretRef: Type.Optional(
      LocalObjectReference(
        'Secret (type Opaque or kubernetes.io/tls) with a client certificate and key (tls.crt, tls.key) ' +
          'and/or a CA certificate (ca.crt) for the TLS connection to the registry.',
      ),
    ),
    suspend: Type.Optional(Type.Boolean({ description: 'Stops further scans; a scan under way completes.' })),
    accessFrom: Type.Optional(AccessFrom),
    exclusionList: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: 25,
        default: ['^.*\\.sig$'],
        description: 'Regular expressions; tags matching any of them are left out of the scan result.',
      }),
    ),
    provider: Type.Optional(
      Type.String({
        enum: ['generic', 'aws', 'azure', 'gcp'],
        default: 'generic',
        description: "Authentication provider: a cloud's workload identity (aws, azure, gcp) or 'generic'.",
      }),
    ),
    insecure: Type.Optional(Type.Boolean({ description: 'Allow plain HTTP (no TLS) to the registry.' })),
  },
  { description: 'ImageRepositorySpec says which image repository to scan for tags, and how.' },
);

export const ScanResult = Type.Object(
  {
    revision: Type.Optional(Type.String({ description: 'A hash of the scanned tags that is stable across scans.' })),
    tagCount: Type.Integer({ description: 'How many tags the scan found.' }),
    scanTime: Type.Optional(Type.String({ format: 'date-time', description: 'When the scan ran.' })),
    latestTags: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Sample of the tags: the first 10 when all are sorted in reverse alphabetical order.',
      }),
    ),
  },
  { description: 'What the last scan of the repository found.' },
);

export const ImageRepositoryStatus = Type.Object(
  {
    conditions: observedStatus.conditions,
    observedGeneration: observedStatus.observedGeneration,
    canonicalImageName: Type.Optional(
      Type.String({
        description: 'The image name with its implied parts spelt out, e.g. docker.io/library/alpine for alpine.',
      }),
    ),
    lastScanResult: Type.Optional(ScanResult),
    observedExclusionList: Type.Optional(
      Type.Array(Type.String(), { description: 'The exclusion list the last scan result was produced with.' }),
    ),
    lastHandledReconcileAt: observedStatus.lastHandledReconcileAt,
  },
  { description: 'ImageRepositoryStatus records the observed state of an ImageRepository.' },
);

export type AccessFrom = Static<typeof AccessFrom>;
export type ImageRepositorySpec = Static<typeof ImageRepositorySpec>;
export type ImageRepositoryStatus = Static<typeof ImageRepositoryStatus>;

const [ageColumn, readyColumn, statusColumn] = readyColumns;

export const ImageRepositoryKind: KindDefinition<typeof ImageRepositorySpec, typeof ImageRepositoryStatus> = {
  group: 'image.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'ImageRepository',
  plural: 'imagerepositories',
  singular: 'imagerepository',
  shortNames: ['imgrepo', 'imagerepo'],
  categories: ['all', 'fluxcd', 'fluxcd-images'],
  description: 'ImageRepository is the Schema for the imagerepositories API.',
  printerColumns: [
    { name: 'Image', type: 'string', jsonPath: '.spec.image' },
    // Flux types the tag count column as a string.
    { name: 'Tags', type: 'string', jsonPath: '.status.lastScanResult.tagCount' },
    readyColumn!,
    statusColumn!,
    { name: 'Last scan', type: 'string', jsonPath: '.status.lastScanResult.scanTime', priority: 1 },
    ageColumn!,
  ],
  spec: ImageRepositorySpec,
  status: ImageRepositoryStatus,
  statusDefault: { observedGeneration: -1 },
};
