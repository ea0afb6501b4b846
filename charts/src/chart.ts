// The objects of charts/tide, as cdk8s constructs typed by the Kubernetes API (cdk8s-plus-28's
// k8s module), one cdk8s Chart per template file; template.ts says how values reach them.
import { ApiObject, App, Chart, type GroupVersionKind, JsonPatch } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { CONTROLLERS } from '../../controllers/registry.ts';
import {
  type ControllerDescriptor,
  leaderElectionRules,
  managerRules,
  type PolicyRule,
} from '../../controllers/runtime/setup.ts';
import { block, each, value } from './template.ts';

/** A template file: its objects and, when it is optional, the condition that renders it. */
export interface TemplateFile {
  name: string;
  objects: Record<string, unknown>[];
  when?: string;
}

const RELEASE = value('{{ .Release.Name }}');
const NAMESPACE = value('{{ .Release.Namespace }}');
/** Namespaced names carry the shard, so that one release per shard fits in one namespace. */
const SHARD = value('{{ with .Values.sharding.shard }}-{{ . }}{{ end }}');
const METRICS_PORT = 8080;
const HEALTH_PORT = 9440;
const STORAGE_PORT = 9090;

function labels(component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'tide',
    'app.kubernetes.io/part-of': 'tide',
    'app.kubernetes.io/instance': RELEASE,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/version': value('{{ .Chart.AppVersion | quote }}'),
    'app.kubernetes.io/managed-by': value('{{ .Release.Service }}'),
    'helm.sh/chart': value('{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}'),
  };
}

/** What a Service, a PodMonitor and NetworkPolicies select the pods of this release by. */
const RELEASE_PODS = { 'app.kubernetes.io/part-of': 'tide', 'app.kubernetes.io/instance': RELEASE };

function object<P extends { metadata?: k8s.ObjectMeta }>(
  scope: Construct,
  id: string,
  gvk: GroupVersionKind,
  props: P,
): void {
  // cdk8s reads metadata.labels and .annotations as maps; a block token there is patched in after.
  const { labels, annotations, ...metadata } = props.metadata ?? {};
  const tokens = Object.entries({ labels, annotations }).filter(([, v]) => typeof v === 'string');
  const maps = Object.fromEntries(Object.entries({ labels, annotations }).filter(([, v]) => typeof v === 'object'));
  const api = new ApiObject(scope, id, { ...gvk, ...props, metadata: { ...metadata, ...maps } });
  for (const [field, token] of tokens) api.addJsonPatch(JsonPatch.add(`/metadata/${field}`, token));
}

/** One Deployment of the chart: the controllers it runs and where its values are. */
interface Workload {
  /** Deployment and ServiceAccount name, before the shard suffix. */
  name: string;
  controllers: readonly ControllerDescriptor[];
  /** The --controllers value. */
  selects: string;
  /** Template path of its replicas, resources, extraArgs and clusterRole. */
  values: string;
  when: string;
}

function workloads(): Workload[] {
  return [
    ...CONTROLLERS.map((c) => ({
      name: `${c.name}-controller`,
      controllers: [c],
      selects: c.name,
      values: `.Values.controllers.${c.name}`,
      when: `and (eq .Values.mode "split") .Values.controllers.${c.name}.enabled`,
    })),
    {
      name: 'tide-controller',
      controllers: CONTROLLERS,
      selects: 'all',
      values: '.Values.combined',
      when: 'eq .Values.mode "combined"',
    },
  ];
}

/** Rules of several controllers in one list: one rule per API group and resource set, verbs merged. */
export function unionRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const merged = new Map<string, PolicyRule>();
  for (const r of rules) {
    const key = JSON.stringify([r.apiGroups, r.resources, r.resourceNames ?? []]);
    const seen = merged.get(key);
    if (seen) seen.verbs = [...new Set([...seen.verbs, ...r.verbs])];
    else merged.set(key, { ...r, apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] });
  }
  return [...merged.values()];
}

function clusterRules(w: Workload): PolicyRule[] {
  const own = w.controllers.flatMap((c) => c.rbac.rules);
  return unionRules([...own, ...managerRules(own)]);
}

function controllerArgs(w: Workload): string[] {
  const runs = (name: string) => w.controllers.some((c) => c.name === name);
  const combined = w.controllers.length > 1;
  return [
    `--controllers=${w.selects}`,
    `--metrics-addr=:${METRICS_PORT}`,
    `--health-addr=:${HEALTH_PORT}`,
    `--log-level=${value('{{ .Values.logLevel }}')}`,
    '--log-encoding=json',
    `--concurrent=${value('{{ .Values.concurrent }}')}`,
    `--watch-all-namespaces=${value('{{ .Values.watchAllNamespaces }}')}`,
    value(
      '{{ printf "--watch-label-selector=%s" (.Values.watchLabelSelector | default ' +
        '(ternary (printf "%s in (%s)" .Values.sharding.key .Values.sharding.shard) "" ' +
        '(ne .Values.sharding.shard ""))) | quote }}',
    ),
    `--enable-leader-election=${value('{{ .Values.leaderElection.enabled }}')}`,
    `--leader-election-id=${w.name}${SHARD}-leader-election`,
    ...(runs('source')
      ? [
          `--storage-path=${combined ? '/data/source' : '/data'}`,
          `--storage-addr=:${STORAGE_PORT}`,
          // The Service's port 80; the trailing dot spares the resolver the search domains.
          `--storage-adv-addr=source-controller${SHARD}.${NAMESPACE}.svc.cluster.local.`,
        ]
      : []),
    ...(runs('image') ? [`--image-storage-path=${combined ? '/data/image' : '/data'}`] : []),
    each('.Values.extraArgs'),
    each(`${w.values}.extraArgs`),
  ];
}

