// kustomize.toolkit.fluxcd.io/v1 Kustomization, field for field as Flux defines it.
import { Type, type Static } from '@sinclair/typebox';
import {
  DURATION_PATTERN,
  Duration,
  KubeConfigReference,
  LocalObjectReference,
  NamespacedObjectKindReference,
  ObjectSelector,
  observedStatus,
} from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';

const StringMap = (description: string) => Type.Record(Type.String(), Type.String(), { description });

const Patch = Type.Object(
  {
    patch: Type.String({ description: 'A strategic merge patch or a JSON 6902 patch, inline YAML.' }),
    target: Type.Optional(ObjectSelector),
  },
  { description: 'A patch and the objects it applies to.' },
);

const Image = Type.Object(
  {
    name: Type.String({ description: 'Image name without tag.' }),
    newName: Type.Optional(Type.String({ description: 'Replacement name.' })),
    newTag: Type.Optional(Type.String({ description: 'Replacement tag.' })),
    digest: Type.Optional(Type.String({ description: 'Replacement digest; takes precedence over newTag.' })),
  },
  { description: 'An image override.' },
);

const SourceRef = Type.Object(
  {
    apiVersion: Type.Optional(Type.String({ description: 'API version of the source.' })),
    kind: Type.String({
      enum: ['OCIRepository', 'GitRepository', 'Bucket', 'ExternalArtifact'],
      description: 'Kind of the source.',
    }),
    name: Type.String({ description: 'Name of the source.' }),
    namespace: Type.Optional(Type.String({ description: "Namespace of the source; defaults to the Kustomization's." })),
  },
  { description: 'The source whose artifact holds the manifests.' },
);

export const KustomizationSpec = Type.Object(
  {
    commonMetadata: Type.Optional(
      Type.Object(
        {
          annotations: Type.Optional(StringMap('Annotations added to every object.')),
          labels: Type.Optional(StringMap('Labels added to every object.')),
        },
        { description: 'Labels and annotations set on every applied object.' },
      ),
    ),
    dependsOn: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ description: 'Name of the Kustomization depended on.' }),
            namespace: Type.Optional(Type.String({ description: "Its namespace; defaults to this one's." })),
            readyExpr: Type.Optional(
              Type.String({ description: 'CEL expression replacing the built-in readiness check.' }),
            ),
          },
          { description: 'A Kustomization that must be ready first.' },
        ),
        { description: 'Kustomizations that must be ready before this one is applied.' },
      ),
    ),
    decryption: Type.Optional(
      Type.Object(
        {
          provider: Type.String({ enum: ['sops'], description: 'Decryption engine.' }),
          serviceAccountName: Type.Optional(Type.String({ description: 'ServiceAccount for KMS authentication.' })),
          secretRef: Type.Optional(LocalObjectReference('Secret with the decryption keys.')),
        },
        { description: 'Decryption of secrets before applying them.' },
      ),
    ),
    interval: Duration('How often the Kustomization is reconciled.'),
    retryInterval: Type.Optional(
      Type.String({
        pattern: DURATION_PATTERN,
        description: 'How soon a failed reconciliation is retried; defaults to interval.',
      }),
    ),
    kubeConfig: Type.Optional(KubeConfigReference),
    path: Type.Optional(
      Type.String({
        description: 'Directory of the kustomization.yaml (or plain manifests) in the artifact; defaults to its root.',
      }),
    ),
    postBuild: Type.Optional(
      Type.Object(
        {
          substitute: Type.Optional(StringMap('Variables substituted in the built manifests.')),
          substituteFrom: Type.Optional(
            Type.Array(
              Type.Object(
                {
                  kind: Type.String({
                    enum: ['Secret', 'ConfigMap'],
                    description: 'Kind of the object holding variables.',
                  }),
                  name: Type.String({ minLength: 1, maxLength: 253, description: 'Its name, in this namespace.' }),
                  optional: Type.Optional(Type.Boolean({ default: false, description: 'Tolerate its absence.' })),
                },
                { description: 'A ConfigMap or Secret whose data keys are variables.' },
              ),
              { description: 'Objects holding variables; later ones override earlier ones.' },
            ),
          ),
        },
        { description: 'What to do with the built manifests before applying them.' },
      ),
    ),
    prune: Type.Boolean({ description: 'Delete objects that are no longer in the source.' }),
    deletionPolicy: Type.Optional(
      Type.String({
        enum: ['MirrorPrune', 'Delete', 'WaitForTermination', 'Orphan'],
        description: 'What happens to the applied objects when the Kustomization is deleted.',
      }),
    ),
    healthChecks: Type.Optional(
      Type.Array(NamespacedObjectKindReference, { description: 'Objects whose health is assessed.' }),
    ),
    namePrefix: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Prefix for the names of all objects.' }),
    ),
    nameSuffix: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Suffix for the names of all objects.' }),
    ),
    patches: Type.Optional(Type.Array(Patch, { description: 'Strategic merge and JSON 6902 patches.' })),
    images: Type.Optional(Type.Array(Image, { description: 'Image name, tag and digest overrides.' })),
    serviceAccountName: Type.Optional(Type.String({ description: 'ServiceAccount impersonated when applying.' })),
    sourceRef: SourceRef,
    suspend: Type.Optional(Type.Boolean({ description: 'Suspends reconciliation of this Kustomization.' })),
    targetNamespace: Type.Optional(
      Type.String({ minLength: 1, maxLength: 63, description: 'Namespace set on all namespaced objects.' }),
    ),
    timeout: Type.Optional(
      Type.String({
        pattern: DURATION_PATTERN,
        description: 'Timeout for apply and health checks; defaults to interval.',
      }),
    ),
    force: Type.Optional(
      Type.Boolean({ default: false, description: 'Recreate objects when an immutable field changes.' }),
    ),
    wait: Type.Optional(
      Type.Boolean({ description: 'Wait for every applied object to be healthy; healthChecks are then ignored.' }),
    ),
    components: Type.Optional(Type.Array(Type.String(), { description: 'Relative paths of kustomize components.' })),
    ignoreMissingComponents: Type.Optional(
      Type.Boolean({ description: 'Drop components that are not in the source.' }),
    ),
    healthCheckExprs: Type.Optional(
      Type.Array(
        Type.Object(
          {
            apiVersion: Type.String({ description: 'API version of the kind.' }),
            kind: Type.String({ description: 'Kind the expressions apply to.' }),
            current: Type.String({ description: 'CEL expression true when the object is healthy.' }),
            inProgress: Type.Optional(Type.String({ description: 'CEL expression true while progressing.' })),
            failed: Type.Optional(Type.String({ description: 'CEL expression true when failed.' })),
          },
          { description: 'Health expressions for one kind.' },
        ),
        { description: 'CEL health checks for custom resources.' },
      ),
    ),
    driftIgnoreRules: Type.Optional(
      Type.Array(
        Type.Object(
          {
            paths: Type.Array(Type.String(), { description: 'JSON pointers to ignore.' }),
            target: Type.Optional(ObjectSelector),
          },
          { description: 'Fields ignored during drift detection.' },
        ),
        { description: 'Rules excluding fields from drift detection and apply.' },
      ),
    ),
  },
  { description: 'KustomizationSpec describes how to build and apply manifests from a source.' },
);

