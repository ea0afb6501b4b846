// helm.toolkit.fluxcd.io/v2 HelmRelease, field for field as Flux's helm-controller v1.6 (Flux 2.9) defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Conditions, Duration, KubeConfigReference, LocalObjectReference, ObjectSelector } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';

const StringMap = (description: string) => Type.Record(Type.String(), Type.String(), { description });

/** A name as Kubernetes objects carry it (Flux: MinLength=1, MaxLength=253). */
const ObjectName = (description: string) => Type.String({ minLength: 1, maxLength: 253, description });

/** A namespace name (Flux: MinLength=1, MaxLength=63). */
const NamespaceName = (description: string) => Type.String({ minLength: 1, maxLength: 63, description });

/** Every action timeout in this kind accepts hours: Flux uses the interval pattern, not the timeout one. */
const Timeout = (description: string) => Type.Optional(Duration(description));

/** A Flux CEL rule, as the CRD carries it under x-kubernetes-validations. */
interface CelRule {
  rule: string;
  message: string;
}

const strategyRule: CelRule = {
  rule: "!has(self.retryInterval) || self.name != 'RemediateOnFailure'",
  message: ".retryInterval cannot be set when .name is 'RemediateOnFailure'",
};

const Metadata = (description: string) =>
  Type.Object(
    {
      annotations: Type.Optional(StringMap('Annotations to set.')),
      labels: Type.Optional(StringMap('Labels to set.')),
    },
    { description },
  );

// --- spec.chart: the HelmChart template -----------------------------------------------------

const HelmChartTemplateSpec = Type.Object(
  {
    chart: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'Chart name in a HelmRepository, or path of the chart directory in a GitRepository or Bucket.',
    }),
    version: Type.Optional(
      Type.String({
        default: '*',
        description: 'SemVer range of acceptable chart versions; not used for GitRepository and Bucket sources.',
      }),
    ),
    sourceRef: Type.Object(
      {
        apiVersion: Type.Optional(Type.String({ description: 'API version of the source.' })),
        kind: Type.String({ enum: ['HelmRepository', 'GitRepository', 'Bucket'], description: 'Kind of the source.' }),
        name: ObjectName('Name of the source.'),
        namespace: Type.Optional(
          NamespaceName("Namespace of the source, where the HelmChart is created; defaults to the HelmRelease's."),
        ),
      },
      { description: 'The source that provides the chart.' },
    ),
    interval: Type.Optional(
      Duration("How often the HelmChart checks its source for a new chart; defaults to the HelmRelease's interval."),
    ),
    reconcileStrategy: Type.Optional(
      Type.String({
        enum: ['ChartVersion', 'Revision'],
        default: 'ChartVersion',
        description:
          "What produces a new chart artifact: a new chart version, or any new source revision ('Revision').",
      }),
    ),
    valuesFiles: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Values files in the source merged in order, later ones winning, instead of the chart values.yaml.',
      }),
    ),
    ignoreMissingValuesFiles: Type.Optional(
      Type.Boolean({ description: 'Skip listed values files that are absent instead of failing.' }),
    ),
    verify: Type.Optional(
      Type.Object(
        {
          provider: Type.String({
            enum: ['cosign', 'notation'],
            default: 'cosign',
            description: 'Signing technology the chart is verified with.',
          }),
          secretRef: Type.Optional(LocalObjectReference('Secret with the trusted public keys.')),
        },
        {
          description:
            'Signature verification of an OCI chart; only for OCI sources, and dependencies outside the chart ' +
            'archive are not checked.',
        },
      ),
    ),
  },
  { description: 'The HelmChart spec the controller creates for this release.' },
);

const HelmChartTemplate = Type.Object(
  {
    metadata: Type.Optional(Metadata('Labels and annotations of the created HelmChart.')),
    spec: HelmChartTemplateSpec,
  },
  { description: 'Template of the HelmChart the controller creates and owns for this release.' },
);

// --- spec.postRenderers ---------------------------------------------------------------------

