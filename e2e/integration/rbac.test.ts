// The chart's RBAC, proven: charts/tide rendered by the real `helm template`, its ServiceAccounts
// and RBAC applied with kubectl, and one tide-controller per controller run out of cluster with
// nothing but its own ServiceAccount's token (`kubectl create token`) and the Deployment's own
// args. Each controller's kinds reconcile to Ready, in split and in combined mode; with one
// permission taken away, the object says which verb on which resource was refused and the
// controller keeps retrying until it is given back; a refused list, which no object can show,
// is named by /readyz.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelmReleaseKind } from '../../controllers/api/helm/helmrelease.ts';
import { ImagePolicyKind } from '../../controllers/api/image/imagepolicy.ts';
import { ImageRepositoryKind } from '../../controllers/api/image/imagerepository.ts';
import { resourceTypeOf, type KindDefinition } from '../../controllers/api/kind.ts';
import { KustomizationKind } from '../../controllers/api/kustomize/kustomization.ts';
import { GitRepositoryKind } from '../../controllers/api/source/gitrepository.ts';
import { HelmRepositoryKind } from '../../controllers/api/source/helmrepository.ts';
import { apiClientFor, type LiveObject } from '../../controllers/runtime/apply/client.ts';
import { findCondition, type Condition } from '../../controllers/runtime/conditions.ts';
import { startChartRepo, type ChartRepo } from '../support/chartrepo.ts';
import { kubeConfig } from '../support/cluster.ts';
import { startController, type RunningController } from '../support/controller.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { createRepo } from '../support/git/repos.ts';
import { helmTemplate } from '../support/helm-chart.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { pushArtifact, startRegistry, type TestRegistry } from '../support/registry.ts';
import {
  canI,
  chartControllers,
  kubectl,
  kubectlApply,
  rbacObjects,
  serviceAccountKubeconfig,
  withoutPermission,
  type ChartController,
} from '../support/serviceaccount.ts';

const LABEL = 'tide.test/suite';
const labels = { [LABEL]: 'rbac' };
const GIT_AUTH = { username: 'fleet', password: 'rbac-pr00f' };

