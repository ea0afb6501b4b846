// The controller runtime against a real kube-apiserver: informers, the reconcile loop with status
// and events, leader election, and the metrics and health endpoints.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { GitRepositoryKind } from '../../controllers/api/source/gitrepository.ts';
import { resourceTypeOf } from '../../controllers/api/kind.ts';
import { findCondition, type Condition } from '../../controllers/runtime/conditions.ts';
import type { Reconciler, ManagedObject } from '../../controllers/runtime/controller.ts';
import { Informer } from '../../controllers/runtime/informer.ts';
import { Manager } from '../../controllers/runtime/manager.ts';
import { Metrics } from '../../controllers/runtime/metrics.ts';
import { stalled } from '../../controllers/runtime/outcome.ts';
import type { ResourceType } from '../../controllers/runtime/resource.ts';
import { kubeConfig, testCluster } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { testLogger } from '../support/logger.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { freePort } from '../support/net.ts';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = join(import.meta.dirname, '..', '..', 'controllers', 'cli', 'main.ts');
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const logger = testLogger();
const configMaps: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};
const gitRepos = resourceTypeOf(GitRepositoryKind);

type Repo = ManagedObject<{
  conditions?: Condition[];
  observedGeneration?: number;
  lastHandledReconcileAt?: string;
}> & {
  spec: { url: string; interval: string };
};

/** Records who reconciled what; fails objects whose URL says so. */
class RecordingReconciler implements Reconciler<Repo> {
  readonly seen: string[] = [];
  readonly id: string;
  constructor(id: string) {
    this.id = id;
  }
  async reconcile(obj: Repo) {
    this.seen.push(obj.metadata!.name!);
    if (obj.spec.url.includes('stall')) throw stalled('InvalidSpec', `url ${obj.spec.url} is not usable`);
    return {
      type: 'success' as const,
      reason: 'Succeeded',
      message: `reconciled by ${this.id}`,
      requeueAfterMs: 60 * 60_000,
    };
  }
}

function repo(name: string, namespace: string, url = 'https://example.com/repo.git'): Repo {
  return {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'GitRepository',
    metadata: { name, namespace },
    spec: { url, interval: '1h' },
  };
}

async function createRepo(kc: KubeConfig, obj: Repo): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: gitRepos.group,
    version: gitRepos.version,
    namespace: obj.metadata!.namespace!,
    plural: gitRepos.plural,
    body: obj,
  });
}

async function getRepo(kc: KubeConfig, namespace: string, name: string): Promise<Repo> {
  return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: gitRepos.group,
    version: gitRepos.version,
    namespace,
    plural: gitRepos.plural,
    name,
  })) as Repo;
}

async function readyOf(kc: KubeConfig, namespace: string, name: string): Promise<Condition> {
  const r = await getRepo(kc, namespace, name);
  const ready = findCondition(r.status?.conditions, 'Ready');
  if (!ready) throw new Error(`${name} has no Ready condition yet`);
  return ready;
}