const KustomizePatch = Type.Object(
  {
    patch: Type.String({ description: 'Inline strategic merge patch, or JSON 6902 patch as a list of operations.' }),
    target: Type.Optional(ObjectSelector),
  },
  { description: 'A patch and the rendered objects it applies to.' },
);

const KustomizeImage = Type.Object(
  {
    name: Type.String({ description: 'Image name without tag.' }),
    newName: Type.Optional(Type.String({ description: 'Replacement name.' })),
    newTag: Type.Optional(Type.String({ description: 'Replacement tag.' })),
    digest: Type.Optional(Type.String({ description: 'Replacement digest; newTag is ignored when set.' })),
  },
  { description: 'An image override.' },
);

const PostRenderer = Type.Object(
  {
    kustomize: Type.Optional(
      Type.Object(
        {
          patches: Type.Optional(
            Type.Array(KustomizePatch, { description: 'Patches selected by kind, name, labels or annotations.' }),
          ),
          images: Type.Optional(Type.Array(KustomizeImage, { description: 'Image name, tag and digest overrides.' })),
        },
        { description: 'Kustomize transformations of the rendered manifests.' },
      ),
    ),
  },
  { description: 'One post-rendering step.' },
);

// --- spec.install / upgrade / test / rollback / uninstall ------------------------------------

const CrdsPolicy = (description: string) =>
  Type.Optional(Type.String({ enum: ['Skip', 'Create', 'CreateReplace'], description }));

const ActionStrategy = (action: 'install' | 'upgrade', description: string) =>
  Type.Object(
    {
      name: Type.String({
        enum: ['RemediateOnFailure', 'RetryOnFailure'],
        description: `Name of the ${action} strategy.`,
      }),
      retryInterval: Type.Optional(
        Duration(`How long to wait before retrying a failed ${action}; only with RetryOnFailure. Defaults to 5m.`),
      ),
    },
    { description, 'x-kubernetes-validations': [strategyRule] },
  );

const ServerSideApplyMode = (action: string) =>
  Type.Optional(
    Type.String({
      enum: ['enabled', 'disabled', 'auto'],
      description: `Server-side apply during the ${action}; 'auto' (the default) follows the release's previous use.`,
    }),
  );

const commonActionFlags = (action: string) => ({
  disableWait: Type.Optional(
    Type.Boolean({ description: `Do not wait for resources to be ready after the ${action}.` }),
  ),
  disableWaitForJobs: Type.Optional(
    Type.Boolean({ description: `Do not wait for Jobs to complete after the ${action}.` }),
  ),
  disableHooks: Type.Optional(Type.Boolean({ description: `Do not run chart hooks during the ${action}.` })),
});

const renderFlags = (action: string) => ({
  disableTakeOwnership: Type.Optional(
    Type.Boolean({ description: `Do not adopt existing resources during the ${action}. Defaults to false.` }),
  ),
  disableOpenAPIValidation: Type.Optional(
    Type.Boolean({ description: `Skip checking rendered manifests against the cluster OpenAPI schema on ${action}.` }),
  ),
  disableSchemaValidation: Type.Optional(
    Type.Boolean({ description: `Skip checking values against the chart JSON schema on ${action}.` }),
  ),
});

