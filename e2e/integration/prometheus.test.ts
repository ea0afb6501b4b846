// Prometheus, for real: one Prometheus on loopback scrapes one tide-controller running every
// controller (as the elected leader), and evaluates the shipped alert rules; the tests ask it
// through its HTTP API. The shipped Grafana dashboard's queries are run by the same Prometheus and
// their metric names compared with what the controller exports.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { findCondition, type Condition } from '../../controllers/runtime/conditions.ts';
import { kubeConfig } from '../support/cluster.ts';
import { startController, type RunningController } from '../support/controller.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { createRepo } from '../support/git/repos.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { promtool, startPrometheus, type RunningPrometheus, type Sample } from '../support/prometheus.ts';

const monitoring = join(import.meta.dirname, '..', '..', 'charts', 'tide', 'files', 'monitoring');
const ALERTS = join(monitoring, 'alerts.yaml');
const DASHBOARD = join(monitoring, 'dashboard.json');
// The namespace a PodMonitor would attach to the scrape, pushing the objects' own namespace
// label to exported_namespace: the rules and the dashboard are checked under those conditions.
const CONTROLLER_NAMESPACE = 'tide-system';

type RulesFile = { groups: { name: string; rules: { alert?: string; expr: string; for?: string }[] }[] };

/**
 * The metric names a PromQL expression selects: its identifiers less functions, aggregations,
 * keywords, label names in grouping clauses, and what sits in strings, matchers and ranges.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'inf', 'nan']);
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || keywords.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** Grafana's variables, as an all-selection sends them. */
function withVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replace(/\$\{?(namespace|kind)\}?/g, '.*');
}

/** Every PromQL expression of a dashboard: panel targets (rows' panels too) and variable queries. */
function dashboardQueries(dashboard: {
  panels: { title: string; targets?: { expr: string }[]; panels?: unknown[] }[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const visit = (panels: typeof dashboard.panels) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      visit((p.panels ?? []) as typeof dashboard.panels);
    }
  };
  visit(dashboard.panels);
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query!.query;
    // label_values(<selector>, <label>) names its metric inside the selector.
    const m = /^label_values\((.*),\s*\w+\)$/.exec(q);
    out.push({ where: `variable "${v.name}"`, expr: m ? m[1]! : q });
  }
  return out;
}

