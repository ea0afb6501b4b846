// image.toolkit.fluxcd.io/v1 ImageUpdateAutomation, field for field as Flux 2.9's image-automation-controller
// (v1.2) defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Duration, LocalObjectReference, observedStatus } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';
import { ImageRef } from './imagepolicy.ts';

const StringMap = (description: string) => Type.Record(Type.String(), Type.String(), { description });

/** sourcev1.GitRepositoryRef, as spec.git.checkout.ref takes it. */
const GitRepositoryRef = Type.Object(
  {
    branch: Type.Optional(Type.String({ description: "Branch to check out; 'master' when no other field is set." })),
    tag: Type.Optional(Type.String({ description: 'Tag to check out; wins over branch.' })),
    semver: Type.Optional(Type.String({ description: 'SemVer range of tags to check out; wins over tag.' })),
    name: Type.Optional(
      Type.String({
        description: 'Full Git reference (e.g. refs/heads/main, refs/pull/1/head); wins over branch, tag and semver.',
      }),
    ),
    commit: Type.Optional(
      Type.String({
        description: 'Commit SHA to check out; wins over every other field, and with branch it is looked up there.',
      }),
    ),
  },
  { description: 'The branch, tag or commit to clone.' },
);

/** metav1.LabelSelector */
export const LabelSelector = Type.Object(
  {
    matchExpressions: Type.Optional(
      Type.Array(
        Type.Object(
          {
            key: Type.String({ description: 'The label key the requirement applies to.' }),
            operator: Type.String({ description: 'How key and values relate: In, NotIn, Exists or DoesNotExist.' }),
            values: Type.Optional(
              Type.Array(Type.String(), {
                'x-kubernetes-list-type': 'atomic',
                description: 'Values for In and NotIn (not empty); must be empty for Exists and DoesNotExist.',
              }),
            ),
          },
          { description: 'A label requirement: a key, an operator and values.' },
        ),
        { 'x-kubernetes-list-type': 'atomic', description: 'Label requirements, all of which must hold.' },
      ),
    ),
    matchLabels: Type.Optional(
      StringMap('Labels that must all be present with these values (each an In requirement with one value).'),
    ),
  },
  {
    description:
      'Which ImagePolicies of the namespace the automation applies, by label; when unset (or empty), all of them.',
  },
);

const SigningKey = Type.Object(
  {
    secretRef: LocalObjectReference(
      "Secret in the automation's namespace with the key: 'git.asc' (and optionally 'passphrase') for gpg, " +
        "'identity' (and optionally 'password') for ssh.",
    ),
    type: Type.Optional(
      Type.String({
        enum: ['gpg', 'ssh'],
        description: "Format of the signing key: 'gpg' (OpenPGP) or 'ssh'; the controller takes 'gpg' when unset.",
      }),
    ),
  },
  { description: 'Key to sign the commits with.' },
);

const GitSpec = Type.Object(
  {
    checkout: Type.Optional(
      Type.Object(
        { ref: GitRepositoryRef },
        { description: "What to clone before making changes; defaults to the GitRepository's spec.ref." },
      ),
    ),
    commit: Type.Object(
      {
        author: Type.Object(
          {
            name: Type.Optional(Type.String({ description: 'Author name of the commits.' })),
            email: Type.String({ description: 'Author email of the commits.' }),
          },
          { description: 'Author of the commits the automation makes.' },
        ),
        signingKey: Type.Optional(SigningKey),
        messageTemplate: Type.Optional(
          Type.String({
            description: 'Go text/template of the commit message, given the changes made (the Updated field is gone).',
          }),
        ),
        messageTemplateValues: Type.Optional(StringMap('Extra values, available to the template as .Values.')),
      },
      { description: 'How the changes are committed.' },
    ),
    push: Type.Optional(
      Type.Object(
        {
          branch: Type.Optional(
            Type.String({
              description: 'Branch to push to; created from the checkout branch when it does not exist.',
            }),
          ),
          refspec: Type.Optional(
            Type.String({
              pattern: '^$|^[^+:]',
              description:
                'Refspec to push with, besides the branch if both are set; no deletions (:dst) or forced (+) ones.',
            }),
          ),
          options: Type.Optional(StringMap('Push options (git push -o) sent to the Git server.')),
        },
        { description: 'Where the commits are pushed; by default back to the checkout branch.' },
      ),
    ),
  },
  { description: 'Git settings: what to check out, how to commit, where to push.' },
);