const Install = Type.Object(
  {
    timeout: Timeout('Timeout of each Kubernetes operation of the install (hook Jobs...); defaults to spec.timeout.'),
    remediation: Type.Optional(
      Type.Object(
        {
          retries: Type.Optional(
            Type.Integer({
              description:
                'Failed installs retried, with an uninstall between attempts; 0 by default, negative for no limit.',
            }),
          ),
          ignoreTestFailures: Type.Optional(
            Type.Boolean({
              description: 'Do not remediate failed tests after an install; defaults to test.ignoreFailures.',
            }),
          ),
          remediateLastFailure: Type.Optional(
            Type.Boolean({
              description: 'Uninstall after the last failure too, once retries are used up. Defaults to false.',
            }),
          ),
        },
        { description: 'What to do when an install fails; by default nothing.' },
      ),
    ),
    strategy: Type.Optional(
      ActionStrategy(
        'install',
        'How failed installs are handled; RemediateOnFailure unless the DefaultToRetryOnFailure feature gate is on.',
      ),
    ),
    ...renderFlags('install'),
    ...commonActionFlags('install'),
    replace: Type.Optional(
      Type.Boolean({ description: 'Reuse the release name when it belongs to a deleted release kept in history.' }),
    ),
    skipCRDs: Type.Optional(
      Type.Boolean({ description: "Do not install the chart's CRDs. Deprecated: use crds: Skip." }),
    ),
    crds: CrdsPolicy(
      "What to do with the chart's crds/ directory on install: Skip, Create (the default: create missing CRDs, " +
        'leave existing ones) or CreateReplace (also replace existing ones); CRDs are never deleted.',
    ),
    createNamespace: Type.Optional(
      Type.Boolean({ description: 'Create the target namespace when missing; it is not removed on uninstall.' }),
    ),
    serverSideApply: Type.Optional(
      Type.Boolean({
        description: 'Apply resources server-side on install; defaults to true (false with UseHelm3Defaults).',
      }),
    ),
  },
  { description: 'Settings of the Helm install action.' },
);

const Upgrade = Type.Object(
  {
    timeout: Timeout('Timeout of each Kubernetes operation of the upgrade (hook Jobs...); defaults to spec.timeout.'),
    remediation: Type.Optional(
      Type.Object(
        {
          retries: Type.Optional(
            Type.Integer({
              description:
                'Failed upgrades retried, remediating between attempts; 0 by default, negative for no limit.',
            }),
          ),
          ignoreTestFailures: Type.Optional(
            Type.Boolean({
              description: 'Do not remediate failed tests after an upgrade; defaults to test.ignoreFailures.',
            }),
          ),
          remediateLastFailure: Type.Optional(
            Type.Boolean({
              description: 'Remediate the last failure too, once retries are used up; defaults to retries > 0.',
            }),
          ),
          strategy: Type.Optional(
            Type.String({ enum: ['rollback', 'uninstall'], description: 'How to remediate; defaults to rollback.' }),
          ),
        },
        { description: 'What to do when an upgrade fails; by default nothing.' },
      ),
    ),
    strategy: Type.Optional(
      ActionStrategy(
        'upgrade',
        'How failed upgrades are handled; RemediateOnFailure unless the DefaultToRetryOnFailure feature gate is on.',
      ),
    ),
    ...renderFlags('upgrade'),
    ...commonActionFlags('upgrade'),
    force: Type.Optional(
      Type.Boolean({
        description: 'Replace resources to avoid 3-way merge conflicts; ignored with server-side apply.',
      }),
    ),
    preserveValues: Type.Optional(
      Type.Boolean({ description: "Merge the values over the previous release's values; not declarative." }),
    ),
    cleanupOnFail: Type.Optional(Type.Boolean({ description: 'Delete resources created by a failed upgrade.' })),
    crds: CrdsPolicy(
      "What to do with the chart's crds/ directory on upgrade: Skip (the default), Create (create missing CRDs) " +
        'or CreateReplace (also replace existing ones); CRDs are never deleted.',
    ),
    chartNameChangeStrategy: Type.Optional(
      Type.String({
        enum: ['InPlaceUpdate', 'Reinstall'],
        description:
          "What happens when the chart name changes: 'Reinstall' (the default) uninstalls the release and " +
          "installs it again, 'InPlaceUpdate' upgrades it.",
      }),
    ),
    serverSideApply: ServerSideApplyMode('upgrade'),
  },
  { description: 'Settings of the Helm upgrade action.' },
);