/** The value of the sample `name` whose labels include `want`, from a Prometheus text exposition. */
function sample(text: string, name: string, want: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(want).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

describe("the chart's RBAC, with each controller's own ServiceAccount token", function () {
  this.timeout(240_000);
  let kc: KubeConfig;
  // Where the chart is "installed" (its ServiceAccounts, Roles, leases) and where the objects live.
  let system: string;
  let ns: string;
  let release: string;
  let chart: KubernetesObject[];
  /** The combined mode's rendering, applied by its test. */
  let combined: KubernetesObject[] = [];
  let deployments: ChartController[];
  const running = new Map<string, RunningController>();
  let git: GitHttpServer;
  let charts: ChartRepo;
  let registry: TestRegistry;

  function controller(name: string): ChartController {
    const c = deployments.find((d) => d.name === name);
    if (!c) throw new Error(`the chart has no Deployment with --controllers=${name}`);
    return c;
  }

  /** tide-controller with a Deployment's args, as its ServiceAccount, for the objects of `suite`. */
  async function start(c: ChartController, suite = 'rbac', waitReady = true): Promise<RunningController> {
    const tags = mkdtempSync(join(tmpdir(), 'tide-rbac-tags-'));
    return startController(
      [
        ...c.args,
        `--watch-label-selector=${LABEL}=${suite}`,
        ...(c.name === 'image' || c.name === 'all' ? [`--image-storage-path=${tags}`] : []),
      ],
      {
        kubeconfig: await serviceAccountKubeconfig(system, c.serviceAccount),
        env: { RUNTIME_NAMESPACE: system },
        waitReady,
      },
    );
  }

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    system = await createTestNamespace(kc, 'tide-system');
    ns = await createTestNamespace(kc, 'rbac');
    // Cluster-scoped names differ from those of any other release of the chart in this cluster.
    release = `rbac-${system.slice(-6)}`;
    chart = await helmTemplate(system, [], release);
    deployments = chartControllers(chart);
    await kubectlApply(rbacObjects(chart));
    const root = mkdtempSync(join(tmpdir(), 'tide-rbac-git-'));
    [git, charts, registry] = await Promise.all([
      startGitHttpServer({ root, auth: GIT_AUTH }),
      startChartRepo(),
      startRegistry(),
    ]);
    await createRepo(root, 'fleet', {
      files: { 'configmap.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git\ndata:\n  a: b\n' },
    });
    await charts.publish({
      name: 'app',
      version: '1.0.0',
      values: {},
      templates: {
        'configmap.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  a: b\n',
      },
    });
    const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', bytes: 'layer' };
    for (const tag of ['1.0.0', '1.1.0']) await pushArtifact(registry, 'team/app', tag, { layers: [layer] });
    await kubectl([
      'create',
      'secret',
      'generic',
      'git-auth',
      `--namespace=${ns}`,
      `--from-literal=username=${GIT_AUTH.username}`,
      `--from-literal=password=${GIT_AUTH.password}`,
    ]);
    // Every controller of the chart, so that one added later is at least proven to start and sync.
    const started = await Promise.all(deployments.map((d) => start(d)));
    for (const [i, d] of deployments.entries()) running.set(d.name, started[i]!);
  });

  after(async () => {
    await Promise.all([...running.values()].map((c) => c.stop()));
    await deleteNamespace(kc, ns);
    await deleteNamespace(kc, system);
    // The cluster-scoped ones outlive the namespace; a later `helm install` of the chart must not meet them.
    for (const kind of ['ClusterRoleBinding', 'ClusterRole']) {
      const all = rbacObjects([...(chart ?? []), ...combined]);
      const names = all.flatMap((o) => (o.kind === kind ? [o.metadata!.name!] : []));
      if (names.length) await kubectl(['delete', kind.toLowerCase(), ...names, '--ignore-not-found']);
    }
    await Promise.all([git?.close(), charts?.close(), registry?.stop()]);
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const [name, c] of running)
      console.log(
        `--- ${name} ---\n${c
          .logs()
          .split('\n')
          .filter((l) => l.includes('"level":"error"'))
          .slice(-10)
          .join('\n')}`,
      );
  });

  async function apply(kind: KindDefinition, name: string, spec: Record<string, unknown>, suite = 'rbac') {
    const rt = resourceTypeOf(kind);
    const obj = {
      apiVersion: `${rt.group}/${rt.version}`,
      kind: rt.kind,
      metadata: { name, namespace: ns, labels: { [LABEL]: suite } },
      spec,
    };
    await apiClientFor(kc).apply(rt, obj, { fieldManager: 'tide-test', force: true });
  }

  async function ready(kind: KindDefinition, name: string): Promise<Condition | undefined> {
    const obj = (await apiClientFor(kc).get(resourceTypeOf(kind), { namespace: ns, name })) as LiveObject | undefined;
    return findCondition((obj?.status?.conditions ?? []) as Condition[], 'Ready');
  }

  async function waitReady(kind: KindDefinition, name: string, status = 'True'): Promise<Condition> {
    return eventually(
      async () => {
        const c = await ready(kind, name);
        if (c?.status !== status) throw new Error(`Ready is ${c?.status} ${c?.reason}: ${c?.message}`);
        return c;
      },
      { timeoutMs: 60_000, message: `${kind.kind} ${name} Ready=${status}` },
    );
  }

  async function requestReconcile(kind: KindDefinition, name: string): Promise<void> {
    await apiClientFor(kc).jsonPatch(
      resourceTypeOf(kind),
      { namespace: ns, name },
      [{ op: 'add', path: '/metadata/annotations', value: { 'reconcile.fluxcd.io/requestedAt': `${Date.now()}` } }],
      'tide-test',
    );
  }

  async function metric(name: string, metricName: string, want: Record<string, string>): Promise<number> {
    return sample(await (await fetch(running.get(name)!.metricsUrl)).text(), metricName, want);
  }

  it('source + kustomize: a GitRepository with credentials and a Kustomization become Ready', async () => {
    await apply(GitRepositoryKind, 'fleet', {
      url: git.url('fleet'),
      interval: '1h',
      ref: { branch: 'main' },
      secretRef: { name: 'git-auth' },
    });
    await apply(KustomizationKind, 'fleet', {
      interval: '1h',
      path: './',
      prune: true,
      targetNamespace: ns,
      sourceRef: { kind: 'GitRepository', name: 'fleet' },
    });
    await waitReady(GitRepositoryKind, 'fleet');
    await waitReady(KustomizationKind, 'fleet');
    expect(await kubectl(['get', 'configmap', 'from-git', `--namespace=${ns}`, '-o=jsonpath={.data.a}'])).to.equal('b');
  });

  it('helm: a HelmRelease from a HelmRepository becomes Ready', async () => {
    await apply(HelmRepositoryKind, 'charts', { url: charts.url, interval: '1h' });
    await apply(HelmReleaseKind, 'app', {
      interval: '1h',
      chart: {
        metadata: { labels },
        spec: { chart: 'app', version: '1.0.0', sourceRef: { kind: 'HelmRepository', name: 'charts' } },
      },
    });
    const c = await waitReady(HelmReleaseKind, 'app');
    expect(c.reason).to.equal('InstallSucceeded');
    expect(await kubectl(['get', 'configmap', 'app', `--namespace=${ns}`, '-o=jsonpath={.data.a}'])).to.equal('b');
  });

  it('image: an ImageRepository and an ImagePolicy become Ready', async () => {
    await apply(ImageRepositoryKind, 'app', { image: `${registry.host}/team/app`, interval: '1h', insecure: true });
    await apply(ImagePolicyKind, 'app', { imageRepositoryRef: { name: 'app' }, policy: { semver: { range: '1.x' } } });
    await waitReady(ImageRepositoryKind, 'app');
    await waitReady(ImagePolicyKind, 'app');
    const policy = await apiClientFor(kc).get(resourceTypeOf(ImagePolicyKind), { namespace: ns, name: 'app' });
    expect((policy?.status as { latestRef?: { tag?: string } } | undefined)?.latestRef?.tag).to.equal('1.1.0');
  });

  it('combined: --controllers=all, with the union of the permissions, reconciles them too', async () => {
    combined = await helmTemplate(system, ['mode=combined'], `${release}-all`);
    await kubectlApply(rbacObjects(combined));
    const [all, ...more] = chartControllers(combined);
    expect(more).to.deep.equal([]);
    expect(all!.name).to.equal('all');
    const one = await start(all!, 'rbac-combined');
    try {
      await apply(
        GitRepositoryKind,
        'combined',
        { url: git.url('fleet'), interval: '1h', ref: { branch: 'main' }, secretRef: { name: 'git-auth' } },
        'rbac-combined',
      );
      await apply(
        KustomizationKind,
        'combined',
        {
          interval: '1h',
          path: './',
          prune: true,
          targetNamespace: system,
          sourceRef: { kind: 'GitRepository', name: 'combined' },
        },
        'rbac-combined',
      );
      await waitReady(KustomizationKind, 'combined');
      expect(
        await kubectl(['get', 'configmap', 'from-git', `--namespace=${system}`, '-o=jsonpath={.data.a}']),
      ).to.equal('b');
    } finally {
      await one.stop();
    }
  });

  it('source without `get` on secrets: Ready=False names verb and resource; retried until allowed again', async () => {
    await waitReady(GitRepositoryKind, 'fleet');
    const source = controller('source');
    const sa = { namespace: system, name: source.serviceAccount };
    await kubectlApply(withoutPermission(chart, sa, { apiGroup: '', resource: 'secrets', verb: 'get' }));
    try {
      await eventually(async () => expect(await canI(sa, 'get', 'secrets', ns)).to.equal(false));
      const errors = { controller: 'gitrepository', result: 'error' };
      const retries = { name: 'gitrepository' };
      const errorsBefore = await metric('source', 'controller_runtime_reconcile_total', errors);
      const retriesBefore = await metric('source', 'workqueue_retries_total', retries);
      await requestReconcile(GitRepositoryKind, 'fleet');
      const refused = await waitReady(GitRepositoryKind, 'fleet', 'False');
      expect(refused.reason).to.equal('AuthenticationFailed');
      expect(refused.message).to.equal(
        `cannot read secret '${ns}/git-auth': secrets "git-auth" is forbidden: User ` +
          `"system:serviceaccount:${system}:${source.serviceAccount}" cannot get resource "secrets" ` +
          `in API group "" in the namespace "${ns}"`,
      );
      // One request, and at least a second attempt: it can only come from the rate-limited queue.
      await eventually(async () => {
        expect(await metric('source', 'controller_runtime_reconcile_total', errors)).to.be.at.least(errorsBefore + 2);
        expect(await metric('source', 'workqueue_retries_total', retries)).to.be.at.least(retriesBefore + 2);
      });
      expect(await ready(GitRepositoryKind, 'fleet')).to.include({ status: 'False', message: refused.message });
    } finally {
      await kubectlApply(rbacObjects(chart));
    }
    // Given back, the permission is picked up by the backoff's next attempt.
    const c = await waitReady(GitRepositoryKind, 'fleet');
    expect(c.reason).to.equal('Succeeded');
  });

  it('source without `list` on GitRepositories: /readyz names the refused list until it is allowed again', async () => {
    const source = controller('source');
    const sa = { namespace: system, name: source.serviceAccount };
    const permission = { apiGroup: 'source.toolkit.fluxcd.io', resource: 'gitrepositories', verb: 'list' };
    await kubectlApply(withoutPermission(chart, sa, permission));
    let second: RunningController | undefined;
    try {
      await eventually(async () =>
        expect(await canI(sa, 'list', 'gitrepositories.source.toolkit.fluxcd.io')).to.equal(false),
      );
      second = await start(source, 'rbac', false);
      const readyz = `${second.healthUrl}/readyz`;
      await eventually(async () => {
        const res = await fetch(readyz);
        expect(res.status).to.equal(503);
        expect(await res.text()).to.include(
          `GitRepository (gitrepositories.source.toolkit.fluxcd.io is forbidden: User ` +
            `"system:serviceaccount:${system}:${source.serviceAccount}" cannot list resource "gitrepositories" ` +
            'in API group "source.toolkit.fluxcd.io" at the cluster scope)',
        );
      });
      await kubectlApply(rbacObjects(chart));
      await eventually(async () => expect((await fetch(readyz)).status).to.equal(200), { timeoutMs: 60_000 });
    } finally {
      await kubectlApply(rbacObjects(chart));
      await second?.stop();
    }
  });
});