export const ImageUpdateAutomationSpec = Type.Object(
  {
    sourceRef: Type.Object(
      {
        apiVersion: Type.Optional(Type.String({ description: 'API version of the referent.' })),
        kind: Type.String({ enum: ['GitRepository'], default: 'GitRepository', description: 'Kind of the referent.' }),
        name: Type.String({ description: 'Name of the referent.' }),
        namespace: Type.Optional(
          Type.String({ description: "Namespace of the referent; defaults to the automation's own." }),
        ),
      },
      { description: 'The GitRepository to update.' },
    ),
    git: Type.Optional(GitSpec),
    interval: Duration('Least time between two runs of the automation.'),
    policySelector: Type.Optional(LabelSelector),
    update: Type.Optional(
      Type.Object(
        {
          strategy: Type.Optional(
            Type.String({ enum: ['Setters'], default: 'Setters', description: 'The update strategy.' }),
          ),
          path: Type.Optional(
            Type.String({ description: 'Directory of the manifests to update; the repository root when unset.' }),
          ),
        },
        { default: { strategy: 'Setters' }, description: 'How the files in the repository are updated.' },
      ),
    ),
    suspend: Type.Optional(Type.Boolean({ description: 'Stops the automation from running until unset.' })),
  },
  { description: 'ImageUpdateAutomationSpec says which Git repository to update with which ImagePolicies.' },
);

export const ImageUpdateAutomationStatus = Type.Object(
  {
    lastAutomationRunTime: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'When a run last completed, whether or not it changed anything.',
      }),
    ),
    lastPushCommit: Type.Optional(Type.String({ description: 'SHA1 of the last commit the automation pushed.' })),
    lastPushTime: Type.Optional(Type.String({ format: 'date-time', description: 'When a change was last pushed.' })),
    observedGeneration: observedStatus.observedGeneration,
    conditions: observedStatus.conditions,
    observedPolicies: Type.Optional(
      Type.Record(Type.String(), ImageRef('The latest image of the policy.'), {
        description: 'The ImagePolicies the last run considered, by name, with their latest image.',
      }),
    ),
    observedSourceRevision: Type.Optional(
      Type.String({ description: 'The source revision last seen, to tell whether the source changed since.' }),
    ),
    lastHandledReconcileAt: observedStatus.lastHandledReconcileAt,
  },
  { description: 'ImageUpdateAutomationStatus records the observed state of an ImageUpdateAutomation.' },
);

export type ImageUpdateAutomationSpec = Static<typeof ImageUpdateAutomationSpec>;
export type ImageUpdateAutomationStatus = Static<typeof ImageUpdateAutomationStatus>;

const [ageColumn, readyColumn, statusColumn] = readyColumns;

export const ImageUpdateAutomationKind: KindDefinition<
  typeof ImageUpdateAutomationSpec,
  typeof ImageUpdateAutomationStatus
> = {
  group: 'image.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'ImageUpdateAutomation',
  plural: 'imageupdateautomations',
  singular: 'imageupdateautomation',
  shortNames: ['iua', 'imgupd', 'imgauto'],
  categories: ['all', 'fluxcd', 'fluxcd-images'],
  annotations: { 'kustomize.toolkit.fluxcd.io/substitute': 'disabled' },
  description: 'ImageUpdateAutomation is the Schema for the imageupdateautomations API.',
  printerColumns: [
    readyColumn!,
    statusColumn!,
    { name: 'Last run', type: 'string', jsonPath: '.status.lastAutomationRunTime', priority: 1 },
    ageColumn!,
  ],
  spec: ImageUpdateAutomationSpec,
  status: ImageUpdateAutomationStatus,
  statusDefault: { observedGeneration: -1 },
};