const Test = Type.Object(
  {
    enable: Type.Optional(Type.Boolean({ description: 'Run the chart tests after each install and upgrade.' })),
    timeout: Timeout('Timeout of each Kubernetes operation of the tests; defaults to spec.timeout.'),
    ignoreFailures: Type.Optional(
      Type.Boolean({
        description: 'Failed tests neither fail the release nor trigger remediation; install and upgrade can override.',
      }),
    ),
    filters: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: ObjectName('Name of the test.'),
            exclude: Type.Optional(Type.Boolean({ description: 'Leave this test out instead of selecting it.' })),
          },
          { description: 'Selects or excludes one test.' },
        ),
        { description: 'Tests to run or to leave out.' },
      ),
    ),
  },
  { description: 'Settings of the Helm test action.' },
);

const Rollback = Type.Object(
  {
    timeout: Timeout('Timeout of each Kubernetes operation of the rollback; defaults to spec.timeout.'),
    ...commonActionFlags('rollback'),
    recreate: Type.Optional(
      Type.Boolean({ description: 'Restart the workloads. Deprecated: has no effect since the Helm 4 SDK.' }),
    ),
    force: Type.Optional(
      Type.Boolean({
        description: 'Replace resources to avoid 3-way merge conflicts; ignored with server-side apply.',
      }),
    ),
    cleanupOnFail: Type.Optional(Type.Boolean({ description: 'Delete resources created by a failed rollback.' })),
    serverSideApply: ServerSideApplyMode('rollback'),
  },
  { description: 'Settings of the Helm rollback action (upgrade remediation by rollback).' },
);

const Uninstall = Type.Object(
  {
    timeout: Timeout('Timeout of each Kubernetes operation of the uninstall; defaults to spec.timeout.'),
    disableHooks: Type.Optional(Type.Boolean({ description: 'Do not run chart hooks during the uninstall.' })),
    keepHistory: Type.Optional(
      Type.Boolean({ description: 'Remove the resources but keep the release history, marked uninstalled.' }),
    ),
    disableWait: Type.Optional(
      Type.Boolean({ description: 'Do not wait for the resources to be gone after the uninstall.' }),
    ),
    deletionPropagation: Type.Optional(
      Type.String({
        enum: ['background', 'foreground', 'orphan'],
        default: 'background',
        description: 'Deletion propagation policy used for the release resources.',
      }),
    ),
  },
  { description: 'Settings of the Helm uninstall action (deletion, install remediation).' },
);

// --- the spec -------------------------------------------------------------------------------

