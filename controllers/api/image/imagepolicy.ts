// image.toolkit.fluxcd.io/v1 ImagePolicy, field for field as Flux 2.9's image-reflector-controller (v1.2)
// defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Duration, observedStatus } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';

const Order = (description: string) =>
  Type.Optional(Type.String({ enum: ['asc', 'desc'], default: 'asc', description }));

export const ImagePolicyChoice = Type.Object(
  {
    semver: Type.Optional(
      Type.Object(
        {
          range: Type.String({
            description: 'SemVer constraint (e.g. 5.1.x, >=1.0.0); the highest tag within it is selected.',
          }),
        },
        { description: 'Select the highest semantic version among the tags.' },
      ),
    ),
    alphabetical: Type.Optional(
      Type.Object(
        {
          order: Order("Sort order; the last tag is selected: 'asc' picks Z among the letters A..Z, 'desc' picks A."),
        },
        { description: 'Select the last tag in alphabetical order.' },
      ),
    ),
    numerical: Type.Optional(
      Type.Object(
        {
          order: Order("Sort order; the last tag is selected: 'asc' picks 9 among the tags 0..9, 'desc' picks 0."),
        },
        { description: 'Select the last tag in numerical order.' },
      ),
    ),
  },
  { description: 'How to pick the latest image among the tags: one of semver, alphabetical or numerical.' },
);

export const TagFilter = Type.Object(
  {
    pattern: Type.Optional(
      Type.String({ description: 'Regular expression a tag must match to be considered by the policy.' }),
    ),
    extract: Type.Optional(
      Type.String({
        description:
          'Template of capture groups of the pattern ($name, ${1}); its expansion, not the tag, is what the ' +
          'policy compares.',
      }),
    ),
  },
  { description: 'Which tags the policy considers; without it every tag of the repository is.' },
);

/** ImageRef; ImageUpdateAutomation's observedPolicies use the same shape. */
export const ImageRef = (description: string) =>
  Type.Object(
    {
      name: Type.String({ description: 'The image name, without tag or digest.' }),
      tag: Type.String({ description: 'The image tag.' }),
      digest: Type.Optional(Type.String({ description: 'The image digest, as <algorithm>:<hex>.' })),
    },
    { description },
  );

export const ImagePolicySpec = Type.Object(
  {
    imageRepositoryRef: Type.Object(
      {
        name: Type.String({ description: 'Name of the referent.' }),
        namespace: Type.Optional(
          Type.String({ description: "Namespace of the referent; defaults to the ImagePolicy's own." }),
        ),
      },
      { description: 'The ImageRepository whose scanned tags the policy is applied to.' },
    ),
    policy: ImagePolicyChoice,
    filterTags: Type.Optional(TagFilter),
    digestReflectionPolicy: Type.Optional(
      Type.String({
        enum: ['Always', 'IfNotPresent', 'Never'],
        default: 'Never',
        description:
          "When .status.latestRef.digest is set: 'Never' leaves it empty; 'IfNotPresent' fills it when empty " +
          "and the selected image is unchanged; 'Always' refreshes it from the registry every time.",
      }),
    ),
    interval: Type.Optional(
      Duration("How often the digest of the selected tag is refreshed; only with 'Always'. Defaults to 10m."),
    ),
    suspend: Type.Optional(Type.Boolean({ description: 'Stops further policy evaluations; one under way completes.' })),
  },
  {
    description: 'ImagePolicySpec says which ImageRepository to read and how to select its latest image.',
    'x-kubernetes-validations': [
      {
        rule: "!has(self.interval) || (has(self.digestReflectionPolicy) && self.digestReflectionPolicy == 'Always')",
        message: "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'",
      },
      {
        rule: "has(self.interval) || !has(self.digestReflectionPolicy) || self.digestReflectionPolicy != 'Always'",
        message: "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
      },
    ],
  },
);

export const ImagePolicyStatus = Type.Object(
  {
    latestRef: Type.Optional(ImageRef('The image selected by the policy among the filtered, ordered tags.')),
    observedPreviousRef: Type.Optional(
      ImageRef('The latestRef before the last change of it, to tell an update from a recovery.'),
    ),
    observedGeneration: observedStatus.observedGeneration,
    conditions: observedStatus.conditions,
    lastHandledReconcileAt: observedStatus.lastHandledReconcileAt,
  },
  { description: 'ImagePolicyStatus records the observed state of an ImagePolicy.' },
);

export type ImagePolicySpec = Static<typeof ImagePolicySpec>;
export type ImagePolicyStatus = Static<typeof ImagePolicyStatus>;

const [ageColumn, readyColumn, statusColumn] = readyColumns;

export const ImagePolicyKind: KindDefinition<typeof ImagePolicySpec, typeof ImagePolicyStatus> = {
  group: 'image.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'ImagePolicy',
  plural: 'imagepolicies',
  singular: 'imagepolicy',
  shortNames: ['imgpol', 'imagepol'],
  categories: ['all', 'fluxcd', 'fluxcd-images'],
  description: 'ImagePolicy is the Schema for the imagepolicies API.',
  printerColumns: [
    { name: 'Image', type: 'string', jsonPath: '.status.latestRef.name' },
    { name: 'Tag', type: 'string', jsonPath: '.status.latestRef.tag' },
    readyColumn!,
    statusColumn!,
    ageColumn!,
  ],
  spec: ImagePolicySpec,
  status: ImagePolicyStatus,
  statusDefault: { observedGeneration: -1 },
};
