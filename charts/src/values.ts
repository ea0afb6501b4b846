// The chart's values: one TypeBox schema that is values.schema.json (so `helm install` refuses a
// bad value by its name), values.yaml (its defaults, its descriptions as comments) and the type the
// templates are written against.
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { CONTROLLERS } from '../../controllers/registry.ts';
import type { ControllerDescriptor } from '../../controllers/runtime/setup.ts';

const Resources = Type.Object(
  {
    requests: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()]))),
    limits: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()]))),
  },
  { additionalProperties: false },
);

const resources = (requests: Record<string, string>, limits: Record<string, string>) =>
  Type.Object(Resources.properties, {
    additionalProperties: false,
    default: { requests, limits },
    description: 'Container resources.',
  });

const replicas = (description: string) => Type.Integer({ minimum: 0, default: 1, description });

const StringMap = (description: string) => Type.Record(Type.String(), Type.String(), { default: {}, description });

const extraArgs = (description: string) => Type.Array(Type.String(), { default: [], description });

const clusterRole = (who: string) =>
  Type.String({
    minLength: 1,
    default: 'cluster-admin',
    description:
      `The ClusterRole bound to ${who} for applying what the sources hold (on top of the controller's ` +
      'own least-privilege rules); name a narrower one to limit what it may create, change and delete.',
  });

function controllerValues(c: ControllerDescriptor) {
  return Type.Object(
    {
      enabled: Type.Boolean({ default: true, description: `Run the ${c.name} controller (split mode).` }),
      replicas: replicas('Pods; more than one stand by through leader election.'),
      resources: resources({ cpu: '100m', memory: '64Mi' }, { memory: '1Gi' }),
      extraArgs: extraArgs('More tide-controller flags for this controller.'),
      ...(c.rbac.appliesAnyObject ? { clusterRole: clusterRole(`${c.name}-controller`) } : {}),
    },
    { additionalProperties: false },
  );
}

export const valuesSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('split'), Type.Literal('combined')], {
      default: 'split',
      description:
        'split: one Deployment per controller, each with its own ServiceAccount and RBAC. ' +
        'combined: one Deployment running every controller (--controllers=all) with the union of the RBAC.',
    }),
    image: Type.Object(
      {
        repository: Type.String({ minLength: 1, default: 'ghcr.io/tide-gitops/tide-controller' }),
        tag: Type.String({ default: '', description: "Defaults to the chart's appVersion." }),
        pullPolicy: Type.Union([Type.Literal('Always'), Type.Literal('IfNotPresent'), Type.Literal('Never')], {
          default: 'IfNotPresent',
        }),
      },
      { additionalProperties: false, description: 'The tide-controller image, one for every controller.' },
    ),
    imagePullSecrets: Type.Array(Type.Object({ name: Type.String() }, { additionalProperties: false }), {
      default: [],
    }),
    installCRDs: Type.Boolean({
      default: true,
      description: 'Install the CRDs (set false in all but one release, e.g. for shards).',
    }),
    crds: Type.Object(
      {
        keep: Type.Boolean({
          default: true,
          description:
            'Annotate the CRDs helm.sh/resource-policy: keep, so that uninstall leaves them and the objects.',
        }),
        annotations: StringMap('More annotations on the CRDs.'),
      },
      { additionalProperties: false },
    ),
    controllers: Type.Object(Object.fromEntries(CONTROLLERS.map((c) => [c.name, controllerValues(c)])), {
      additionalProperties: false,
      description: 'The controllers of this build, by the names --controllers takes.',
    }),
    combined: Type.Object(
      {
        replicas: replicas('Pods; more than one stand by through leader election.'),
        resources: resources({ cpu: '200m', memory: '128Mi' }, { memory: '2Gi' }),
        extraArgs: extraArgs('More tide-controller flags.'),
        clusterRole: clusterRole('the combined controller'),
      },
      { additionalProperties: false, description: 'The one Deployment of combined mode.' },
    ),
    leaderElection: Type.Object(
      { enabled: Type.Boolean({ default: true, description: 'Elect a leader with a Lease; only it reconciles.' }) },
      { additionalProperties: false },
    ),
    watchAllNamespaces: Type.Boolean({
      default: true,
      description: "Watch every namespace; false: only the release's namespace.",
    }),
    sharding: Type.Object(
      {
        shard: Type.String({
          default: '',
          pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$',
          description:
            'This release is the shard of this name: it reconciles only objects labelled <key>=<shard>, ' +
            'and its namespaced objects and Lease are suffixed -<shard>. Empty: not a shard.',
        }),
        key: Type.String({ minLength: 1, default: 'sharding.fluxcd.io/key', description: 'The shard label.' }),
      },
      { additionalProperties: false },
    ),
    watchLabelSelector: Type.String({
      default: '',
      description:
        'Reconcile only objects matching this label selector (overrides sharding.shard), e.g. ' +
        "'!sharding.fluxcd.io/key' for the release that takes the objects of no shard.",
    }),
    logLevel: Type.Union(
      ['trace', 'debug', 'info', 'error'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
    concurrent: Type.Integer({ minimum: 1, default: 4, description: 'Concurrent reconciles per kind.' }),
    extraArgs: extraArgs('More tide-controller flags for every Deployment.'),
    serviceAccount: Type.Object(
      { annotations: StringMap("Annotations on the controllers' ServiceAccounts (e.g. workload identity).") },
      { additionalProperties: false },
    ),
    podSecurityContext: Type.Record(Type.String(), Type.Unknown(), {
      default: { runAsNonRoot: true, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      description: "The pods' security context; the containers' own is fixed (non-root, read-only, no capabilities).",
    }),
    nodeSelector: StringMap('Pod nodeSelector.'),
    tolerations: Type.Array(Type.Record(Type.String(), Type.Unknown()), { default: [] }),
    affinity: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
    networkPolicy: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description:
            "NetworkPolicies on the release's pods: ingress only from their own namespace, " +
            'except metrics scraping from anywhere; egress open.',
        }),
      },
      { additionalProperties: false },
    ),
    prometheus: Type.Object(
      {
        podMonitor: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'A PodMonitor (Prometheus Operator) for /metrics.' }),
            interval: Type.String({ default: '30s' }),
            labels: StringMap('Labels on the PodMonitor, e.g. what the Prometheus selects.'),
          },
          { additionalProperties: false },
        ),
        rule: Type.Object(
          {
            enabled: Type.Boolean({
              default: false,
              description: "A PrometheusRule (Prometheus Operator) with Tide's alerts (files/monitoring/alerts.yaml).",
            }),
            labels: StringMap('Labels on the PrometheusRule, e.g. what the Prometheus selects.'),
          },
          { additionalProperties: false },
        ),
        dashboard: Type.Object(
          {
            enabled: Type.Boolean({
              default: false,
              description: "A ConfigMap with Tide's Grafana dashboard (files/monitoring/dashboard.json).",
            }),
            labels: Type.Record(Type.String(), Type.String(), {
              default: { grafana_dashboard: '1' },
              description: "Labels on the ConfigMap; the default is what Grafana's dashboard sidecar looks for.",
            }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Values = Static<typeof valuesSchema>;

/** values.schema.json: the schema as JSON Schema (TypeBox's own markers are symbols, not written). */
export function schemaJson(schema: TSchema = valuesSchema): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2)}\n`;
}
