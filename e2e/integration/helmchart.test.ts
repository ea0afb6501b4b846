// HelmChart against real sources: charts packaged and indexed by the Helm 4 CLI and served over
// HTTP (with basic auth), charts pushed with `helm push` to the CNCF distribution registry (with
// htpasswd auth and TLS), and chart directories in a git repository served by git http-backend.
import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { HelmChartKind, type HelmChartSpec } from '../../controllers/api/source/helmchart.ts';
import { HelmRepositoryKind, type HelmRepositorySpec } from '../../controllers/api/source/helmrepository.ts';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import type { Manager } from '../../controllers/runtime/manager.ts';
import type { HelmChart } from '../../controllers/source/helmchart/reconciler.ts';
import type { HelmRepository } from '../../controllers/source/helmrepository/reconciler.ts';
import { packageChart, startChartRepo, writeChart, type ChartRepo } from '../support/chartrepo.ts';
import { kubeConfig } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { createRepo } from '../support/git/repos.ts';
import { gitRepositoryHelpers, sourceHelpers, untar } from '../support/gitrepository.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { helmPush, startRegistry, type TestRegistry } from '../support/registry.ts';
import { startSourceManager } from '../support/source-manager.ts';

const PASSWORD = 'ch4rt-pa55word';
const REGISTRY_PASSWORD = 'reg1stry-pa55';

