// charts/tide with the real Helm CLI: lint, templates with default and other values (Helm checks
// them against values.schema.json), then install, upgrade and uninstall on a control plane of its
// own, where the chart's CRDs are the only ones (the shared test cluster has crds/ applied by the
// tests, under another owner than a Helm release).
import { ApiextensionsV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { GENERAL, readCommandLine } from '../../controllers/flags.ts';
import { CONTROLLERS, selectControllers } from '../../controllers/registry.ts';
import { parseOptions } from '../../controllers/runtime/options.ts';
import { flagGroup } from '../../controllers/runtime/setup.ts';
import { apiClientFor } from '../../controllers/runtime/apply/client.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { helm } from '../support/chartrepo.ts';
import { eventually } from '../support/eventually.ts';
import {
  container,
  grants,
  helmTemplate,
  named,
  ofKind,
  podSpec,
  type Rendered,
  TIDE_CHART,
} from '../support/helm-chart.ts';

const NS = 'tide-system';
const crdNames = readdirSync(join(import.meta.dirname, '..', '..', 'crds'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) =>
    f
      .replace(/\.yaml$/, '')
      .split('_')
      .reverse()
      .join('.'),
  );
const KEEP = 'helm.sh/resource-policy';

const args = (d: Rendered) => container(d).args;

/** Reads a Deployment's args as tide-controller does at start; throws what it would exit with. */
function acceptedByTideController(d: Rendered): void {
  const raw = readCommandLine(args(d));
  const { controllers } = parseOptions(GENERAL, raw);
  for (const c of selectControllers(controllers).selected) parseOptions(flagGroup(c), raw);
}
const annotations = (o: KubernetesObject) => o.metadata?.annotations ?? {};

describe('charts/tide', function () {
  this.timeout(120_000);

  it('passes helm lint --strict', async () => {
    const out = await helm(['lint', '--strict', TIDE_CHART]);
    expect(out).to.include('1 chart(s) linted, 0 chart(s) failed');
  });

  describe('helm template with the default values', () => {
    let objects: Rendered[];
    before(async () => {
      objects = await helmTemplate(NS);
    });

    it('has one Deployment per controller of this build, args tide-controller accepts, its own ServiceAccount', () => {
      const deployments = ofKind(objects, 'Deployment');
      expect(deployments.map((d) => d.metadata!.name)).to.have.members(CONTROLLERS.map((c) => `${c.name}-controller`));
      for (const c of CONTROLLERS) {
        const d = named(objects, 'Deployment', `${c.name}-controller`);
        expect(args(d)).to.include(`--controllers=${c.name}`);
        acceptedByTideController(d);
        expect(podSpec(d).serviceAccountName).to.equal(`${c.name}-controller`);
        expect(named(objects, 'ServiceAccount', `${c.name}-controller`).metadata!.namespace).to.equal(NS);
      }
    });

    it('runs each container locked down, with probes, ports, resources and leader election', () => {
      for (const d of ofKind(objects, 'Deployment')) {
        const c = container(d);
        expect(c.image).to.equal(`ghcr.io/tide-gitops/tide-controller:${chartVersion()}`);
        expect(c.securityContext).to.deep.equal({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(podSpec(d).securityContext).to.deep.include({ runAsNonRoot: true });
        expect(c.volumeMounts).to.deep.equal([
          { name: 'data', mountPath: '/data' },
          { name: 'tmp', mountPath: '/tmp' },
        ]);
        expect(podSpec(d).volumes).to.deep.equal([
          { name: 'data', emptyDir: {} },
          { name: 'tmp', emptyDir: {} },
        ]);
        expect(c.livenessProbe).to.deep.equal({ httpGet: { path: '/healthz', port: 'healthz' } });
        expect(c.readinessProbe).to.deep.equal({ httpGet: { path: '/readyz', port: 'healthz' } });
        expect(c.ports).to.deep.include.members([
          { name: 'http-prom', containerPort: 8080, protocol: 'TCP' },
          { name: 'healthz', containerPort: 9440, protocol: 'TCP' },
        ]);
        expect(c.resources).to.deep.equal({ requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '1Gi' } });
        expect(args(d)).to.include.members([
          '--metrics-addr=:8080',
          '--health-addr=:9440',
          '--enable-leader-election=true',
          `--leader-election-id=${d.metadata!.name}-leader-election`,
          '--watch-label-selector=',
        ]);
        // The Lease lives in the release's namespace, granted there only.
        expect(grants(objects, d.metadata!.name!).namespaced).to.have.keys(
          'coordination.k8s.io leases get',
          'coordination.k8s.io leases create',
          'coordination.k8s.io leases update',
        );
      }
    });

    it('grants the source controller its kinds and reading Secrets, nothing more', () => {
      const { cluster } = grants(objects, 'source-controller');
      expect(cluster).to.include('source.toolkit.fluxcd.io gitrepositories/status patch');
      expect(cluster).to.include(' secrets get');
      const writes = [...cluster].filter((p) => !/ (get|list|watch)$/.test(p));
      expect(writes.every((p) => p.startsWith('source.toolkit.fluxcd.io ') || p.startsWith(' events '))).to.equal(
        true,
        writes.join(', '),
      );
      expect([...cluster].filter((p) => p.includes(' secrets '))).to.deep.equal([' secrets get']);
      for (const role of [...ofKind(objects, 'ClusterRole'), ...ofKind(objects, 'Role')]) {
        const words = (role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]).flatMap((r) => [
          ...r.apiGroups,
          ...r.resources,
          ...r.verbs,
        ]);
        expect(words, role.metadata!.name).not.to.include('*');
      }
    });

    it('binds cluster-admin only to the controllers that apply arbitrary objects', () => {
      const admins = ofKind(objects, 'ClusterRoleBinding')
        .filter((b) => (b.roleRef as { name: string }).name === 'cluster-admin')
        .flatMap((b) => (b.subjects as { name: string }[]).map((s) => s.name));
      expect(admins).to.have.members(
        CONTROLLERS.filter((c) => c.rbac.appliesAnyObject).map((c) => `${c.name}-controller`),
      );
      expect(admins).to.include.members(['kustomize-controller', 'helm-controller']);
    });

    it("serves the source controller's artifacts through a Service its --storage-adv-addr names", () => {
      const service = named(objects, 'Service', 'source-controller');
      const spec = service.spec as { selector: Record<string, string>; ports: unknown[] };
      expect(spec.ports).to.deep.equal([{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }]);
      const source = named(objects, 'Deployment', 'source-controller');
      const podLabels = (source.spec as { template: { metadata: { labels: Record<string, string> } } }).template
        .metadata.labels;
      expect(podLabels).to.include(spec.selector);
      expect(container(source).ports).to.deep.include({ name: 'http', containerPort: 9090, protocol: 'TCP' });
      expect(args(source)).to.include.members([
        '--storage-addr=:9090',
        `--storage-adv-addr=source-controller.${NS}.svc.cluster.local.`,
        '--storage-path=/data',
      ]);
    });

    it('installs every CRD of crds/ with the keep policy, NetworkPolicies, and no PodMonitor', () => {
      const crds = ofKind(objects, 'CustomResourceDefinition');
      expect(crds.map((c) => c.metadata!.name)).to.have.members(crdNames);
      for (const crd of crds) expect(annotations(crd)).to.deep.equal({ [KEEP]: 'keep' });
      expect(ofKind(objects, 'NetworkPolicy').map((p) => p.metadata!.name)).to.have.members([
        'tide-allow-egress',
        'tide-allow-scraping',
      ]);
      expect(ofKind(objects, 'PodMonitor')).to.deep.equal([]);
    });
  });

  describe('helm template with other values', () => {
    it('combined: one Deployment running all controllers with the union of their permissions', async () => {
      const split = await helmTemplate(NS);
      const combined = await helmTemplate(NS, ['mode=combined']);
      const deployments = ofKind(combined, 'Deployment');
      expect(deployments.map((d) => d.metadata!.name)).to.deep.equal(['tide-controller']);
      const d = deployments[0]!;
      acceptedByTideController(d);
      expect(args(d)).to.include.members([
        '--controllers=all',
        '--storage-path=/data/source',
        '--image-storage-path=/data/image',
      ]);
      const union = CONTROLLERS.flatMap((c) => [...grants(split, `${c.name}-controller`).cluster]);
      expect([...grants(combined, 'tide-controller').cluster]).to.include.members(union);
      const selector = (named(combined, 'Service', 'source-controller').spec as { selector: object }).selector;
      expect((d.spec as { selector: { matchLabels: object } }).selector.matchLabels).to.deep.equal(selector);
      const applies = ofKind(combined, 'ClusterRoleBinding').map((b) => (b.roleRef as { name: string }).name);
      expect(applies).to.include('cluster-admin');
    });

    it('a shard: names and Lease suffixed, its label selected, no CRDs', async () => {
      const objects = await helmTemplate(NS, ['sharding.shard=shard1', 'installCRDs=false'], 'tide-shard1');
      expect(ofKind(objects, 'Deployment').map((d) => d.metadata!.name)).to.have.members(
        CONTROLLERS.map((c) => `${c.name}-controller-shard1`),
      );
      const source = named(objects, 'Deployment', 'source-controller-shard1');
      acceptedByTideController(source);
      expect(args(source)).to.include.members([
        '--watch-label-selector=sharding.fluxcd.io/key in (shard1)',
        '--leader-election-id=source-controller-shard1-leader-election',
        `--storage-adv-addr=source-controller-shard1.${NS}.svc.cluster.local.`,
      ]);
      expect(podSpec(source).serviceAccountName).to.equal('source-controller-shard1');
      expect(ofKind(objects, 'CustomResourceDefinition')).to.deep.equal([]);
      const main = await helmTemplate(NS, ['watchLabelSelector=!sharding.fluxcd.io/key', 'installCRDs=false']);
      expect(args(named(main, 'Deployment', 'kustomize-controller'))).to.include(
        '--watch-label-selector=!sharding.fluxcd.io/key',
      );
    });

    it('a PodMonitor, a narrower ClusterRole, one controller off, no keep policy, no NetworkPolicies', async () => {
      const objects = await helmTemplate(NS, [
        'prometheus.podMonitor.enabled=true',
        'prometheus.podMonitor.labels.release=prometheus',
        'controllers.kustomize.clusterRole=tide-apply-apps',
        'controllers.image.enabled=false',
        'crds.keep=false',
        'networkPolicy.enabled=false',
        'controllers.source.replicas=2',
        'image.tag=1.2.3',
      ]);
      const monitor = named(objects, 'PodMonitor', 'tide');
      expect(monitor.metadata!.labels).to.include({ release: 'prometheus' });
      const spec = monitor.spec as { selector: { matchLabels: object }; podMetricsEndpoints: { port: string }[] };
      expect(spec.podMetricsEndpoints.map((e) => e.port)).to.deep.equal(['http-prom']);
      for (const d of ofKind(objects, 'Deployment')) {
        const labels = (d.spec as { template: { metadata: { labels: object } } }).template.metadata.labels;
        expect(labels).to.include(spec.selector.matchLabels);
      }
      const roleOf = (sa: string) =>
        ofKind(objects, 'ClusterRoleBinding')
          .filter((b) => (b.subjects as { name: string }[])[0]!.name === sa)
          .map((b) => (b.roleRef as { name: string }).name);
      expect(roleOf('kustomize-controller')).to.include('tide-apply-apps').and.not.include('cluster-admin');
      expect(roleOf('helm-controller')).to.include('cluster-admin');
      expect(ofKind(objects, 'Deployment').map((d) => d.metadata!.name)).not.to.include('image-controller');
      expect(ofKind(objects, 'ServiceAccount').map((d) => d.metadata!.name)).not.to.include('image-controller');
      for (const crd of ofKind(objects, 'CustomResourceDefinition')) expect(annotations(crd)).not.to.have.key(KEEP);
      expect(ofKind(objects, 'NetworkPolicy')).to.deep.equal([]);
      const source = named(objects, 'Deployment', 'source-controller');
      expect((source.spec as { replicas: number }).replicas).to.equal(2);
      expect(container(source).image).to.equal('ghcr.io/tide-gitops/tide-controller:1.2.3');
    });

    it('files/monitoring as a PrometheusRule and a Grafana dashboard ConfigMap', async () => {
      const objects = await helmTemplate(NS, [
        'prometheus.rule.enabled=true',
        'prometheus.rule.labels.release=prometheus',
        'prometheus.dashboard.enabled=true',
      ]);
      const monitoring = join(TIDE_CHART, 'files', 'monitoring');
      const rule = named(objects, 'PrometheusRule', 'tide');
      expect(rule.metadata!.labels).to.include({ release: 'prometheus', 'app.kubernetes.io/instance': 'tide' });
      expect(rule.spec).to.deep.equal(parse(readFileSync(join(monitoring, 'alerts.yaml'), 'utf8')));
      const dashboard = named(objects, 'ConfigMap', 'tide-dashboard');
      expect(dashboard.metadata!.labels).to.include({ grafana_dashboard: '1' });
      expect((dashboard.data as Record<string, string>)['tide.json']).to.equal(
        readFileSync(join(monitoring, 'dashboard.json'), 'utf8'),
      );
      const defaults = await helmTemplate(NS);
      expect([...ofKind(defaults, 'PrometheusRule'), ...ofKind(defaults, 'ConfigMap')]).to.deep.equal([]);
    });
  });

  describe('helm install, upgrade and uninstall on a control plane of its own', () => {
    let cluster: LocalCluster;
    let kc: KubeConfig;
    let manifest: Rendered[] = [];
    const run = (...a: string[]) => helm([...a, `--kubeconfig=${cluster.kubeconfigPath}`]);

    before(async () => {
      cluster = new LocalCluster({ stateDir: mkdtempSync(join(tmpdir(), 'tide-chart-cluster-')) });
      await cluster.start();
      kc = new KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
    });

    after(async () => {
      await cluster?.stop();
      if (cluster && !process.env.TIDE_KEEP_TEST_STATE) rmSync(cluster.stateDir, { recursive: true, force: true });
    });

    async function live(o: KubernetesObject): Promise<KubernetesObject | undefined> {
      const client = apiClientFor(kc);
      const res = await client.resourceFor(o.apiVersion!, o.kind!);
      if (!res) return undefined;
      return client.get(res, { name: o.metadata!.name!, namespace: o.metadata!.namespace ?? '' });
    }

    async function releaseManifest(): Promise<Rendered[]> {
      const out = await run('get', 'manifest', 'tide', `--namespace=${NS}`);
      return parseAllDocuments(out)
        .map((d) => d.toJS() as Rendered | null)
        .filter((o): o is Rendered => Boolean(o?.kind));
    }

    it('refuses a value of the wrong type and an unknown controller, naming the value', async () => {
      const refused = async (set: string) => {
        const err = await run('install', 'tide', TIDE_CHART, `--namespace=${NS}`, '--create-namespace', '--set', set)
          .then(() => undefined)
          .catch((e: Error) => e);
        expect(err, `helm install --set ${set}`).to.be.instanceOf(Error);
        return err!.message;
      };
      expect(await refused('controllers.source.replicas=two')).to.include(
        "at '/controllers/source/replicas': got string, want integer",
      );
      expect(await refused('controllers.notifications.enabled=true')).to.include(
        "at '/controllers': additional properties 'notifications' not allowed",
      );
      expect(await refused('mode=merged')).to.include("at '/mode'");
      expect((await run('list', '--all-namespaces', '--short')).trim()).to.equal('');
    });

    it('installs everything, and the CRDs become Established', async () => {
      await run('install', 'tide', TIDE_CHART, `--namespace=${NS}`, '--create-namespace');
      manifest = await releaseManifest();
      expect(ofKind(manifest, 'Deployment')).to.have.length(CONTROLLERS.length);
      for (const o of manifest) expect(await live(o), `${o.kind} ${o.metadata!.name}`).to.not.equal(undefined);
      const ext = kc.makeApiClient(ApiextensionsV1Api);
      for (const name of crdNames) {
        await eventually(async () => {
          const crd = await ext.readCustomResourceDefinition({ name });
          expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status, name).to.equal('True');
        });
      }
    });

    it('upgrades: changed values show in the objects, objects no longer rendered are deleted', async () => {
      await run(
        'upgrade',
        'tide',
        TIDE_CHART,
        `--namespace=${NS}`,
        '--set',
        'mode=combined',
        '--set',
        'logLevel=debug',
      );
      for (const c of CONTROLLERS) {
        const old = named(manifest, 'Deployment', `${c.name}-controller`);
        expect(await live(old), old.metadata!.name).to.equal(undefined);
      }
      const combined = (await live(named(await releaseManifest(), 'Deployment', 'tide-controller'))) as Rendered;
      expect(args(combined)).to.include.members(['--controllers=all', '--log-level=debug']);
      const service = (await live(named(manifest, 'Service', 'source-controller'))) as Rendered;
      expect((service.spec as { selector: { app: string } }).selector.app).to.equal('tide-controller');
    });

    it('uninstalls everything but the CRDs', async () => {
      const installed = await releaseManifest();
      await run('uninstall', 'tide', `--namespace=${NS}`);
      for (const o of installed) {
        const found = await live(o);
        if (o.kind === 'CustomResourceDefinition') expect(found, o.metadata!.name).to.not.equal(undefined);
        else expect(found, `${o.kind} ${o.metadata!.name}`).to.equal(undefined);
      }
      const ext = kc.makeApiClient(ApiextensionsV1Api);
      const left = (await ext.listCustomResourceDefinition()).items.map((c) => c.metadata!.name);
      expect(left).to.include.members(crdNames);
    });
  });
});

function chartVersion(): string {
  return (
    JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
  ).version;
}