export const HelmReleaseSpec = Type.Object(
  {
    chart: Type.Optional(HelmChartTemplate),
    chartRef: Type.Optional(
      Type.Object(
        {
          apiVersion: Type.Optional(Type.String({ description: 'API version of the source.' })),
          kind: Type.String({
            enum: ['OCIRepository', 'HelmChart', 'ExternalArtifact'],
            description: 'Kind of the source.',
          }),
          name: ObjectName('Name of the source.'),
          namespace: Type.Optional(NamespaceName("Namespace of the source; defaults to the HelmRelease's.")),
        },
        { description: 'An existing source whose artifact is the chart; exclusive with chart.' },
      ),
    ),
    interval: Duration('How often the release is reconciled.'),
    kubeConfig: Type.Optional(KubeConfigReference),
    suspend: Type.Optional(Type.Boolean({ description: 'Suspends reconciliation of this HelmRelease.' })),
    releaseName: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 53,
        description: "Name of the Helm release; defaults to '[<targetNamespace>-]<name>'.",
      }),
    ),
    targetNamespace: Type.Optional(
      NamespaceName("Namespace the release is installed into; defaults to the HelmRelease's."),
    ),
    storageNamespace: Type.Optional(
      NamespaceName("Namespace holding the Helm release storage; defaults to the HelmRelease's."),
    ),
    dependsOn: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ description: 'Name of the HelmRelease depended on.' }),
            namespace: Type.Optional(Type.String({ description: "Its namespace; defaults to this one's." })),
            readyExpr: Type.Optional(
              Type.String({
                description:
                  'CEL expression over dep and self replacing the built-in readiness check (added to it with ' +
                  'the AdditiveCELDependencyCheck feature gate).',
              }),
            ),
          },
          { description: 'A HelmRelease that must be ready first.' },
        ),
        { description: 'HelmReleases that must be ready before this one is reconciled.' },
      ),
    ),
    timeout: Timeout('Timeout of each Kubernetes operation of a Helm action (hook Jobs...). Defaults to 5m0s.'),
    maxHistory: Type.Optional(
      Type.Integer({ description: 'Release revisions Helm keeps; 0 for no limit. Defaults to 5.' }),
    ),
    serviceAccountName: Type.Optional(ObjectName('ServiceAccount impersonated when reconciling.')),
    persistentClient: Type.Optional(
      Type.Boolean({
        description:
          'Reuse one Kubernetes client for the whole reconciliation instead of one per Helm action step; ' +
          'defaults to true.',
      }),
    ),
    driftDetection: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(
            Type.String({
              enum: ['enabled', 'warn', 'disabled'],
              description: "'enabled' corrects drift, 'warn' only reports it; defaults to disabled.",
            }),
          ),
          ignore: Type.Optional(
            Type.Array(
              Type.Object(
                {
                  paths: Type.Array(Type.String(), { description: 'JSON Pointers (RFC 6901) to ignore.' }),
                  target: Type.Optional(ObjectSelector),
                },
                { description: 'Fields left out of drift detection, in all objects or in the selected ones.' },
              ),
              { description: 'Differences to ignore.' },
            ),
          ),
        },
        { description: 'Detection and correction of cluster changes to the objects of the release.' },
      ),
    ),
    install: Type.Optional(Install),
    upgrade: Type.Optional(Upgrade),
    test: Type.Optional(Test),
    rollback: Type.Optional(Rollback),
    uninstall: Type.Optional(Uninstall),
    valuesFrom: Type.Optional(
      Type.Array(
        Type.Object(
          {
            kind: Type.String({ enum: ['Secret', 'ConfigMap'], description: 'Kind of the object holding values.' }),
            name: ObjectName('Its name, in the namespace of the HelmRelease.'),
            valuesKey: Type.Optional(
              Type.String({
                maxLength: 253,
                pattern: '^[\\-._a-zA-Z0-9]+$',
                description: "Data key of the values document or single value; defaults to 'values.yaml'.",
              }),
            ),
            targetPath: Type.Optional(
              Type.String({
                maxLength: 250,
                pattern: '^([a-zA-Z0-9_\\-.\\\\\\/]|\\[[0-9]{1,5}\\])+$',
                description:
                  'Path, in helm --set syntax, the single value is set at; when unset the document merges at the root.',
              }),
            ),
            optional: Type.Optional(
              Type.Boolean({
                description: 'Tolerate a missing object; a bad key or path or any other error still fails.',
              }),
            ),
            literal: Type.Optional(
              Type.Boolean({
                description: 'With targetPath, set the value verbatim like helm --set-literal, without --set parsing.',
              }),
            ),
          },
          { description: 'A ConfigMap or Secret holding values.' },
        ),
        { description: 'Values sources merged in order (later ones win), before the inline values.' },
      ),
    ),
    values: Type.Optional(
      Type.Unsafe<Record<string, unknown>>({
        description: 'Inline values, merged over those from valuesFrom.',
        'x-kubernetes-preserve-unknown-fields': true,
      }),
    ),
    postRenderers: Type.Optional(
      Type.Array(PostRenderer, { description: 'Post-renderers applied to the rendered manifests, in order.' }),
    ),
    postRenderStrategy: Type.Optional(
      Type.String({
        enum: ['nohooks', 'combined', 'separate'],
        description:
          "Whether hooks go through post-rendering: 'nohooks' (Helm 3), 'combined' with the templates (Helm 4, " +
          "the default; nohooks with UseHelm3Defaults) or 'separate' streams.",
      }),
    ),
    commonMetadata: Type.Optional(
      Metadata('Labels and annotations set on every object of the release, replacing keys that exist.'),
    ),
    healthCheckExprs: Type.Optional(
      Type.Array(
        Type.Object(
          {
            apiVersion: Type.String({ description: 'API version of the custom resource; only its group is matched.' }),
            kind: Type.Optional(
              Type.String({ description: 'Kind of the custom resource; unset applies to every kind of the group.' }),
            ),
            current: Type.String({ description: 'CEL expression true when the resource is healthy.' }),
            inProgress: Type.Optional(Type.String({ description: 'CEL expression true while it is progressing.' })),
            failed: Type.Optional(Type.String({ description: 'CEL expression true when it has failed.' })),
          },
          { description: 'Health expressions for custom resources of one group (or kind).' },
        ),
        {
          description:
            "CEL health checks for custom resources, used when an action waits with the 'poller' wait strategy.",
        },
      ),
    ),
    waitStrategy: Type.Optional(
      Type.Object(
        {
          name: Type.String({
            enum: ['poller', 'legacy'],
            description:
              "'poller' polls kstatus, 'legacy' waits as Helm 3; defaults to poller (legacy with UseHelm3Defaults).",
          }),
        },
        { description: 'How Helm waits for applied resources to be ready.' },
      ),
    ),
  },
  {
    description: 'HelmReleaseSpec describes the Helm release to install and keep up to date.',
    'x-kubernetes-validations': [
      {
        rule: '(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))',
        message: 'either chart or chartRef must be set',
      } satisfies CelRule,
    ],
  },
);

