// Schema pieces shared by the Flux kinds (fluxcd/pkg/apis/meta and metav1).
import { Type, type Static } from '@sinclair/typebox';

/** A Go duration as Flux's schemas accept it (runtime/duration.ts parses it). */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

/** A Go duration without hours, as Flux's schemas accept it for operation timeouts. */
export const TIMEOUT_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m))+$';

export const Duration = (description: string, options: { default?: string; pattern?: string } = {}) =>
  Type.String({ pattern: DURATION_PATTERN, description, ...options });

export const LocalObjectReference = (description: string) =>
  Type.Object({ name: Type.String({ description: 'Name of the referent.' }) }, { description });

export const Condition = Type.Object(
  {
    type: Type.String({
      description: 'Type of condition in CamelCase.',
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?' +
        '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: Type.Unsafe<'True' | 'False' | 'Unknown'>({
      type: 'string',
      description: 'Status of the condition, one of True, False, Unknown.',
      enum: ['True', 'False', 'Unknown'],
    }),
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', minimum: 0, description: 'The .metadata.generation the condition was set for.' }),
    ),
    lastTransitionTime: Type.String({ format: 'date-time', description: 'Last time the condition changed.' }),
    reason: Type.String({
      description: 'Programmatic identifier of the reason for the last transition, in CamelCase.',
      maxLength: 1024,
      minLength: 1,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: Type.String({ description: 'Human readable message about the transition.', maxLength: 32768 }),
  },
  { description: 'Condition contains details for one aspect of the current state of this API Resource.' },
);

export const Conditions = Type.Array(Condition, { description: 'Conditions holds the conditions of the object.' });

export const Artifact = Type.Object(
  {
    digest: Type.Optional(
      Type.String({
        description: 'Digest of the file, in the form <algorithm>:<checksum>.',
        pattern: '^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$',
      }),
    ),
    lastUpdateTime: Type.String({ format: 'date-time', description: 'When the artifact was last updated.' }),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'Metadata of the artifact source.' }),
    ),
    path: Type.String({ description: 'Path of the artifact relative to the storage root.' }),
    revision: Type.String({ description: 'Human-readable identifier of the source revision, e.g. main@sha1:<hex>.' }),
    size: Type.Optional(Type.Integer({ format: 'int64', description: 'Size of the artifact file in bytes.' })),
    url: Type.String({ description: 'HTTP address at which the artifact can be downloaded.' }),
  },
  { description: 'Artifact is the output of a source reconciliation.' },
);
export type Artifact = Static<typeof Artifact>;

/** Fields every Flux status carries. */
export const observedStatus = {
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The last generation reconciled.' })),
  conditions: Type.Optional(Conditions),
  lastHandledReconcileAt: Type.Optional(
    Type.String({ description: 'The value of the reconcile.fluxcd.io/requestedAt annotation last handled.' }),
  ),
};

/** meta.NamespacedObjectKindReference */
export const NamespacedObjectKindReference = Type.Object(
  {
    apiVersion: Type.Optional(
      Type.String({ description: 'API version of the referent; defaults to the preferred version of the kind.' }),
    ),
    kind: Type.String({ description: 'Kind of the referent.' }),
    name: Type.String({ description: 'Name of the referent.' }),
    namespace: Type.Optional(Type.String({ description: "Namespace of the referent; defaults to the referrer's." })),
  },
  { description: 'A reference to an object of a given kind, optionally in another namespace.' },
);

/** meta.KubeConfigReference */
export const KubeConfigReference = Type.Object(
  {
    secretRef: Type.Optional(
      Type.Object(
        {
          name: Type.String({ description: 'Name of the Secret.' }),
          key: Type.Optional(
            Type.String({ description: "Key holding the kubeconfig; defaults to 'value' or 'value.yaml'." }),
          ),
        },
        { description: 'Secret holding a kubeconfig.' },
      ),
    ),
    configMapRef: Type.Optional(
      LocalObjectReference('ConfigMap holding the remote cluster address and provider settings.'),
    ),
  },
  { description: 'A kubeconfig for acting on a remote cluster.' },
);

/** Kustomize's object selector (patch targets, drift ignore rules). */
export const ObjectSelector = Type.Object(
  {
    group: Type.Optional(Type.String({ description: 'API group of the selected objects.' })),
    version: Type.Optional(Type.String({ description: 'API version of the selected objects.' })),
    kind: Type.Optional(Type.String({ description: 'Kind of the selected objects.' })),
    namespace: Type.Optional(Type.String({ description: 'Namespace of the selected objects.' })),
    name: Type.Optional(Type.String({ description: 'Name of the selected objects.' })),
    annotationSelector: Type.Optional(
      Type.String({ description: 'Label-selector expression matched against annotations.' }),
    ),
    labelSelector: Type.Optional(Type.String({ description: 'Label-selector expression matched against labels.' })),
  },
  { description: 'Selects objects; an object must match every field that is set.' },
);
export type ObjectSelector = Static<typeof ObjectSelector>;