describe('Prometheus scraping tide-controller', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let git: GitHttpServer;
  let controller: RunningController;
  let prometheus: RunningPrometheus;
  let ns: string;
  let leases: string;
  let tmp: string;
  let exposition: string;

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const ks = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
  const gr = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' };

  async function createKustomization(name: string, path: string): Promise<void> {
    await custom().createNamespacedCustomObject({
      ...ks,
      namespace: ns,
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name },
        spec: { interval: '1h', prune: true, path, sourceRef: { kind: 'GitRepository', name: 'fleet' } },
      },
    });
  }

  async function ready(ref: typeof ks, name: string, status: 'True' | 'False'): Promise<Record<string, unknown>> {
    return eventually(
      async () => {
        const o = (await custom().getNamespacedCustomObject({ ...ref, namespace: ns, name })) as {
          status?: Record<string, unknown> & { conditions?: Condition[] };
        };
        const c = findCondition(o.status?.conditions, 'Ready');
        expect(c?.status, `${name}: ${c?.reason}: ${c?.message}`).to.equal(status);
        return o.status!;
      },
      { timeoutMs: 60_000 },
    );
  }

  /** The gotk_resource_info series of the test's namespace, by object. */
  async function resourceInfo(): Promise<Sample['metric'][]> {
    const result = await prometheus.query(`gotk_resource_info{exported_namespace="${ns}"}`);
    return result.map((s) => s.metric).sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
  }

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    tmp = mkdtempSync(join(tmpdir(), 'tide-prometheus-test-'));
    git = await startGitHttpServer({ root: tmp });
    ns = await createTestNamespace(kc, 'prometheus');
    leases = await createTestNamespace(kc, 'prometheus-leases');
    await createRepo(tmp, 'fleet', {
      branch: 'main',
      files: {
        'app/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: ${ns}}
data: {a: b}
`,
      },
    });
    controller = await startController([
      '--controllers=all',
      '--enable-leader-election',
      `--leader-election-namespace=${leases}`,
    ]);
    // The shipped rules, the not-ready alert's 10m shortened so that it fires within the test.
    const rules = parse(readFileSync(ALERTS, 'utf8')) as RulesFile;
    for (const rule of rules.groups.flatMap((g) => g.rules)) if (rule.alert === 'TideResourceNotReady') rule.for = '3s';
    const rulesFile = join(tmp, 'alerts.yaml');
    writeFileSync(rulesFile, stringify(rules));
    prometheus = await startPrometheus({
      targets: [{ address: new URL(controller.metricsUrl).host, labels: { namespace: CONTROLLER_NAMESPACE } }],
      ruleFiles: [rulesFile],
      interval: '1s',
    });

    await custom().createNamespacedCustomObject({
      ...gr,
      namespace: ns,
      body: {
        apiVersion: 'source.toolkit.fluxcd.io/v1',
        kind: 'GitRepository',
        metadata: { name: 'fleet' },
        spec: { url: git.url('fleet'), interval: '1h', ref: { branch: 'main' } },
      },
    });
    await createKustomization('app', './app');
    await createKustomization('broken', './does-not-exist');
    await ready(ks, 'app', 'True');
    await ready(ks, 'broken', 'False');
    exposition = await (await fetch(controller.metricsUrl)).text();
  });

  after(async () => {
    await prometheus?.stop();
    await controller?.stop();
    await git?.close();
    if (ns) await deleteNamespace(kc, ns);
    if (leases) await deleteNamespace(kc, leases);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(prometheus?.logs().slice(-2000));
  });

  it('`promtool check metrics` accepts the exposition', async () => {
    const { code, output } = await promtool(['check', 'metrics'], exposition);
    expect(code, output).to.equal(0);
  });

  it('`promtool check rules` accepts the shipped alert rules', async () => {
    const { code, output } = await promtool(['check', 'rules', ALERTS]);
    expect(code, output).to.equal(0);
    expect(output).to.match(/SUCCESS: [1-9]\d* rules found/);
  });

  it('has reconcile durations, reconcile totals and work queue depths', async () => {
    await eventually(async () => {
      const durations = await prometheus.query(
        `gotk_reconcile_duration_seconds_count{kind="Kustomization", exported_namespace="${ns}", name="app"}`,
      );
      expect(durations, 'gotk_reconcile_duration_seconds_count').to.have.length(1);
      expect(Number(durations[0]!.value[1])).to.be.at.least(1);
      const totals = await prometheus.query('controller_runtime_reconcile_total{controller="kustomization"}');
      const byResult = Object.fromEntries(totals.map((s) => [s.metric.result, Number(s.value[1])]));
      expect(byResult.requeue_after, 'a successful Kustomization reconcile').to.be.at.least(1);
      expect(byResult.error, 'the broken Kustomization').to.be.at.least(1);
      const depths = await prometheus.query('workqueue_depth');
      expect(depths.map((s) => s.metric.name)).to.include.members(['gitrepository', 'kustomization', 'helmrelease']);
    });
  });

  it('has gotk_resource_info per object (ready, suspended, revision), replaced on change, gone on delete', async () => {
    const source = await ready(gr, 'fleet', 'True');
    const revision = (source.artifact as { revision: string }).revision;
    const common = {
      __name__: 'gotk_resource_info',
      job: 'tide',
      instance: new URL(controller.metricsUrl).host,
      namespace: CONTROLLER_NAMESPACE,
      exported_namespace: ns,
      suspended: 'false',
    };
    const kustomization = {
      customresource_group: 'kustomize.toolkit.fluxcd.io',
      customresource_version: 'v1',
      customresource_kind: 'Kustomization',
      kind: 'Kustomization',
    };
    await eventually(async () =>
      expect(await resourceInfo()).to.deep.equal([
        {
          ...common,
          customresource_group: 'source.toolkit.fluxcd.io',
          customresource_version: 'v1',
          customresource_kind: 'GitRepository',
          kind: 'GitRepository',
          name: 'fleet',
          ready: 'True',
          revision,
        },
        { ...common, ...kustomization, name: 'app', ready: 'True', revision },
        { ...common, ...kustomization, name: 'broken', ready: 'False' },
      ]),
    );

    await custom().patchNamespacedCustomObject(
      { ...ks, namespace: ns, name: 'app', body: { spec: { suspend: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually(async () => {
      const app = (await resourceInfo()).filter((m) => m.name === 'app');
      expect(app.map((m) => [m.suspended, m.ready, m.revision])).to.deep.equal([['true', 'True', revision]]);
    });

    await custom().deleteNamespacedCustomObject({ ...ks, namespace: ns, name: 'app' });
    await eventually(async () => {
      expect((await resourceInfo()).map((m) => `${m.kind}/${m.name}`)).to.deep.equal([
        'GitRepository/fleet',
        'Kustomization/broken',
      ]);
    });
  });

  it('fires TideResourceNotReady for the failing Kustomization, and only for it', async () => {
    await eventually(
      async () => {
        const alerts = (await prometheus.alerts()).filter(
          (a) => a.labels.alertname === 'TideResourceNotReady' && a.labels.exported_namespace === ns,
        );
        expect(alerts.map((a) => [a.labels.customresource_kind, a.labels.name, a.state])).to.deep.equal([
          ['Kustomization', 'broken', 'firing'],
        ]);
        expect(alerts[0]!.annotations.summary).to.equal(`Kustomization ${ns}/broken has not been ready for 10 minutes`);
      },
      { timeoutMs: 30_000 },
    );
  });

  it("the dashboard's queries run and select only metrics tide-controller exports", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    expect(dashboard).to.include.keys('title', 'uid', 'panels', 'templating', 'schemaVersion');
    const exported = new Set(
      exposition
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]),
    );
    const queries = dashboardQueries(dashboard);
    expect(queries.length).to.be.at.least(10);
    const unknown: string[] = [];
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      expect(names, `${where}: ${expr}`).to.not.be.empty;
      for (const name of names) if (!exported.has(name)) unknown.push(`${where}: ${name}`);
      await prometheus.query(withVariables(expr)).catch((err: Error) => {
        throw new Error(`${where}: ${err.message}`);
      });
    }
    expect(unknown, 'metric names tide-controller does not export').to.deep.equal([]);
  });

  it('the alert rules select only metrics tide-controller exports', () => {
    const rules = parse(readFileSync(ALERTS, 'utf8')) as RulesFile;
    const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    const names = exprs.flatMap(metricNames);
    expect(names).to.include.members(['gotk_resource_info', 'controller_runtime_reconcile_total']);
    const exported = new Set(exposition.split('\n').map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0]));
    expect(names.filter((n) => !exported.has(n))).to.deep.equal([]);
  });
});
