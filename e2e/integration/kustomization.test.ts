// The GitOps loop end to end: a real git server, tide-controller running the source and kustomize
// controllers as a process, kwok making Deployments Available. A commit becomes running
// workloads; removing a file removes them.
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { findCondition, type Condition } from '../../controllers/runtime/conditions.ts';
import { kubeConfig, testCluster } from '../support/cluster.ts';
import { startController, type RunningController } from '../support/controller.ts';
import { installCRDs, widgetCRD } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/net.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { commit, createRepo } from '../support/git/repos.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { pushArtifact, startRegistry } from '../support/registry.ts';

const exec = promisify(execFile);

/** A .tar.gz of the files, the content layer of a Flux OCI artifact. */
async function tgz(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

type Obj = {
  metadata?: { generation?: number; name?: string };
  status?: {
    conditions?: Condition[];
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    inventory?: { entries: { id: string; v: string }[] };
    artifact?: { revision: string };
  };
};

const deployment = (ns: string, name: string, image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  replicas: 2
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: app
        image: ${image}
`;

describe('Kustomization: the GitOps loop', function () {
  this.timeout(300_000);
  let kc: KubeConfig;
  let controller: RunningController;
  let git: GitHttpServer;
  let root: string;
  let ns: string;
  let appNs: string;

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    root = mkdtempSync(join(tmpdir(), 'tide-fleet-'));
    git = await startGitHttpServer({ root });
    controller = await startController(['--controllers=source,kustomize', '--requeue-dependency=1s']);
  });

  after(async () => {
    await controller?.stop();
    await git?.close();
  });

  beforeEach(async function () {
    ns = await createTestNamespace(kc, this.currentTest?.title.slice(0, 30) ?? 'ks');
    appNs = `app-${randomBytes(3).toString('hex')}`;
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed')
      console.log(
        controller
          .logs()
          .split('\n')
          .filter((l) => l.includes(ns))
          .slice(-30)
          .join('\n'),
      );
    await deleteNamespace(kc, ns);
    await deleteNamespace(kc, appNs);
  });

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const ks = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
  const gr = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' };

  async function createSource(repo: string): Promise<void> {
    await custom().createNamespacedCustomObject({
      ...gr,
      namespace: ns,
      body: {
        apiVersion: 'source.toolkit.fluxcd.io/v1',
        kind: 'GitRepository',
        metadata: { name: 'fleet' },
        spec: { url: git.url(repo), interval: '1h', ref: { branch: 'main' } },
      },
    });
  }

  async function createKustomization(name: string, spec: Record<string, unknown>): Promise<void> {
    await custom().createNamespacedCustomObject({
      ...ks,
      namespace: ns,
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name },
        spec: { interval: '1h', prune: true, sourceRef: { kind: 'GitRepository', name: 'fleet' }, ...spec },
      },
    });
  }

  const getKs = async (name: string) =>
    (await custom().getNamespacedCustomObject({ ...ks, namespace: ns, name })) as Obj;
  const getSource = async () =>
    (await custom().getNamespacedCustomObject({ ...gr, namespace: ns, name: 'fleet' })) as Obj;

  async function refreshSource(): Promise<string> {
    await custom().patchNamespacedCustomObject(
      {
        ...gr,
        namespace: ns,
        name: 'fleet',
        body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': new Date().toISOString() } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return '';
  }

  async function applied(name: string, revision?: string): Promise<Obj> {
    return eventually(
      async () => {
        const o = await getKs(name);
        const ready = findCondition(o.status?.conditions, 'Ready');
        expect(ready, `${name}: ${ready?.reason}: ${ready?.message}`).to.include({
          status: 'True',
          reason: 'ReconciliationSucceeded',
        });
        expect(ready?.observedGeneration).to.equal(o.metadata?.generation);
        if (revision) expect(o.status?.lastAppliedRevision).to.equal(revision);
        return o;
      },
      { timeoutMs: 120_000 },
    );
  }

  async function failed(name: string, reason: string, revision?: string): Promise<Condition> {
    return eventually(
      async () => {
        const o = await getKs(name);
        if (revision) expect(o.status?.lastAttemptedRevision).to.equal(revision);
        const ready = findCondition(o.status?.conditions, 'Ready');
        expect(ready, `${name}: ${ready?.reason}: ${ready?.message}`).to.include({ status: 'False', reason });
        return ready!;
      },
      { timeoutMs: 60_000 },
    );
  }

  async function revisionOfSource(): Promise<string> {
    return eventually(async () => {
      const r = (await getSource()).status?.artifact?.revision;
      expect(r).to.be.a('string');
      return r!;
    });
  }

  it('applies, waits, rolls out a new image, prunes a removed file; honours dependsOn and prune: false', async () => {
    const repoName = `fleet-${ns}`;
    const repo = await createRepo(root, repoName, {
      branch: 'main',
      files: {
        'infra/namespace.yaml': `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${appNs}\n`,
        'apps/app/deployment.yaml': deployment(appNs, 'web', 'registry.example/web:1.0.0'),
        'apps/app/service.yaml': `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ${appNs}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`,
        'apps/app/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: ${appNs}
data: {level: info}
`,
        'keep/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: kept
  namespace: ${appNs}
data: {a: b}
`,
      },
    });
    await createSource(repoName);
    // The app depends on infra, which does not exist yet: it must wait.
    await createKustomization('app', {
      path: './apps/app',
      wait: true,
      dependsOn: [{ name: 'infra' }],
      timeout: '2m',
    });
    const waiting = await failed('app', 'DependencyNotReady');
    expect(waiting.message).to.include('infra');
    // infra exists but, suspended, never becomes Ready: a reconcile of app requested now must still wait.
    await createKustomization('infra', { path: './infra', suspend: true });
    await custom().patchNamespacedCustomObject(
      {
        ...ks,
        namespace: ns,
        name: 'app',
        body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': 'infra-suspended' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually(async () => {
      const o = await getKs('app');
      expect(o.status).to.have.property('lastHandledReconcileAt', 'infra-suspended');
      expect(findCondition(o.status?.conditions, 'Ready')).to.include({
        status: 'False',
        reason: 'DependencyNotReady',
      });
      expect(o.status?.inventory, 'nothing applied').to.equal(undefined);
    });
    await custom().patchNamespacedCustomObject(
      { ...ks, namespace: ns, name: 'infra', body: { spec: { suspend: false } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await createKustomization('keep', { path: './keep', prune: false, dependsOn: [{ name: 'infra' }] });

    const revision = await revisionOfSource();
    expect(revision).to.equal(`main@sha1:${repo.commit}`);
    await applied('infra', revision);
    const app = await applied('app', revision);
    await applied('keep', revision);
    expect(findCondition(app.status?.conditions, 'Healthy')).to.include({ status: 'True' });
    expect(
      (app.status as { history?: { lastReconciledStatus: string; metadata?: Record<string, string> }[] }).history?.[0],
    ).to.deep.include({
      lastReconciledStatus: 'ReconciliationSucceeded',
      metadata: { revision },
    });
    expect(app.status?.inventory?.entries.map((e) => e.id).sort()).to.deep.equal([
      `${appNs}_web-config__ConfigMap`,
      `${appNs}_web__Service`,
      `${appNs}_web_apps_Deployment`,
    ]);

    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const dep = await apps.readNamespacedDeployment({ name: 'web', namespace: appNs });
    expect(dep.status?.availableReplicas).to.equal(2);
    expect(dep.metadata?.labels).to.include({
      'kustomize.toolkit.fluxcd.io/name': 'app',
      'kustomize.toolkit.fluxcd.io/namespace': ns,
    });
    expect(dep.metadata?.managedFields?.some((f) => f.manager === 'kustomize-controller')).to.equal(true);
    const kubectl = join(testCluster().binDir, 'kubectl');
    const { stdout } = await exec(kubectl, [
      '--kubeconfig',
      testCluster().kubeconfigPath,
      '-n',
      ns,
      'wait',
      '--for=condition=Ready',
      'kustomization/app',
      '--timeout=10s',
    ]);
    expect(stdout).to.include('condition met');
    const listing = await exec(kubectl, ['--kubeconfig', testCluster().kubeconfigPath, '-n', ns, 'get', 'ks']);
    expect(listing.stdout).to.match(/app\s+\S+\s+True\s+Applied revision: main@sha1:/);

    // A new image in git rolls out.
    const second = await commit(repo.path, {
      branch: 'main',
      files: { 'apps/app/deployment.yaml': deployment(appNs, 'web', 'registry.example/web:2.0.0') },
    });
    await refreshSource();
    await applied('app', `main@sha1:${second}`);
    await eventually(
      async () => {
        const d = await apps.readNamespacedDeployment({ name: 'web', namespace: appNs });
        expect(d.spec?.template.spec?.containers[0]?.image).to.equal('registry.example/web:2.0.0');
        expect(d.status?.updatedReplicas).to.equal(2);
        expect(d.status?.availableReplicas).to.equal(2);
      },
      { timeoutMs: 60_000 },
    );

    // Removing files prunes what they declared, except where prune is off.
    const third = await commit(repo.path, {
      branch: 'main',
      files: {
        'apps/app/config.yaml': null,
        'keep/config.yaml': null,
        'keep/other.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: ${appNs}\n`,
      },
    });
    await refreshSource();
    await applied('app', `main@sha1:${third}`);
    await applied('keep', `main@sha1:${third}`);
    await eventually(async () => {
      const names = (await core.listNamespacedConfigMap({ namespace: appNs })).items.map((c) => c.metadata?.name);
      expect(names).to.not.include('web-config');
      expect(names).to.include.members(['kept', 'other']);
    });
  });

  it('keeps the last applied objects when a new revision is broken, and names the problem', async () => {
    const repoName = `broken-${ns}`;
    const repo = await createRepo(root, repoName, {
      branch: 'main',
      files: {
        'app/ns.yaml': `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${appNs}\n`,
        'app/a.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ${appNs}\ndata: {v: "1"}\n`,
      },
    });
    await createSource(repoName);
    await createKustomization('app', { path: './app' });
    await applied('app', `main@sha1:${repo.commit}`);
    const core = kc.makeApiClient(CoreV1Api);

    const cases: [string, Record<string, string | null>, string, RegExp][] = [
      [
        'broken YAML',
        { 'app/a.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n' },
        'BuildFailed',
        /failed to decode Kubernetes YAML from app\/a\.yaml: document 1 is not valid YAML: /,
      ],
      [
        'invalid object',
        {
          'app/a.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: ${appNs}
data: {v: "2"}
`,
          'app/bad.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
  namespace: ${appNs}
spec: {}
`,
        },
        'ReconciliationFailed',
        /Deployment\/.*bad/,
      ],
      [
        'unknown kind',
        { 'app/bad.yaml': `apiVersion: example.com/v1\nkind: Nope\nmetadata:\n  name: x\n  namespace: ${appNs}\n` },
        'ReconciliationFailed',
        /Nope/,
      ],
      [
        'failing kustomization.yaml',
        { 'app/bad.yaml': null, 'app/kustomization.yaml': 'resources:\n- missing.yaml\n' },
        'BuildFailed',
        /missing\.yaml/,
      ],
    ];
    for (const [what, files, reason, message] of cases) {
      const sha = await commit(repo.path, { branch: 'main', files });
      await refreshSource();
      const c = await failed('app', reason, `main@sha1:${sha}`);
      expect(c.message, what).to.match(message);
      const cm = await core.readNamespacedConfigMap({ name: 'a', namespace: appNs });
      expect(cm.data, `${what}: previous objects keep running, nothing pruned`).to.deep.equal({ v: '1' });
    }
  });

  it('applies as spec.serviceAccountName: what its RBAC forbids fails, and nothing is applied', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespace({ body: { metadata: { name: appNs } } });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'deployer' } } });
    const role = (resources: string[]) => ({
      metadata: { name: 'deployer', namespace: appNs },
      rules: [{ apiGroups: [''], resources, verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] }],
    });
    await rbac.createNamespacedRole({ namespace: appNs, body: role(['configmaps']) });
    await rbac.createNamespacedRoleBinding({
      namespace: appNs,
      body: {
        metadata: { name: 'deployer', namespace: appNs },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'deployer' },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: ns }],
      },
    });
    const repoName = `rbac-${ns}`;
    await createRepo(root, repoName, {
      branch: 'main',
      files: {
        'app/cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: allowed\n  namespace: ${appNs}\n`,
        'app/secret.yaml': `apiVersion: v1
kind: Secret
metadata:
  name: forbidden
  namespace: ${appNs}
stringData: {a: b}
`,
      },
    });
    await createSource(repoName);
    await createKustomization('limited', { path: './app', serviceAccountName: 'deployer' });
    const c = await failed('limited', 'ReconciliationFailed');
    expect(c.message).to.match(/Secret\/.*forbidden/);
    expect(c.message).to.include('system:serviceaccount');
    const names = (await core.listNamespacedConfigMap({ namespace: appNs })).items.map((x) => x.metadata?.name);
    expect(names, 'nothing applied').to.not.include('allowed');

    await rbac.replaceNamespacedRole({ name: 'deployer', namespace: appNs, body: role(['configmaps', 'secrets']) });
    await custom().patchNamespacedCustomObject(
      {
        ...ks,
        namespace: ns,
        name: 'limited',
        body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': 'rbac-fixed' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await applied('limited');
    expect((await core.readNamespacedSecret({ name: 'forbidden', namespace: appNs })).metadata?.labels).to.include({
      'kustomize.toolkit.fluxcd.io/name': 'limited',
    });
  });

  it('applies through spec.kubeConfig to the cluster it names; a clear answer for an unusable one', async () => {
    const repoName = `remote-${ns}`;
    await createRepo(root, repoName, {
      branch: 'main',
      files: { 'app/cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remote\n  namespace: ${ns}\n` },
    });
    await createSource(repoName);
    const admin = readFileSync(testCluster().kubeconfigPath, 'utf8');
    const closed = admin.replace(/server: .*/, `server: https://127.0.0.1:${await freePort()}`);
    const withExec = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/true}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;
    const tokenFile = withExec.replace(
      '{exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/true}}',
      '{token-file: /var/run/secrets/kubernetes.io/serviceaccount/token}',
    );
    const core = kc.makeApiClient(CoreV1Api);
    for (const [name, value, key] of [
      ['good', admin, 'value'],
      ['closed', closed, 'value.yaml'],
      ['exec', withExec, 'value'],
      ['tokenfile', tokenFile, 'value'],
    ] as const) {
      await core.createNamespacedSecret({
        namespace: ns,
        body: { metadata: { name }, stringData: { [key]: value } },
      });
    }
    await createKustomization('good', { path: './app', kubeConfig: { secretRef: { name: 'good' } } });
    await createKustomization('closed', { path: './app', kubeConfig: { secretRef: { name: 'closed' } } });
    await createKustomization('exec', { path: './app', kubeConfig: { secretRef: { name: 'exec' } } });
    await createKustomization('tokenfile', { path: './app', kubeConfig: { secretRef: { name: 'tokenfile' } } });
    await createKustomization('missing', { path: './app', kubeConfig: { secretRef: { name: 'nope' } } });
    await applied('good');
    expect((await core.readNamespacedConfigMap({ name: 'remote', namespace: ns })).metadata?.labels).to.include({
      'kustomize.toolkit.fluxcd.io/name': 'good',
    });
    expect((await failed('closed', 'ReconciliationFailed')).message).to.match(/ECONNREFUSED/);
    expect((await failed('exec', 'ReconciliationFailed')).message).to.equal(
      `kubeconfig Secret '${ns}/exec' key 'value': user 'u' uses an exec credential plugin, which is not allowed`,
    );
    expect((await failed('tokenfile', 'ReconciliationFailed')).message).to.equal(
      `kubeconfig Secret '${ns}/tokenfile' key 'value': ` +
        "user 'u' refers to a file on disk (token-file); inline the data instead",
    );
    expect((await failed('missing', 'ReconciliationFailed')).message).to.equal(
      `kubeconfig Secret '${ns}/nope' not found`,
    );
    // Nothing of the kubeconfigs reaches status or events.
    const events = await core.listNamespacedEvent({ namespace: ns });
    const said = JSON.stringify(events.items.map((e) => e.message)) + JSON.stringify((await getKs('closed')).status);
    expect(said).to.not.include('client-key-data');
    expect(said).to.not.include(admin.match(/client-key-data: (\S{20})/)![1]);
  });

  it('applies a CRD and its custom resource, and waits for the resource by healthCheckExprs', async () => {
    const group = `${ns}.tide.test`;
    const crd = widgetCRD(group, { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, { status: {} });
    const repoName = `cel-${ns}`;
    await createRepo(root, repoName, {
      branch: 'main',
      files: {
        'app/crd.yaml': JSON.stringify(crd),
        'app/widget.yaml': `apiVersion: ${group}/v1
kind: Widget
metadata:
  name: w
  namespace: ${ns}
spec:
  size: 1
`,
      },
    });
    try {
      await createSource(repoName);
      await createKustomization('widgets', {
        path: './app',
        wait: true,
        timeout: '2m',
        healthCheckExprs: [
          {
            apiVersion: `${group}/v1`,
            kind: 'Widget',
            failed: "status.phase == 'Broken'",
            current: "status.phase == 'Done'",
          },
        ],
      });
      // Applied, but the Widget has no status.phase yet: not ready.
      const widgets = { group, version: 'v1', plural: 'widgets', namespace: ns };
      await eventually(async () =>
        expect(await custom().getNamespacedCustomObject({ ...widgets, name: 'w' })).to.have.nested.property(
          'spec.size',
          1,
        ),
      );
      // The health check has read the Widget and found it not current: it says so while it waits,
      // naming it, or counting both objects of the inventory when the CRD was not established yet.
      const waitingFor = new RegExp(`: waiting for (Widget/${ns}/w: |2 objects$)`);
      const waiting = await eventually(async () => {
        const k = await getKs('widgets');
        expect(findCondition(k.status?.conditions, 'Reconciling')?.message).to.match(waitingFor);
        return k;
      });
      expect(findCondition(waiting.status?.conditions, 'Ready')?.status).to.not.equal('True');
      expect(findCondition(waiting.status?.conditions, 'Healthy')?.status).to.not.equal('True');
      await custom().patchNamespacedCustomObjectStatus(
        { ...widgets, name: 'w', body: { status: { phase: 'Done' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const ready = await applied('widgets');
      expect(findCondition(ready.status?.conditions, 'Healthy')).to.include({ status: 'True' });
    } finally {
      await kc
        .makeApiClient(ApiextensionsV1Api)
        .deleteCustomResourceDefinition({ name: `widgets.${group}` })
        .catch(() => {});
    }
  });

  it('re-applies at once when a watched substituteFrom ConfigMap changes', async () => {
    const repoName = `vars-${ns}`;
    await createRepo(root, repoName, {
      branch: 'main',
      files: {
        'app/cm.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
  namespace: ${ns}
data:
  text: \${greeting}
`,
      },
    });
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name: 'vars', labels: { 'reconcile.fluxcd.io/watch': 'Enabled' } },
        data: { greeting: 'hello' },
      },
    });
    await createSource(repoName);
    // The source has its artifact before the Kustomization exists, so nothing is waiting to be
    // retried (--requeue-dependency): once applied, the next reconcile is an hour away and only the
    // watch can bring the new value.
    await eventually(async () => expect((await getSource()).status?.artifact?.revision).to.be.a('string'));
    await createKustomization('vars', {
      path: './app',
      interval: '1h',
      postBuild: { substituteFrom: [{ kind: 'ConfigMap', name: 'vars' }] },
    });
    await applied('vars');
    expect((await core.readNamespacedConfigMap({ name: 'greeting', namespace: ns })).data).to.deep.equal({
      text: 'hello',
    });
    await core.patchNamespacedConfigMap(
      { name: 'vars', namespace: ns, body: { data: { greeting: 'bonjour' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually(
      async () =>
        expect((await core.readNamespacedConfigMap({ name: 'greeting', namespace: ns })).data).to.deep.equal({
          text: 'bonjour',
        }),
      { timeoutMs: 20_000 },
    );
  });

  it('decrypts SOPS Secrets with the age keys of spec.decryption, and fails clearly without them', async () => {
    const bin = testCluster().binDir;
    const keyFile = join(root, `age-${ns}.txt`);
    await exec(join(bin, 'age-keygen'), ['-o', keyFile]);
    const keyText = readFileSync(keyFile, 'utf8');
    const identity = /AGE-SECRET-KEY-\S+/.exec(keyText)![0];
    const recipient = /public key: (age1\S+)/.exec(keyText)![1]!;
    const plainFile = join(root, `secret-${ns}.yaml`);
    writeFileSync(
      plainFile,
      `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: ${ns}
stringData:
  password: hunter2-${ns}
`,
    );
    const { stdout: encrypted } = await exec(
      join(bin, 'sops'),
      ['--encrypt', '--age', recipient, '--encrypted-regex', '^(data|stringData)$', plainFile],
      { env: { PATH: process.env.PATH!, HOME: root } },
    );
    const repoName = `sops-${ns}`;
    await createRepo(root, repoName, { branch: 'main', files: { 'app/db.yaml': encrypted } });
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'sops-age' }, stringData: { 'identity.agekey': `${identity}\n` } },
    });
    await createSource(repoName);
    await createKustomization('sealed', { path: './app' });
    await createKustomization('opened', {
      path: './app',
      decryption: { provider: 'sops', secretRef: { name: 'sops-age' } },
    });
    const refused = await failed('sealed', 'BuildFailed');
    expect(refused.message).to.equal(`Secret/${ns}/db is encrypted with SOPS, but spec.decryption is not set`);
    await applied('opened');
    const secret = await core.readNamespacedSecret({ name: 'db', namespace: ns });
    expect(Buffer.from(secret.data!.password!, 'base64').toString()).to.equal(`hunter2-${ns}`);
    expect(secret.metadata?.labels).to.include({ 'kustomize.toolkit.fluxcd.io/name': 'opened' });
    // Neither the password nor the key shows in events or status.
    const events = await core.listNamespacedEvent({ namespace: ns });
    const said =
      JSON.stringify(events.items.map((e) => e.message)) +
      JSON.stringify((await getKs('opened')).status) +
      JSON.stringify((await getKs('sealed')).status);
    expect(said).to.not.include(`hunter2-${ns}`);
    expect(said).to.not.include(identity);
  });

  it('on deletion: WaitForTermination waits for the objects to be gone, Orphan and suspend leave them', async () => {
    const repoName = `deletion-${ns}`;
    const cm = (name: string, extra = '') =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n${extra}`;
    await createRepo(root, repoName, {
      branch: 'main',
      files: {
        // The finalizer holds the ConfigMap in Terminating until the test lets it go.
        'wait/held.yaml': cm('held', '  finalizers: [tide.test/hold]\n'),
        'orphan/cm.yaml': cm('orphaned'),
        'suspended/cm.yaml': cm('suspended'),
        'probe/cm.yaml': cm('probe'),
      },
    });
    await createSource(repoName);
    await createKustomization('wait', { path: './wait', deletionPolicy: 'WaitForTermination', timeout: '2m' });
    await createKustomization('orphan', { path: './orphan', deletionPolicy: 'Orphan' });
    await createKustomization('suspended', { path: './suspended' });
    await createKustomization('probe', { path: './probe' });
    for (const name of ['wait', 'orphan', 'suspended', 'probe']) await applied(name);
    await custom().patchNamespacedCustomObject(
      { ...ks, namespace: ns, name: 'suspended', body: { spec: { suspend: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    for (const name of ['wait', 'orphan', 'suspended'])
      await custom().deleteNamespacedCustomObject({ ...ks, namespace: ns, name });

    const core = kc.makeApiClient(CoreV1Api);
    const gone = async (name: string) =>
      getKs(name).then(
        () => false,
        (err: { code?: number }) => err.code === 404,
      );
    await eventually(async () => {
      expect(await gone('orphan')).to.equal(true);
      expect(await gone('suspended')).to.equal(true);
      expect(
        (await core.readNamespacedConfigMap({ name: 'held', namespace: ns })).metadata?.deletionTimestamp,
        'held is being deleted',
      ).to.not.equal(undefined);
    });
    expect(
      (await core.readNamespacedConfigMap({ name: 'orphaned', namespace: ns })).metadata?.deletionTimestamp,
    ).to.equal(undefined);
    expect(
      (await core.readNamespacedConfigMap({ name: 'suspended', namespace: ns })).metadata?.deletionTimestamp,
    ).to.equal(undefined);
    // While the ConfigMap terminates, the Kustomization keeps its finalizer. Without the wait it
    // would be released right after the delete it has already made; a full reconcile of another
    // Kustomization, requested only now, comes later than that.
    const requestedAt = `probe-${Date.now()}`;
    await custom().patchNamespacedCustomObject(
      {
        ...ks,
        namespace: ns,
        name: 'probe',
        body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': requestedAt } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually(async () =>
      expect((await getKs('probe')).status).to.have.property('lastHandledReconcileAt', requestedAt),
    );
    expect(await gone('wait'), 'waits for termination').to.equal(false);
    await core.patchNamespacedConfigMap(
      { name: 'held', namespace: ns, body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually(async () => expect(await gone('wait')).to.equal(true), { timeoutMs: 30_000 });
  });

  it('reports a missing path and an unsupported source kind', async () => {
    const repoName = `paths-${ns}`;
    await createRepo(root, repoName, {
      branch: 'main',
      files: { 'x/a.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n' },
    });
    await createSource(repoName);
    // Waiting for the source's first artifact is ArtifactFailed too: wait for the revision.
    const revision = await revisionOfSource();
    await createKustomization('nopath', { path: './does/not/exist' });
    expect((await failed('nopath', 'ArtifactFailed', revision)).message).to.include('does/not/exist');
    await createKustomization('bucket', { path: './', sourceRef: { kind: 'Bucket', name: 'x' } });
    const c = await eventually(async () => {
      const o = await getKs('bucket');
      const stalled = findCondition(o.status?.conditions, 'Stalled');
      expect(stalled?.status).to.equal('True');
      return stalled!;
    });
    expect(c.message).to.include('Bucket');
  });

  it('applies the manifests of an OCI artifact from an OCIRepository, and its next revision at once', async () => {
    const registry = await startRegistry();
    try {
      const cm = (v: string) =>
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-oci\n  namespace: ${ns}\ndata:\n  v: "${v}"\n`;
      const push = async (v: string) =>
        pushArtifact(registry, `${ns}/manifests`, 'latest', {
          config: { mediaType: 'application/vnd.cncf.flux.config.v1+json', bytes: '{}' },
          layers: [
            { mediaType: 'application/vnd.cncf.flux.content.v1.tar+gzip', bytes: await tgz({ 'app/cm.yaml': cm(v) }) },
          ],
        });
      const first = await push('1');
      const oci = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'ocirepositories' };
      await custom().createNamespacedCustomObject({
        ...oci,
        namespace: ns,
        body: {
          apiVersion: 'source.toolkit.fluxcd.io/v1',
          kind: 'OCIRepository',
          metadata: { name: 'manifests' },
          spec: { url: `${registry.url}/${ns}/manifests`, interval: '1h', insecure: true },
        },
      });
      await createKustomization('oci', { path: './app', sourceRef: { kind: 'OCIRepository', name: 'manifests' } });
      await applied('oci', `latest@${first}`);
      const core = kc.makeApiClient(CoreV1Api);
      expect((await core.readNamespacedConfigMap({ name: 'from-oci', namespace: ns })).data).to.deep.equal({ v: '1' });

      const second = await push('2');
      await custom().patchNamespacedCustomObject(
        {
          ...oci,
          namespace: ns,
          name: 'manifests',
          body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': new Date().toISOString() } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await applied('oci', `latest@${second}`);
      expect((await core.readNamespacedConfigMap({ name: 'from-oci', namespace: ns })).data).to.deep.equal({ v: '2' });
    } finally {
      await registry.stop();
    }
  });
  it('shows the revision it works on, and a new revision ends a health wait at once', async () => {
    const gate = (ready: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gate\n  namespace: ${ns}\ndata:\n  ready: "${ready}"\n`;
    const repoName = `gate-${ns}`;
    const repo = await createRepo(root, repoName, { branch: 'main', files: { 'app/gate.yaml': gate('no') } });
    await createSource(repoName);
    // Healthy only once the ConfigMap says so; the timeout is far longer than this test may take,
    // so only a cancelled wait lets the next revision through in time.
    await createKustomization('gated', {
      timeout: '30m',
      wait: true,
      path: './app',
      healthCheckExprs: [
        { apiVersion: 'v1', kind: 'ConfigMap', current: "data.ready == 'yes'", inProgress: "data.ready != 'yes'" },
      ],
    });
    const first = `main@sha1:${repo.commit}`;
    // Work in progress, as kstatus reads it: Reconciling=True Progressing naming the revision, Ready=Unknown.
    await eventually(
      async () => {
        const k = await getKs('gated');
        expect(findCondition(k.status?.conditions, 'Reconciling')).to.include({
          status: 'True',
          reason: 'Progressing',
          message:
            `Health check in progress for revision ${first}: waiting for ConfigMap/${ns}/gate: ` +
            'inProgress expression is true',
        });
        expect(findCondition(k.status?.conditions, 'Ready')).to.include({ status: 'Unknown', reason: 'Progressing' });
      },
      { timeoutMs: 60_000 },
    );

    const second = await commit(repo.path, { branch: 'main', files: { 'app/gate.yaml': gate('yes') } });
    await refreshSource();
    const k = await applied('gated', `main@sha1:${second}`);
    expect(findCondition(k.status?.conditions, 'Reconciling')).to.equal(undefined);
    const history = (k.status as { history?: { lastReconciledStatus: string; metadata?: { revision?: string } }[] })
      .history;
    expect(history?.map((h) => [h.lastReconciledStatus, h.metadata?.revision])).to.deep.include([
      'HealthCheckCanceled',
      first,
    ]);
    const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns });
    expect(events.items.map((e) => `${e.type} ${e.reason}: ${e.message}`)).to.include(
      'Normal HealthCheckCanceled: Health checks canceled due to new reconciliation ' +
        `triggered by GitRepository/${ns}/fleet`,
    );
  });

  it('a commit to one app applies that app; the others record the revision and still correct drift', async () => {
    const repoName = `apps-${ns}`;
    const cmYaml = (name: string, value: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\ndata: {value: "${value}"}\n`;
    const repo = await createRepo(root, repoName, {
      branch: 'main',
      files: {
        'apps/a/cm.yaml': cmYaml('a', 'one'),
        'apps/b/cm.yaml': cmYaml('b', 'one'),
        'apps/b/other.yaml': cmYaml('b-other', 'one'),
        'apps/c/cm.yaml': cmYaml('c', '${greeting}'),
      },
    });
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'vars' }, data: { greeting: 'hi' } },
    });
    await createSource(repoName);
    await createKustomization('a', { path: './apps/a' });
    // A short interval: its drift is corrected at the next one, not on a new revision.
    await createKustomization('b', { path: './apps/b', interval: '45s' });
    await createKustomization('c', {
      path: './apps/c',
      postBuild: { substituteFrom: [{ kind: 'ConfigMap', name: 'vars' }] },
    });
    const first = await revisionOfSource();
    for (const name of ['a', 'b', 'c']) await applied(name, first);
    const value = async (name: string) => (await core.readNamespacedConfigMap({ name, namespace: ns })).data?.value;
    expect(await value('c')).to.equal('hi');

    // By hand: one object of b edited, the other deleted; a variable of c changed.
    await core.patchNamespacedConfigMap(
      { name: 'b', namespace: ns, body: { data: { value: 'edited' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedConfigMap({ name: 'b-other', namespace: ns });
    await core.patchNamespacedConfigMap(
      { name: 'vars', namespace: ns, body: { data: { greeting: 'hello' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const b = await getKs('b');
    const pushed = await commit(repo.path, { branch: 'main', files: { 'apps/a/cm.yaml': cmYaml('a', 'two') } });
    const second = `main@sha1:${pushed}`;
    await refreshSource();
    await eventually(async () => expect(await value('a')).to.equal('two'), { timeoutMs: 60_000 });
    // c's substitution input changed: applied, though its files did not.
    await applied('c', second);
    expect(await value('c')).to.equal('hello');
    // b's manifests did not change: the new revision is recorded, nothing applied.
    await applied('b', second);
    expect(await value('b')).to.equal('edited');
    await core
      .readNamespacedConfigMap({ name: 'b-other', namespace: ns })
      .then(() => expect.fail('b-other was recreated on a new revision'))
      .catch((err: { code?: number }) => expect(err.code).to.equal(404));
    expect((await getKs('b')).status?.lastAppliedRevision).to.equal(second);
    expect(b.status?.lastAppliedRevision).to.equal(first);
    // At b's interval, drift is corrected: the edit undone, the deleted object back.
    await eventually(
      async () => {
        expect(await value('b')).to.equal('one');
        expect(await value('b-other')).to.equal('one');
      },
      { timeoutMs: 120_000, message: "b's drift corrected at its interval" },
    );
  });
});