export const ResourceRef = Type.Object(
  {
    id: Type.String({ description: "Object identity, '<namespace>_<name>_<group>_<kind>'." }),
    v: Type.String({ description: 'API version of the object.' }),
  },
  { description: 'An applied object.' },
);

/** meta.Snapshot: one entry of status.history. */
export const Snapshot = Type.Object(
  {
    digest: Type.String({ description: "Checksum of the applied manifests, '<algo>:<hex>'." }),
    firstReconciled: Type.String({
      format: 'date-time',
      description: 'When these manifests were first reconciled with this result.',
    }),
    lastReconciled: Type.String({
      format: 'date-time',
      description: 'When they were last reconciled with this result.',
    }),
    lastReconciledDuration: Type.String({
      pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$',
      description: 'How long that reconciliation took.',
    }),
    lastReconciledStatus: Type.String({ description: 'Reason of the result of that reconciliation.' }),
    totalReconciliations: Type.Integer({
      format: 'int64',
      description: 'How many reconciliations had these manifests and this result.',
    }),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'The source revision and the like.' }),
    ),
  },
  { description: 'A reconciliation of one set of manifests.' },
);

export const KustomizationStatus = Type.Object(
  {
    ...observedStatus,
    lastAppliedRevision: Type.Optional(
      Type.String({ description: 'Revision of the last successfully applied artifact.' }),
    ),
    lastAppliedOriginRevision: Type.Optional(
      Type.String({ description: 'Origin revision of the last successfully applied artifact.' }),
    ),
    lastAttemptedRevision: Type.Optional(Type.String({ description: 'Revision of the last attempt.' })),
    inventory: Type.Optional(
      Type.Object(
        { entries: Type.Array(ResourceRef, { description: 'Applied objects.' }) },
        { description: 'The objects this Kustomization applied.' },
      ),
    ),
    history: Type.Optional(
      Type.Array(Snapshot, {
        description: 'The last reconciliations, newest first, one entry per manifests digest and result.',
      }),
    ),
  },
  { description: 'KustomizationStatus records the observed state of a Kustomization.' },
);

export type KustomizationSpec = Static<typeof KustomizationSpec>;
export type KustomizationStatus = Static<typeof KustomizationStatus>;

export const KustomizationKind: KindDefinition<typeof KustomizationSpec, typeof KustomizationStatus> = {
  group: 'kustomize.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'Kustomization',
  plural: 'kustomizations',
  singular: 'kustomization',
  shortNames: ['ks'],
  description: 'Kustomization is the Schema for the kustomizations API.',
  printerColumns: readyColumns,
  spec: KustomizationSpec,
  status: KustomizationStatus,
  statusDefault: { observedGeneration: -1 },
};