// --- the status -----------------------------------------------------------------------------

const Timestamp = (description: string) => Type.String({ format: 'date-time', description });

/** v2.Snapshot: one Helm release revision as the controller observed it. */
export const ReleaseSnapshot = Type.Object(
  {
    apiVersion: Type.Optional(
      Type.String({ description: 'Version of the snapshot format, telling how the digest was computed.' }),
    ),
    digest: Type.String({ description: "Checksum of the release object in storage, '<algo>:<hex>'." }),
    name: Type.String({ description: 'Release name.' }),
    namespace: Type.String({ description: 'Namespace the release is installed into.' }),
    version: Type.Integer({ description: 'Release revision.' }),
    status: Type.String({ description: 'Helm status of the revision (deployed, failed, superseded...).' }),
    chartName: Type.String({ description: 'Chart name of the revision.' }),
    chartVersion: Type.String({ description: 'Chart version of the revision.' }),
    appVersion: Type.Optional(Type.String({ description: 'App version of the chart.' })),
    configDigest: Type.String({ description: "Checksum of the values of the revision, '<algo>:<hex>'." }),
    firstDeployed: Timestamp('When the release was first deployed.'),
    lastDeployed: Timestamp('When this revision was deployed.'),
    deleted: Type.Optional(Timestamp('When the release was uninstalled.')),
    testHooks: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Object(
          {
            lastStarted: Type.Optional(Timestamp('When the test last started.')),
            lastCompleted: Type.Optional(Timestamp('When the test last completed.')),
            phase: Type.Optional(Type.String({ description: 'Phase the test hook was seen in.' })),
          },
          { description: 'A test hook as observed by the controller.' },
        ),
        { description: 'Test hooks run for this revision, by name.' },
      ),
    ),
    ociDigest: Type.Optional(Type.String({ description: 'Digest of the OCI artifact the chart came from.' })),
    action: Type.Optional(Type.String({ description: 'Helm action that produced this revision.' })),
  },
  { description: 'A revision of the Helm release made by the controller.' },
);