describe('HelmChart', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let ns: string;
  let repo: ChartRepo;
  let privateRepo: ChartRepo;
  let registry: TestRegistry;
  let gitServer: GitHttpServer;
  let manager: Manager;

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    [repo, privateRepo, registry] = await Promise.all([
      startChartRepo(),
      startChartRepo({ auth: { username: 'charts', password: PASSWORD } }),
      startRegistry({ auth: { username: 'pusher', password: REGISTRY_PASSWORD }, tls: true }),
    ]);
    for (const version of ['6.0.0', '6.1.0', '7.0.0-rc.1']) {
      await repo.publish({
        name: 'podinfo',
        version,
        values: { message: 'default', replicas: 1, nested: { a: 1, b: 2 } },
        files: { 'values-prod.yaml': 'replicas: 3\nnested:\n  b: 20\n' },
      });
    }
    await privateRepo.publish({ name: 'lib-remote', version: '1.2.0' });
    const out = mkdtempSync(join(tmpdir(), 'tide-oci-charts-'));
    for (const version of ['1.0.0', '1.1.0']) {
      const tgz = await packageChart(writeChart(mkdtempSync(join(out, 'c-')), { name: 'oci-app', version }), out);
      await helmPush(tgz, `${registry.url}/charts`, { ...registry.auth!, ca: registry.ca! });
    }
    const root = mkdtempSync(join(tmpdir(), 'tide-chart-git-'));
    await createRepo(root, 'charts', {
      files: {
        'charts/app/Chart.yaml': [
          'apiVersion: v2',
          'name: app',
          'version: 0.1.0',
          'dependencies:',
          '  - name: lib',
          '    version: 0.0.1',
          '    repository: file://../lib',
          '  - name: lib-remote',
          '    version: ">=1.0.0"',
          `    repository: ${privateRepo.url}`,
          '',
        ].join('\n'),
        'charts/app/values.yaml': 'message: from-git\n',
        'charts/app/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n',
        'charts/lib/Chart.yaml': 'apiVersion: v2\nname: lib\nversion: 0.0.1\n',
        'charts/lib/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lib\n',
        'env/prod.yaml': 'message: production\n',
      },
    });
    gitServer = await startGitHttpServer({ root });
    manager = await startSourceManager(kc, '');
  });

  after(async () => {
    await manager?.stop();
    await Promise.all([repo?.close(), privateRepo?.close(), registry?.stop(), gitServer?.close()]);
  });

  beforeEach(async function () {
    ns = await createTestNamespace(kc, this.currentTest?.title.slice(0, 30) ?? 'helmchart');
  });

  afterEach(async () => {
    await deleteNamespace(kc, ns);
  });

  const charts = sourceHelpers<HelmChart, HelmChartSpec>(HelmChartKind, {
    kc: () => kc,
    ns: () => ns,
    checkSize: true,
    readyReason: /^Chart(Pull|Package)Succeeded$/,
  });
  const repos = sourceHelpers<HelmRepository, HelmRepositorySpec>(HelmRepositoryKind, { kc: () => kc, ns: () => ns });
  const gits = gitRepositoryHelpers({ kc: () => kc, ns: () => ns });

  /** The files of a chart artifact (a .tgz of `<name>/...`). */
  async function chartFiles(o: HelmChart): Promise<Map<string, string>> {
    return untar(await charts.downloadRaw(o));
  }

  it('pulls the highest version in range from an HTTP repository, unchanged, and follows new versions', async () => {
    await repos.create('podinfo', { url: repo.url });
    await charts.create('podinfo', {
      chart: 'podinfo',
      version: '6.x',
      sourceRef: { kind: 'HelmRepository', name: 'podinfo' },
    });
    const o = await charts.ready('podinfo');
    const a = o.status!.artifact!;
    expect(a.revision).to.equal('6.1.0');
    expect(a.path).to.equal(`helmchart/${ns}/podinfo/podinfo-6.1.0.tgz`);
    expect((await charts.downloadRaw(o)).equals(readFileSync(join(repo.dir, 'podinfo-6.1.0.tgz')))).to.equal(true);
    expect(findCondition(o.status?.conditions, 'Ready')).to.include({
      reason: 'ChartPullSucceeded',
      message: "pulled 'podinfo' chart with version '6.1.0'",
    });
    expect(o.status?.observedChartName).to.equal('podinfo');
    expect(o.status?.observedSourceArtifactRevision).to.match(/^sha256:/);

    // A new version in range: the repository's new index revision rebuilds the chart by itself.
    await repo.publish({ name: 'podinfo', version: '6.2.0' });
    await repos.requestReconcile('podinfo');
    await eventually(async () => {
      expect((await charts.get('podinfo')).status?.artifact?.revision).to.equal('6.2.0');
    });
    // The default range takes the highest release, never a prerelease.
    await charts.create('latest', { chart: 'podinfo', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } });
    expect((await charts.ready('latest')).status!.artifact!.revision).to.equal('6.2.0');
  });

  it('merges values files into the packaged chart, revision <version>+<generation>', async () => {
    await repos.create('podinfo', { url: repo.url });
    await charts.create('merged', {
      chart: 'podinfo',
      version: '6.0.0',
      sourceRef: { kind: 'HelmRepository', name: 'podinfo' },
      valuesFiles: ['values.yaml', 'values-prod.yaml', 'values-missing.yaml'],
      ignoreMissingValuesFiles: true,
    });
    const o = await charts.ready('merged');
    expect(o.status!.artifact!.revision).to.equal('6.0.0+1');
    expect(o.status?.observedValuesFiles).to.deep.equal(['values.yaml', 'values-prod.yaml']);
    expect(findCondition(o.status?.conditions, 'Ready')?.reason).to.equal('ChartPackageSucceeded');
    const files = await chartFiles(o);
    expect(parse(files.get('podinfo/values.yaml')!)).to.deep.equal({
      message: 'default',
      replicas: 3,
      nested: { a: 1, b: 20 },
    });
    expect(parse(files.get('podinfo/Chart.yaml')!).version).to.equal('6.0.0+1');

    await charts.create('strict', {
      chart: 'podinfo',
      sourceRef: { kind: 'HelmRepository', name: 'podinfo' },
      valuesFiles: ['values-missing.yaml'],
    });
    const strict = await charts.notReady('strict', 'ValuesFilesError');
    expect(findCondition(strict.status?.conditions, 'Ready')?.message).to.include("'values-missing.yaml'");
  });

  it('stalls on a range matching nothing; keeps the last artifact when a chart fails its digest', async () => {
    await repos.create('podinfo', { url: repo.url });
    await charts.create('nine', {
      chart: 'podinfo',
      version: '9.*',
      sourceRef: { kind: 'HelmRepository', name: 'podinfo' },
    });
    const nine = await charts.notReady('nine', 'InvalidChartReference', { stalled: true });
    expect(findCondition(nine.status?.conditions, 'Ready')?.message).to.include(
      "no 'podinfo' chart with version matching '9.*' found",
    );

    const own = await startChartRepo();
    try {
      await own.publish({ name: 'app', version: '1.0.0' });
      await repos.create('own', { url: own.url });
      await charts.create('app', { chart: 'app', sourceRef: { kind: 'HelmRepository', name: 'own' } });
      const good = await charts.ready('app');
      // 1.1.0 is indexed, then its tarball is swapped for other bytes: the index's digest no longer matches.
      await own.publish({ name: 'app', version: '1.1.0' });
      writeFileSync(join(own.dir, 'app-1.1.0.tgz'), readFileSync(join(own.dir, 'app-1.0.0.tgz')));
      await repos.requestReconcile('own');
      const bad = await charts.notReady('app', 'ChartPullError');
      expect(findCondition(bad.status?.conditions, 'Ready')?.message).to.match(/digest/);
      expect(bad.status!.artifact).to.deep.equal(good.status!.artifact);
      await charts.downloadRaw(bad);
    } finally {
      await own.close();
    }
  });

  it('packages a chart from git with a file:// and an authenticated remote dependency', async () => {
    await repos.secret('charts-auth', { username: 'charts', password: PASSWORD });
    await repos.create('private', { url: privateRepo.url, secretRef: { name: 'charts-auth' } });
    await gits.create('charts', { url: gitServer.url('charts'), ref: { branch: 'main' } });
    const git = await gits.ready('charts');
    await charts.create('app', {
      chart: './charts/app',
      sourceRef: { kind: 'GitRepository', name: 'charts' },
      reconcileStrategy: 'Revision',
      valuesFiles: ['charts/app/values.yaml', 'env/prod.yaml'],
    });
    const o = await charts.ready('app');
    const commit = git.status!.artifact!.revision.split(':').at(-1)!;
    expect(o.status!.artifact!.revision).to.equal(`0.1.0+${commit.slice(0, 12)}`);
    expect(o.status?.observedSourceArtifactRevision).to.equal(git.status!.artifact!.revision);
    const files = await chartFiles(o);
    expect(parse(files.get('app/values.yaml')!)).to.deep.equal({ message: 'production' });
    // Helm's chart saver writes the dependencies as sub-chart directories under charts/.
    expect(parse(files.get('app/charts/lib/Chart.yaml')!).version).to.equal('0.0.1');
    expect(parse(files.get('app/charts/lib-remote/Chart.yaml')!).version).to.equal('1.2.0');
    // The remote dependency came with the HelmRepository's credentials.
    expect(privateRepo.requests.some((r) => r.path === '/lib-remote-1.2.0.tgz' && r.authorized)).to.equal(true);
    expect(JSON.stringify(o.status)).to.not.include(PASSWORD);
  });

  it('answers a chart path missing in the git artifact and an unresolvable dependency', async () => {
    await gits.create('charts', { url: gitServer.url('charts'), ref: { branch: 'main' } });
    await gits.ready('charts');
    await charts.create('nowhere', { chart: './charts/nope', sourceRef: { kind: 'GitRepository', name: 'charts' } });
    const nowhere = await charts.notReady('nowhere', 'ChartPullError');
    expect(findCondition(nowhere.status?.conditions, 'Ready')?.message).to.include("chart path './charts/nope'");
    // No HelmRepository with the private repository's credentials here: its index answers 401.
    await charts.create('nodeps', { chart: './charts/app', sourceRef: { kind: 'GitRepository', name: 'charts' } });
    const nodeps = await charts.notReady('nodeps', 'DependencyBuildError');
    expect(findCondition(nodeps.status?.conditions, 'Ready')?.message).to.include("'lib-remote'");
  });

  it('pulls from an OCI HelmRepository with credentials and a CA, by range', async () => {
    await repos.secret('reg', { username: 'pusher', password: REGISTRY_PASSWORD });
    await repos.secret('reg-ca', { 'ca.crt': registry.ca! });
    await repos.create('oci', {
      url: `${registry.url}/charts`,
      type: 'oci',
      secretRef: { name: 'reg' },
      certSecretRef: { name: 'reg-ca' },
    });
    await charts.create('oci-app', {
      chart: 'oci-app',
      version: '1.x',
      sourceRef: { kind: 'HelmRepository', name: 'oci' },
    });
    const o = await charts.ready('oci-app');
    expect(o.status!.artifact!.revision).to.equal('1.1.0');
    expect(parse((await chartFiles(o)).get('oci-app/Chart.yaml')!).version).to.equal('1.1.0');

    await repos.create('oci-anon', { url: `${registry.url}/charts`, type: 'oci', certSecretRef: { name: 'reg-ca' } });
    await charts.create('denied', { chart: 'oci-app', sourceRef: { kind: 'HelmRepository', name: 'oci-anon' } });
    const denied = await charts.notReady('denied', 'AuthenticationFailed');
    expect(JSON.stringify(denied.status)).to.not.include(REGISTRY_PASSWORD);
  });
});