describe('controller runtime on a real API server', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let ns: string;

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
  });

  beforeEach(async function () {
    ns = await createTestNamespace(kc, this.currentTest?.title.slice(0, 30) ?? 'runtime');
  });

  afterEach(async () => {
    await deleteNamespace(kc, ns);
  });

  describe('informer', () => {
    it('sees adds, updates with old/new pairs, deletes, and keeps an index', async () => {
      const core = kc.makeApiClient(CoreV1Api);
      const inf = new Informer<KubernetesObject & { data?: Record<string, string> }>(kc, configMaps, {
        namespace: ns,
        logger,
      });
      inf.addIndex('by-app', (o) => (o.metadata?.labels?.app ? [o.metadata.labels.app] : []));
      const updates: [string | undefined, string | undefined][] = [];
      const deleted: string[] = [];
      inf.on({
        update: (o, n) => updates.push([o.data?.v, n.data?.v]),
        delete: (o) => deleted.push(o.metadata!.name!),
      });
      await core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: 'a', labels: { app: 'web' } }, data: { v: '1' } },
      });
      await inf.start();
      await inf.synced;
      expect(inf.get(`${ns}/a`)?.data?.v).to.equal('1');
      expect(inf.byIndex('by-app', 'web').map((o) => o.metadata!.name)).to.deep.equal(['a']);

      await core.patchNamespacedConfigMap({
        name: 'a',
        namespace: ns,
        body: [{ op: 'replace', path: '/data/v', value: '2' }],
      });
      await eventually(async () => expect(updates).to.deep.include(['1', '2']));
      await core.deleteNamespacedConfigMap({ name: 'a', namespace: ns });
      await eventually(async () => expect(deleted).to.deep.equal(['a']));
      expect(inf.byIndex('by-app', 'web')).to.deep.equal([]);
      await inf.stop();
    });

    it('resumes after kube-apiserver is killed and restarted, and sees what changed meanwhile', async () => {
      const core = kc.makeApiClient(CoreV1Api);
      const inf = new Informer(kc, configMaps, { namespace: ns, logger, minBackoffMs: 200, maxBackoffMs: 2000 });
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'before' } } });
      await inf.start();
      await inf.synced;
      expect(inf.get(`${ns}/before`)).to.not.equal(undefined);

      const cluster = testCluster();
      await cluster.stopApiServer();
      await cluster.startApiServer();

      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'after' } } });
      await core.deleteNamespacedConfigMap({ name: 'before', namespace: ns });
      await eventually(
        async () => {
          expect(inf.get(`${ns}/after`), 'created after the restart').to.not.equal(undefined);
          expect(inf.get(`${ns}/before`), 'deleted after the restart').to.equal(undefined);
        },
        { timeoutMs: 60_000, message: 'informer did not resume after the API server restart' },
      );
      await inf.stop();
    });

    it('relists on demand and drops objects deleted while it was not watching', async () => {
      const core = kc.makeApiClient(CoreV1Api);
      const inf = new Informer(kc, configMaps, { namespace: ns, logger });
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'x' } } });
      await inf.start();
      await inf.synced;
      await inf.stop();
      await core.deleteNamespacedConfigMap({ name: 'x', namespace: ns });
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'y' } } });
      await inf.start();
      await inf.relist();
      expect(inf.get(`${ns}/x`)).to.equal(undefined);
      expect(inf.get(`${ns}/y`)).to.not.equal(undefined);
      await inf.stop();
    });
  });

  describe('reconcile loop', () => {
    let manager: Manager;
    let rec: RecordingReconciler;

    beforeEach(async () => {
      rec = new RecordingReconciler('m1');
      // Retries come within milliseconds, so a later reconcile shows whether one was due.
      manager = new Manager({
        kubeConfig: kc,
        logger,
        metrics: new Metrics(false),
        namespace: ns,
        retry: { minRetryDelayMs: 5, maxRetryDelayMs: 50 },
      });
      manager.addController({
        name: 'gitrepository',
        resource: gitRepos,
        fieldManager: 'source-controller',
        reconciler: rec,
      });
      await manager.start();
    });

    afterEach(async () => {
      await manager.stop();
    });

    it('writes Ready, observedGeneration and lastHandledReconcileAt, and ignores its own status writes', async () => {
      await createRepo(kc, repo('app', ns));
      const ready = await eventually(() => readyOf(kc, ns, 'app'));
      expect(ready).to.include({
        status: 'True',
        reason: 'Succeeded',
        message: 'reconciled by m1',
        observedGeneration: 1,
      });
      const obj = await getRepo(kc, ns, 'app');
      expect(obj.status?.observedGeneration).to.equal(1);
      expect(
        obj.metadata?.managedFields?.some((f) => f.manager === 'source-controller' && f.subresource === 'status'),
      ).to.equal(true);
      const count = rec.seen.length;

      const api = kc.makeApiClient(CustomObjectsApi);
      await api.patchNamespacedCustomObject({
        group: gitRepos.group,
        version: gitRepos.version,
        namespace: ns,
        plural: gitRepos.plural,
        name: 'app',
        body: [{ op: 'add', path: '/metadata/annotations', value: { 'reconcile.fluxcd.io/requestedAt': 'now-1' } }],
      });
      await eventually(async () =>
        expect((await getRepo(kc, ns, 'app')).status?.lastHandledReconcileAt).to.equal('now-1'),
      );
      expect(rec.seen.length).to.equal(count + 1, 'one reconcile for the request, none for the status write it caused');
    });

    it('tide reconcile/suspend/resume drive the object through the controller', async () => {
      await createRepo(kc, repo('cli', ns));
      await eventually(() => readyOf(kc, ns, 'cli'));
      const tide = (...args: string[]) =>
        runCli([...args, '-n', ns, '--kubeconfig', testCluster().kubeconfigPath, '--timeout', '30s']);
      const reconciled = await tide('reconcile', 'gitrepo', 'cli');
      expect(reconciled.code, reconciled.stderr).to.equal(0);
      expect(reconciled.stdout).to.include(`✔ GitRepository ${ns}/cli reconciled: reconciled by m1`);
      const handled = (await getRepo(kc, ns, 'cli')).status?.lastHandledReconcileAt;
      expect(handled).to.be.a('string');

      expect((await tide('suspend', 'gitrepository', 'cli')).code).to.equal(0);
      expect((await getRepo(kc, ns, 'cli')).spec).to.include({ suspend: true });
      const refused = await tide('reconcile', 'gitrepository', 'cli');
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.include(`is suspended; run tide resume gitrepository cli -n ${ns}`);

      const resumed = await tide('resume', 'GitRepository', 'cli');
      expect(resumed.code, resumed.stderr).to.equal(0);
      expect((await getRepo(kc, ns, 'cli')).spec).to.not.have.property('suspend');
      expect((await getRepo(kc, ns, 'cli')).status?.lastHandledReconcileAt).to.not.equal(handled);

      const missing = await tide('reconcile', 'gitrepo', 'nope');
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.include('"nope" not found');
    });

    it('marks an invalid object Stalled, records a Warning event, and does not retry it', async () => {
      await createRepo(kc, repo('bad', ns, 'https://stall.example.com/x'));
      const ready = await eventually(() => readyOf(kc, ns, 'bad'));
      expect(ready).to.include({ status: 'False', reason: 'InvalidSpec' });
      const obj = await getRepo(kc, ns, 'bad');
      expect(findCondition(obj.status?.conditions, 'Stalled')).to.include({ status: 'True', reason: 'InvalidSpec' });
      const events = await eventually(async () => {
        const list = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns });
        const mine = list.items.filter((e) => e.involvedObject.name === 'bad' && e.reason === 'InvalidSpec');
        expect(mine).to.have.length(1);
        return mine;
      });
      expect(events[0]).to.deep.include({ type: 'Warning', message: 'url https://stall.example.com/x is not usable' });
      expect(events[0]!.source?.component).to.equal('source-controller');
      const attempts = rec.seen.filter((n) => n === 'bad').length;
      // An object created now is reconciled after any retry of 'bad' (due within 5 ms) would have been.
      await createRepo(kc, repo('after-bad', ns));
      await eventually(async () => expect((await readyOf(kc, ns, 'after-bad')).status).to.equal('True'));
      expect(rec.seen.filter((n) => n === 'bad').length).to.equal(attempts, 'a stalled object is not retried');
    });
  });

  describe('sharding and shutdown', () => {
    it('--watch-label-selector: a manager only sees and reconciles its shard', async () => {
      const rec = new RecordingReconciler('shard-a');
      const manager = new Manager({
        kubeConfig: kc,
        logger,
        metrics: new Metrics(false),
        namespace: ns,
        labelSelector: 'sharding.fluxcd.io/key=a',
      });
      manager.addController({
        name: 'gitrepository',
        resource: gitRepos,
        fieldManager: 'source-controller',
        reconciler: rec,
      });
      await manager.start();
      try {
        const mine = repo('mine', ns);
        mine.metadata!.labels = { 'sharding.fluxcd.io/key': 'a' };
        const other = repo('other', ns);
        other.metadata!.labels = { 'sharding.fluxcd.io/key': 'b' };
        await createRepo(kc, other);
        await createRepo(kc, mine);
        await eventually(() => readyOf(kc, ns, 'mine'));
        // 'other' was created first: had the manager seen it, it would have come before this one.
        const later = repo('mine-later', ns);
        later.metadata!.labels = { 'sharding.fluxcd.io/key': 'a' };
        await createRepo(kc, later);
        await eventually(() => readyOf(kc, ns, 'mine-later'));
        expect(rec.seen).to.deep.equal(['mine', 'mine-later']);
        expect((await getRepo(kc, ns, 'other')).status?.conditions).to.equal(undefined);
      } finally {
        await manager.stop();
      }
    });

    it('stop() lets an in-flight reconcile finish and write its status, within the deadline', async () => {
      let started!: () => void;
      const inFlight = new Promise<void>((r) => (started = r));
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const slow: Reconciler<Repo> = {
        async reconcile() {
          started();
          await released;
          return { type: 'success', reason: 'Succeeded', message: 'finished after shutdown began' };
        },
      };
      const manager = new Manager({
        kubeConfig: kc,
        logger,
        metrics: new Metrics(false),
        namespace: ns,
        gracefulShutdownMs: 10_000,
      });
      manager.addController({
        name: 'gitrepository',
        resource: gitRepos,
        fieldManager: 'source-controller',
        reconciler: slow,
      });
      await manager.start();
      await createRepo(kc, repo('slow', ns));
      await inFlight;
      // The reconcile finishes only once shutdown has begun.
      const stopped = manager.stop();
      release();
      await stopped;
      expect((await readyOf(kc, ns, 'slow')).message).to.equal('finished after shutdown began');
    });

    it('stop() gives up on a reconcile that outlives the deadline', async () => {
      let started!: () => void;
      const inFlight = new Promise<void>((r) => (started = r));
      let finished = false;
      const stuck: Reconciler<Repo> = {
        async reconcile() {
          started();
          await new Promise<never>(() => {}); // never settles: a reconcile stuck for good
          finished = true;
          return { type: 'success', reason: 'Succeeded', message: 'too late' };
        },
      };
      const manager = new Manager({
        kubeConfig: kc,
        logger,
        metrics: new Metrics(false),
        namespace: ns,
        gracefulShutdownMs: 500,
      });
      manager.addController({
        name: 'gitrepository',
        resource: gitRepos,
        fieldManager: 'source-controller',
        reconciler: stuck,
      });
      await manager.start();
      await createRepo(kc, repo('stuck', ns));
      await inFlight;
      await manager.stop();
      expect(finished, 'stop() returned while the reconcile was still running').to.equal(false);
    });
  });

  describe('leader election', () => {
    it('lets exactly one of two managers reconcile, and the other take over within the lease duration', async () => {
      const leaseDurationMs = 4000;
      const election = (identity: string) => ({
        namespace: ns,
        name: 'tide-test-leader',
        identity,
        leaseDurationMs,
        renewDeadlineMs: 3000,
        retryPeriodMs: 500,
      });
      const recA = new RecordingReconciler('a');
      const recB = new RecordingReconciler('b');
      const a = new Manager({
        kubeConfig: kc,
        logger,
        metrics: new Metrics(false),
        namespace: ns,
        leaderElection: election('a'),
      });
      const b = new Manager({
        kubeConfig: kc,
        logger,
        metrics: new Metrics(false),
        namespace: ns,
        leaderElection: election('b'),
      });
      a.addController({
        name: 'gitrepository',
        resource: gitRepos,
        fieldManager: 'source-controller',
        reconciler: recA,
      });
      b.addController({
        name: 'gitrepository',
        resource: gitRepos,
        fieldManager: 'source-controller',
        reconciler: recB,
      });
      await a.start();
      await eventually(async () => expect(a.isLeader()).to.equal(true));
      await b.start();
      await createRepo(kc, repo('one', ns));
      await eventually(async () => expect((await readyOf(kc, ns, 'one')).message).to.equal('reconciled by a'));
      // 'one' came first: had the standby acted on it, it would have before the leader handled this.
      await createRepo(kc, repo('one-later', ns));
      await eventually(async () => expect((await readyOf(kc, ns, 'one-later')).message).to.equal('reconciled by a'));
      expect(b.isLeader()).to.equal(false);
      expect(recB.seen, 'the standby reconciles nothing').to.deep.equal([]);

      await a.stop();
      await eventually(async () => expect(b.isLeader()).to.equal(true), {
        timeoutMs: leaseDurationMs,
        message: 'standby did not take over within the lease duration',
      });
      await createRepo(kc, repo('two', ns));
      await eventually(async () => expect((await readyOf(kc, ns, 'two')).message).to.equal('reconciled by b'));
      expect(recA.seen).to.not.include('two');
      await b.stop();
      const lease = await kc
        .makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api)
        .readNamespacedLease({ name: 'tide-test-leader', namespace: ns });
      expect(lease.spec?.holderIdentity, 'released on stop').to.equal('');
    });
  });

  describe('metrics and health endpoints', () => {
    it('serves Flux metric names, process metrics, /healthz and /readyz', async () => {
      const metricsPort = await freePort();
      const healthPort = await freePort();
      const manager = new Manager({
        kubeConfig: kc,
        logger,
        namespace: ns,
        metricsAddr: `127.0.0.1:${metricsPort}`,
        healthAddr: `127.0.0.1:${healthPort}`,
      });
      manager.addController({
        name: 'gitrepository',
        resource: gitRepos,
        fieldManager: 'source-controller',
        reconciler: new RecordingReconciler('m'),
      });
      expect(manager.ready()).to.equal(false);
      await manager.start();
      try {
        await createRepo(kc, repo('metered', ns));
        await createRepo(kc, repo('failing', ns, 'https://stall.example.com/'));
        await eventually(() => readyOf(kc, ns, 'failing'));
        expect((await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status).to.equal(200);
        await eventually(async () =>
          expect((await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status).to.equal(200),
        );
        expect((await fetch(`http://127.0.0.1:${healthPort}/nope`)).status).to.equal(404);
        const text = await eventually(async () => {
          const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          expect(body).to.include(
            `gotk_reconcile_duration_seconds_count{kind="GitRepository",name="metered",namespace="${ns}"} 1`,
          );
          return body;
        });
        expect(text).to.match(
          /controller_runtime_reconcile_total\{controller="gitrepository",result="requeue_after"\} 1/,
        );
        expect(text).to.match(/controller_runtime_reconcile_total\{controller="gitrepository",result="success"\} 1/);
        expect(text).to.match(/workqueue_adds_total\{name="gitrepository"\} [1-9]/);
        expect(text).to.match(/workqueue_depth\{name="gitrepository"\} 0/);
        expect(text).to.include('# TYPE workqueue_retries_total counter');
        expect(text).to.match(/process_resident_memory_bytes \d+/);
      } finally {
        await manager.stop();
      }
    });

    it('refuses to start when a CRD is not installed, naming it and the fix', async () => {
      const manager = new Manager({ kubeConfig: kc, logger, namespace: ns });
      manager.informer({
        group: 'example.toolkit.fluxcd.io',
        version: 'v1',
        kind: 'Nope',
        plural: 'nopes',
        namespaced: true,
      });
      let error: Error | undefined;
      await manager.start().catch((e: Error) => (error = e));
      expect(error?.message).to.equal(
        'the CustomResourceDefinition nopes.example.toolkit.fluxcd.io is not installed; ' +
          'apply the CRDs first: kubectl apply --server-side -f crds/',
      );
    });
  });
});