function deployment(scope: Construct, w: Workload): void {
  const name = `${w.name}${SHARD}`;
  const selector = { ...RELEASE_PODS, app: name };
  const runsSource = w.controllers.some((c) => c.name === 'source');
  const ports: k8s.ContainerPort[] = [
    { name: 'http-prom', containerPort: METRICS_PORT, protocol: 'TCP' },
    { name: 'healthz', containerPort: HEALTH_PORT, protocol: 'TCP' },
    ...(runsSource ? [{ name: 'http', containerPort: STORAGE_PORT, protocol: 'TCP' }] : []),
  ];
  const probe = (path: string): k8s.Probe => ({
    httpGet: { path, port: 'healthz' as unknown as k8s.IntOrString },
  });
  const props: k8s.KubeDeploymentProps = {
    metadata: { name, namespace: NAMESPACE, labels: labels(w.name) },
    spec: {
      replicas: value<number>(`{{ ${w.values}.replicas }}`),
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: { ...labels(w.name), ...selector },
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT) },
        },
        spec: {
          serviceAccountName: name,
          // Longer than --graceful-shutdown-timeout (30s), so that reconciles in flight may finish.
          terminationGracePeriodSeconds: 40,
          securityContext: block('.Values.podSecurityContext'),
          imagePullSecrets: block('.Values.imagePullSecrets'),
          nodeSelector: block('.Values.nodeSelector'),
          tolerations: block('.Values.tolerations'),
          affinity: block('.Values.affinity'),
          containers: [
            {
              name: 'manager',
              image: value(
                '{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}',
              ),
              imagePullPolicy: value('{{ .Values.image.pullPolicy }}'),
              args: controllerArgs(w),
              env: [
                { name: 'RUNTIME_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                // git, sops and Helm write under $HOME; the root filesystem is read-only.
                { name: 'HOME', value: '/tmp' },
              ],
              ports,
              livenessProbe: probe('/healthz'),
              readinessProbe: probe('/readyz'),
              resources: block(`${w.values}.resources`),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: [
                { name: 'data', mountPath: '/data' },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'data', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
  object(scope, 'deployment', k8s.KubeDeployment.GVK, props);
  if (runsSource) {
    const service: k8s.KubeServiceProps = {
      metadata: { name: `source-controller${SHARD}`, namespace: NAMESPACE, labels: labels(w.name) },
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' as unknown as k8s.IntOrString }],
      },
    };
    object(scope, 'service', k8s.KubeService.GVK, service);
  }
}

function rbac(scope: Construct, w: Workload): void {
  const name = `${w.name}${SHARD}`;
  // Cluster-scoped names carry the release, which is unique in its namespace.
  const clusterName = `${RELEASE}-${w.name}`;
  const subjects: k8s.Subject[] = [{ kind: 'ServiceAccount', name, namespace: NAMESPACE }];
  const meta = (n: string) => ({ name: n, labels: labels(w.name) });
  const sa: k8s.KubeServiceAccountProps = {
    metadata: { ...meta(name), namespace: NAMESPACE, annotations: block('.Values.serviceAccount.annotations') },
  };
  object(scope, 'serviceaccount', k8s.KubeServiceAccount.GVK, sa);
  const role: k8s.KubeClusterRoleProps = { metadata: meta(clusterName), rules: clusterRules(w) };
  object(scope, 'clusterrole', k8s.KubeClusterRole.GVK, role);
  const binding: k8s.KubeClusterRoleBindingProps = {
    metadata: meta(clusterName),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterName },
    subjects,
  };
  object(scope, 'clusterrolebinding', k8s.KubeClusterRoleBinding.GVK, binding);
  if (w.controllers.some((c) => c.rbac.appliesAnyObject)) {
    const applier: k8s.KubeClusterRoleBindingProps = {
      metadata: meta(`${clusterName}-apply`),
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: value(`{{ ${w.values}.clusterRole | quote }}`),
      },
      subjects,
    };
    object(scope, 'clusterrolebinding-apply', k8s.KubeClusterRoleBinding.GVK, applier);
  }
}

function leaderElection(scope: Construct, w: Workload): void {
  const name = `${w.name}${SHARD}-leader-election`;
  const meta = { name, namespace: NAMESPACE, labels: labels(w.name) };
  const role: k8s.KubeRoleProps = { metadata: meta, rules: [...leaderElectionRules] };
  object(scope, 'role', k8s.KubeRole.GVK, role);
  const binding: k8s.KubeRoleBindingProps = {
    metadata: meta,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name: `${w.name}${SHARD}`, namespace: NAMESPACE }],
  };
  object(scope, 'rolebinding', k8s.KubeRoleBinding.GVK, binding);
}

