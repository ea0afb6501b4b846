// What a Kustomization shows while it works, and a health wait that a new revision supersedes
// (Flux's CancelHealthCheckOnNewRevision): real git server, tide-controller as a process.
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCondition, type Condition } from '../../controllers/runtime/conditions.ts';
import { kubeConfig } from '../support/cluster.ts';
import { startController, type RunningController } from '../support/controller.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { commit, createRepo } from '../support/git/repos.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';

type Status = {
  conditions?: Condition[];
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  artifact?: { revision: string };
  history?: { lastReconciledStatus: string; metadata?: { revision?: string } }[];
};

describe('Kustomization: progress in status and superseded health checks', function () {
  this.timeout(300_000);
  let kc: KubeConfig;
  let controller: RunningController;
  let git: GitHttpServer;
  let root: string;
  let ns: string;

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    root = mkdtempSync(join(tmpdir(), 'tide-progress-'));
    git = await startGitHttpServer({ root });
    controller = await startController(['--controllers=source,kustomize']);
  });

  after(async () => {
    await controller?.stop();
    await git?.close();
  });

  beforeEach(async () => {
    ns = await createTestNamespace(kc, 'progress');
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(
        controller
          .logs()
          .split('\n')
          .filter((l) => l.includes(ns))
          .slice(-30)
          .join('\n'),
      );
    }
    await deleteNamespace(kc, ns);
  });

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const ks = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
  const gr = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' };
  const gate = (ready: string) =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gate\n  namespace: ${ns}\ndata:\n  ready: "${ready}"\n`;
  const status = async (plural: typeof ks | typeof gr, name: string) =>
    ((await custom().getNamespacedCustomObject({ ...plural, namespace: ns, name })) as { status?: Status }).status ??
    {};

  it('shows the revision it works on, and a new revision ends a health wait at once', async () => {
    const repo = await createRepo(root, `gate-${ns}`, { branch: 'main', files: { 'app/gate.yaml': gate('no') } });
    await custom().createNamespacedCustomObject({
      ...gr,
      namespace: ns,
      body: {
        apiVersion: 'source.toolkit.fluxcd.io/v1',
        kind: 'GitRepository',
        metadata: { name: 'fleet' },
        spec: { url: git.url(`gate-${ns}`), interval: '1h', ref: { branch: 'main' } },
      },
    });
    // Healthy only once the ConfigMap says so; the timeout is far longer than this test may take,
    // so only a cancelled wait lets the next revision through in time.
    await custom().createNamespacedCustomObject({
      ...ks,
      namespace: ns,
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: 'app' },
        spec: {
          interval: '1h',
          timeout: '30m',
          prune: true,
          wait: true,
          path: './app',
          sourceRef: { kind: 'GitRepository', name: 'fleet' },
          healthCheckExprs: [
            { apiVersion: 'v1', kind: 'ConfigMap', current: "data.ready == 'yes'", inProgress: "data.ready != 'yes'" },
          ],
        },
      },
    });
    const first = `main@sha1:${repo.commit}`;
    // Work in progress, as kstatus reads it: Reconciling=True Progressing naming the revision, Ready=Unknown.
    await eventually(
      async () => {
        const s = await status(ks, 'app');
        expect(findCondition(s.conditions, 'Reconciling')).to.include({
          status: 'True',
          reason: 'Progressing',
          message:
            `Health check in progress for revision ${first}: waiting for ConfigMap/${ns}/gate: ` +
            'inProgress expression is true',
        });
        expect(findCondition(s.conditions, 'Ready')).to.include({ status: 'Unknown', reason: 'Progressing' });
      },
      { timeoutMs: 60_000 },
    );

    const second = await commit(repo.path, { branch: 'main', files: { 'app/gate.yaml': gate('yes') } });
    await custom().patchNamespacedCustomObject(
      {
        ...gr,
        namespace: ns,
        name: 'fleet',
        body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': new Date().toISOString() } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const s = await eventually(
      async () => {
        const s = await status(ks, 'app');
        expect(findCondition(s.conditions, 'Ready')).to.include({
          status: 'True',
          message: `Applied revision: main@sha1:${second}`,
        });
        return s;
      },
      { timeoutMs: 90_000 },
    );
    expect(findCondition(s.conditions, 'Reconciling')).to.equal(undefined);
    expect(s.history?.map((h) => [h.lastReconciledStatus, h.metadata?.revision])).to.deep.include([
      'HealthCheckCanceled',
      first,
    ]);
    const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns });
    expect(events.items.map((e) => `${e.type} ${e.reason}: ${e.message}`)).to.include(
      `Normal HealthCheckCanceled: Health checks canceled due to new reconciliation triggered by GitRepository/${ns}/fleet`,
    );
  });
});
