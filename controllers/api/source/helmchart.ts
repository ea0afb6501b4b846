// source.toolkit.fluxcd.io/v1 HelmChart, field for field as Flux defines it.
import { Type, type Static } from '@sinclair/typebox';
import { Artifact, Duration, observedStatus } from '../common.ts';
import { readyColumns, type KindDefinition } from '../kind.ts';
import { OCIRepositoryVerification } from './ocirepository.ts';

/** LocalHelmChartSourceReference */
const SourceRef = Type.Object(
  {
    apiVersion: Type.Optional(Type.String({ description: 'API version of the source.' })),
    kind: Type.String({
      enum: ['HelmRepository', 'GitRepository', 'Bucket'],
      description: 'Kind of the source.',
    }),
    name: Type.String({ description: 'Name of the source.' }),
  },
  { description: 'The source, in the namespace of the HelmChart, that holds the chart.' },
);

export const HelmChartSpec = Type.Object(
  {
    chart: Type.String({ description: 'Name of the chart in a HelmRepository, or its path in other sources.' }),
    version: Type.Optional(
      Type.String({
        default: '*',
        description: 'SemVer range of chart versions, the highest match is used; ignored for Git and Bucket sources.',
      }),
    ),
    sourceRef: SourceRef,
    interval: Duration('How often the source is checked for a new chart.'),
    reconcileStrategy: Type.Optional(
      Type.String({
        enum: ['ChartVersion', 'Revision'],
        default: 'ChartVersion',
        description:
          "What makes a new artifact: a new chart version ('ChartVersion') or any new source revision ('Revision').",
      }),
    ),
    valuesFiles: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Values files in the source, merged in order (later ones win), replacing the default values.yaml.',
      }),
    ),
    ignoreMissingValuesFiles: Type.Optional(
      Type.Boolean({ description: 'Skip values files that do not exist instead of failing.' }),
    ),
    suspend: Type.Optional(Type.Boolean({ description: 'Suspends reconciliation of this HelmChart.' })),
    verify: Type.Optional(
      Type.Object(OCIRepositoryVerification.properties, {
        description:
          "Signature verification of the chart; only for a HelmRepository of type 'oci'. " +
          'Dependencies not bundled in the chart are not verified.',
      }),
    ),
  },
  { description: 'HelmChartSpec describes the Helm chart to produce a packaged artifact from.' },
);

export const HelmChartStatus = Type.Object(
  {
    ...observedStatus,
    observedSourceArtifactRevision: Type.Optional(
      Type.String({ description: "The revision of the source's artifact the current chart was built from." }),
    ),
    observedChartName: Type.Optional(Type.String({ description: 'The chart name the reference resolved to.' })),
    observedValuesFiles: Type.Optional(
      Type.Array(Type.String(), { description: 'The values files merged into the current artifact.' }),
    ),
    url: Type.Optional(
      Type.String({ description: 'Address at which the latest artifact can be fetched; prefer artifact.url.' }),
    ),
    artifact: Type.Optional(Artifact),
  },
  { description: 'HelmChartStatus records the observed state of a Helm chart.' },
);

export type HelmChartSpec = Static<typeof HelmChartSpec>;
export type HelmChartStatus = Static<typeof HelmChartStatus>;

export const HelmChartKind: KindDefinition<typeof HelmChartSpec, typeof HelmChartStatus> = {
  group: 'source.toolkit.fluxcd.io',
  version: 'v1',
  kind: 'HelmChart',
  plural: 'helmcharts',
  singular: 'helmchart',
  shortNames: ['hc'],
  categories: ['all', 'fluxcd', 'fluxcd-sources'],
  description: 'HelmChart is the Schema for the helmcharts API.',
  printerColumns: [
    { name: 'Chart', type: 'string', jsonPath: '.spec.chart' },
    { name: 'Version', type: 'string', jsonPath: '.spec.version' },
    { name: 'Source Kind', type: 'string', jsonPath: '.spec.sourceRef.kind' },
    { name: 'Source Name', type: 'string', jsonPath: '.spec.sourceRef.name' },
    ...readyColumns,
  ],
  spec: HelmChartSpec,
  status: HelmChartStatus,
  statusDefault: { observedGeneration: -1 },
};