export const HelmReleaseStatus = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'The last generation reconciled.' }),
    ),
    observedPostRenderersDigest: Type.Optional(
      Type.String({ description: 'Digest of spec.postRenderers at the last successful reconciliation.' }),
    ),
    observedCommonMetadataDigest: Type.Optional(
      Type.String({ description: 'Digest of spec.commonMetadata at the last successful reconciliation.' }),
    ),
    lastHandledReconcileAt: Type.Optional(
      Type.String({ description: 'The value of the reconcile.fluxcd.io/requestedAt annotation last handled.' }),
    ),
    conditions: Type.Optional(Conditions),
    helmChart: Type.Optional(
      Type.String({ description: "The HelmChart created for spec.chart, as '<namespace>/<name>'." }),
    ),
    storageNamespace: Type.Optional(NamespaceName('Namespace of the Helm storage of the current release.')),
    history: Type.Optional(
      Type.Array(ReleaseSnapshot, {
        description: 'Revisions made by the controller, newest first, back to the last successful one.',
      }),
    ),
    lastAttemptedReleaseAction: Type.Optional(
      Type.String({
        enum: ['install', 'upgrade'],
        description: 'Last release action attempted; selects the active retry or remediation settings.',
      }),
    ),
    lastAttemptedReleaseActionDuration: Type.Optional(
      Type.String({ description: 'How long the last release action took.' }),
    ),
    failures: Type.Optional(
      Type.Integer({ format: 'int64', description: 'Failures of any kind against the current desired state.' }),
    ),
    installFailures: Type.Optional(
      Type.Integer({ format: 'int64', description: 'Install failures against the current desired state.' }),
    ),
    upgradeFailures: Type.Optional(
      Type.Integer({ format: 'int64', description: 'Upgrade failures against the current desired state.' }),
    ),
    lastAttemptedRevision: Type.Optional(
      Type.String({
        description: "Chart version of the last attempt; '<version>+<digest[0:12]>' for an OCIRepository chart.",
      }),
    ),
    lastAttemptedRevisionDigest: Type.Optional(
      Type.String({ description: 'OCI artifact digest of the last attempt; only for OCIRepository charts.' }),
    ),
    lastAttemptedValuesChecksum: Type.Optional(
      Type.String({
        description: 'SHA1 of the values of the last attempt. Deprecated: see lastAttemptedConfigDigest.',
      }),
    ),
    lastReleaseRevision: Type.Optional(
      Type.Integer({ description: 'Revision of the last successful release. Deprecated: see history.' }),
    ),
    lastAttemptedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'Generation of the last reconciliation attempt.' }),
    ),
    lastAttemptedConfigDigest: Type.Optional(Type.String({ description: 'Digest of the values of the last attempt.' })),
    lastHandledForceAt: Type.Optional(
      Type.String({ description: 'The value of the reconcile.fluxcd.io/forceAt annotation last handled.' }),
    ),
    lastHandledResetAt: Type.Optional(
      Type.String({ description: 'The value of the reconcile.fluxcd.io/resetAt annotation last handled.' }),
    ),
    inventory: Type.Optional(
      Type.Object(
        {
          entries: Type.Array(
            Type.Object(
              {
                id: Type.String({ description: "Object identity, '<namespace>_<name>_<group>_<kind>'." }),
                v: Type.String({ description: 'API version of the object.' }),
              },
              { description: 'An object of the release.' },
            ),
            { description: 'The objects.' },
          ),
        },
        { description: 'Objects of the release manifest and chart CRDs, hooks excluded.' },
      ),
    ),
  },
  { description: 'HelmReleaseStatus records the observed state of a HelmRelease.' },
);

export type HelmReleaseSpec = Static<typeof HelmReleaseSpec>;
export type HelmReleaseStatus = Static<typeof HelmReleaseStatus>;
export type ReleaseSnapshot = Static<typeof ReleaseSnapshot>;

export const HelmReleaseKind: KindDefinition<typeof HelmReleaseSpec, typeof HelmReleaseStatus> = {
  group: 'helm.toolkit.fluxcd.io',
  version: 'v2',
  kind: 'HelmRelease',
  plural: 'helmreleases',
  singular: 'helmrelease',
  shortNames: ['hr'],
  categories: ['all', 'fluxcd', 'fluxcd-appliers'],
  description: 'HelmRelease is the Schema for the helmreleases API.',
  printerColumns: readyColumns,
  spec: HelmReleaseSpec,
  status: HelmReleaseStatus,
  statusDefault: { observedGeneration: -1 },
};