/** As Flux ships them: ingress from the release's own namespace, metrics from anywhere, egress open. */
function networkPolicies(scope: Construct): void {
  const meta = (n: string) => ({ name: `${RELEASE}-${n}`, namespace: NAMESPACE, labels: labels('network-policy') });
  const podSelector = { matchLabels: RELEASE_PODS };
  const egress: k8s.KubeNetworkPolicyProps = {
    metadata: meta('allow-egress'),
    spec: {
      podSelector,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: {} }] }],
      egress: [{}],
    },
  };
  object(scope, 'allow-egress', k8s.KubeNetworkPolicy.GVK, egress);
  const scraping: k8s.KubeNetworkPolicyProps = {
    metadata: meta('allow-scraping'),
    spec: {
      podSelector,
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ namespaceSelector: {} }],
          ports: [{ port: METRICS_PORT as unknown as k8s.IntOrString, protocol: 'TCP' }],
        },
      ],
    },
  };
  object(scope, 'allow-scraping', k8s.KubeNetworkPolicy.GVK, scraping);
}

function podMonitor(scope: Construct): void {
  object(
    scope,
    'podmonitor',
    { apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor' },
    {
      metadata: {
        name: RELEASE,
        namespace: NAMESPACE,
        labels: block('merge (dict) .Values.prometheus.podMonitor.labels (dict "app.kubernetes.io/part-of" "tide")'),
      },
      spec: {
        namespaceSelector: { matchNames: [NAMESPACE] },
        selector: { matchLabels: RELEASE_PODS },
        podMetricsEndpoints: [
          {
            port: 'http-prom',
            path: '/metrics',
            interval: value('{{ .Values.prometheus.podMonitor.interval | quote }}'),
          },
        ],
      },
    },
  );
}

/** The alert rules and dashboard helper "prometheus" keeps in files/monitoring, as Operator and Grafana take them. */
function monitoring(scope: Construct, kind: 'rule' | 'dashboard'): void {
  const meta = (labelsOf: string) => ({
    name: `${RELEASE}`,
    namespace: NAMESPACE,
    labels: block<Record<string, string>>(
      `merge (dict) ${labelsOf} (dict "app.kubernetes.io/part-of" "tide" "app.kubernetes.io/instance" .Release.Name)`,
    ),
  });
  if (kind === 'rule') {
    object(
      scope,
      'prometheusrule',
      { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule' },
      {
        metadata: meta('.Values.prometheus.rule.labels'),
        spec: block('.Files.Get "files/monitoring/alerts.yaml" | fromYaml'),
      },
    );
    return;
  }
  const dashboard: k8s.KubeConfigMapProps = {
    metadata: { ...meta('.Values.prometheus.dashboard.labels'), name: `${RELEASE}-dashboard` },
    data: { 'tide.json': value('{{ .Files.Get "files/monitoring/dashboard.json" | quote }}') },
  };
  object(scope, 'dashboard', k8s.KubeConfigMap.GVK, dashboard);
}

/** The CRDs, as crds/ holds them, with the chart's labels and (by default) the keep policy. */
function crds(scope: Construct, documents: readonly Record<string, unknown>[]): void {
  for (const crd of documents) {
    const metadata = crd.metadata as { name: string };
    object(scope, metadata.name, k8s.KubeCustomResourceDefinition.GVK, {
      ...crd,
      metadata: {
        ...metadata,
        labels: labels('crds'),
        annotations: block(
          'merge (dict) .Values.crds.annotations ' +
            '(ternary (dict "helm.sh/resource-policy" "keep") (dict) .Values.crds.keep)',
        ),
      },
    });
  }
}

/** Every template file of the chart; `crdDocuments` are the objects of crds/*.yaml. */
export function templateFiles(crdDocuments: readonly Record<string, unknown>[]): TemplateFile[] {
  const app = new App();
  const file = (name: string, when: string | undefined, build: (scope: Construct) => void): TemplateFile => {
    const scope = new Chart(app, name);
    build(scope);
    return { name, when, objects: scope.toJson() as Record<string, unknown>[] };
  };
  return [
    file('crds.yaml', '.Values.installCRDs', (s) => crds(s, crdDocuments)),
    ...workloads().flatMap((w) => [
      file(`${w.name}.yaml`, w.when, (s) => {
        rbac(s, w);
        deployment(s, w);
      }),
      file(`${w.name}-leader-election.yaml`, `and (${w.when}) .Values.leaderElection.enabled`, (s) =>
        leaderElection(s, w),
      ),
    ]),
    file('networkpolicies.yaml', '.Values.networkPolicy.enabled', networkPolicies),
    file('podmonitor.yaml', '.Values.prometheus.podMonitor.enabled', podMonitor),
    file('prometheusrule.yaml', '.Values.prometheus.rule.enabled', (s) => monitoring(s, 'rule')),
    file('dashboard.yaml', '.Values.prometheus.dashboard.enabled', (s) => monitoring(s, 'dashboard')),
  ];
}
