// Automated image updates end to end: tags pushed to the CNCF registry (htpasswd auth) are scanned
// by an ImageRepository, selected by an ImagePolicy, written into git and pushed (signed) by an
// ImageUpdateAutomation of tide-controller running as a process, fetched by the GitRepository and
// applied by the Kustomization, until the Deployment runs the new tag. Also what must not commit:
// policies that match nothing, are locked out or whose registry is down, a suspended automation,
// bad markers and templates; and a push refused because the branch moved, redone on the new tip.
import { AppsV1Api, CoreV1Api, type KubeConfig, type KubernetesObject, type V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ImageUpdateAutomationStatus } from '../../controllers/api/image/imageupdateautomation.ts';
import { ImagePolicyKind } from '../../controllers/api/image/imagepolicy.ts';
import { ImageRepositoryKind } from '../../controllers/api/image/imagerepository.ts';
import { ImageUpdateAutomationKind } from '../../controllers/api/image/imageupdateautomation.ts';
import { resourceTypeOf } from '../../controllers/api/kind.ts';
import { GitRepositoryKind } from '../../controllers/api/source/gitrepository.ts';
import { KustomizationKind } from '../../controllers/api/kustomize/kustomization.ts';
import { apiClientFor } from '../../controllers/runtime/apply/client.ts';
import { findCondition, type Condition } from '../../controllers/runtime/conditions.ts';
import { kubeConfig } from '../support/cluster.ts';
import { startController, type RunningController } from '../support/controller.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { createGpgKey, type GpgKey } from '../support/git/pgp.ts';
import { commit, createRepo, git, revParse } from '../support/git/repos.ts';
import { startGitSshServer, type GitSshServer, makeWritable } from '../support/git/ssh-server.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { freePort } from '../support/net.ts';
import { pushArtifact, startRegistry, type TestRegistry } from '../support/registry.ts';

const exec = promisify(execFile);
const GIT_AUTH = { username: 'flux', password: 'g1t-pa55word' };
const REGISTRY_AUTH = { username: 'scanner', password: 'sc4n-pa55word' };
const AUTHOR = { name: 'Image Bot', email: 'image-bot@example.com' };
// Flux's documented example template (spec.git.commit.messageTemplate).
const TEMPLATE = `Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
`;

type Obj = KubernetesObject & {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown> & { conditions?: Condition[] };
};
type Automation = KubernetesObject & { status?: ImageUpdateAutomationStatus };

describe('ImageUpdateAutomation: registry → git → cluster', function () {
  this.timeout(300_000);
  let kc: KubeConfig;
  let registry: TestRegistry;
  let root: string;
  let server: GitHttpServer;
  let controller: RunningController;
  let gpgKey: GpgKey;
  let ns: string;
  let appNs: string;
  /** Repositories whose next push the server delays to move the branch first (once each). */
  const moveBeforePush = new Map<string, () => Promise<void>>();

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    registry = await startRegistry({ auth: REGISTRY_AUTH });
    const image = { layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', bytes: 'web' }] };
    for (const tag of ['1.2.3', '1.2.4', '1.3.0', 'latest']) {
      await pushArtifact(registry, 'team/web', tag, image);
      // The first test pushes a new tag here mid-way.
      await pushArtifact(registry, 'team/app', tag, image);
    }
    for (const tag of ['2.0.0', '2.0.1']) await pushArtifact(registry, 'team/api', tag, image);
    root = mkdtempSync(join(tmpdir(), 'tide-iua-'));
    server = await startGitHttpServer({
      root,
      auth: GIT_AUTH,
      beforeBackend: async ({ method, path }) => {
        if (method !== 'POST' || !path.endsWith('/git-receive-pack')) return;
        const name = path.split('/')[1]!;
        const move = moveBeforePush.get(name);
        moveBeforePush.delete(name);
        await move?.();
      },
    });
    gpgKey = await createGpgKey('Image Bot');
    controller = await startController(['--controllers=source,kustomize,image', '--requeue-dependency=1s']);
  });

  after(async () => {
    await controller?.stop();
    await server?.close();
    await registry?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  beforeEach(async () => {
    ns = await createTestNamespace(kc, 'iua');
    appNs = `${ns}-apps`;
    const core = kc.makeApiClient(CoreV1Api);
    const auth = Buffer.from(`${REGISTRY_AUTH.username}:${REGISTRY_AUTH.password}`).toString('base64');
    const { stdout: armored } = await exec('gpg', [
      '--homedir',
      gpgKey.home,
      '--batch',
      '--armor',
      '--export-secret-keys',
      gpgKey.fingerprint,
    ]);
    const secrets: V1Secret[] = [
      {
        metadata: { name: 'registry' },
        type: 'kubernetes.io/dockerconfigjson',
        stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [registry.host]: { auth } } }) },
      },
      { metadata: { name: 'git' }, stringData: GIT_AUTH },
      { metadata: { name: 'signing' }, stringData: { 'git.asc': armored } },
    ];
    for (const body of secrets) {
      await core.createNamespacedSecret({ namespace: ns, body });
    }
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(
        controller
          .logs()
          .split('\n')
          .filter((l) => l.includes(ns))
          .slice(-40)
          .join('\n'),
      );
    }
    await deleteNamespace(kc, ns);
    await deleteNamespace(kc, appNs).catch(() => {});
  });

  const client = () => apiClientFor(kc);

  async function apply(
    kind: typeof GitRepositoryKind | unknown,
    name: string,
    spec: Record<string, unknown>,
    extra = {},
  ) {
    const k = kind as typeof GitRepositoryKind;
    const obj: Obj = {
      apiVersion: `${k.group}/${k.version}`,
      kind: k.kind,
      metadata: { name, namespace: ns, ...extra },
      spec,
    };
    await client().apply(resourceTypeOf(k), obj, { fieldManager: 'tide-test', force: true });
  }

  async function get<T extends Obj = Obj>(kind: unknown, name: string): Promise<T> {
    return (await client().get(resourceTypeOf(kind as typeof GitRepositoryKind), {
      namespace: ns,
      name,
    })) as unknown as T;
  }

  async function ready(kind: unknown, name: string, status: 'True' | 'False' = 'True', reason?: string): Promise<Obj> {
    return eventually(
      async () => {
        const o = await get(kind, name);
        const c = findCondition(o.status?.conditions, 'Ready');
        expect(c?.status, `${name}: ${c?.reason} ${c?.message}`).to.equal(status);
        if (reason) expect(c?.reason, `${name}: ${c?.message}`).to.equal(reason);
        if (status === 'True') expect(o.status?.observedGeneration).to.equal(o.metadata?.generation);
        return o;
      },
      { timeoutMs: 90_000, message: `${name} Ready=${status}` },
    );
  }

  const marked = (image: string, policy: string) => `${image} # {"$imagepolicy": "${ns}:${policy}"}`;

  function deploymentYaml(name: string, image: string): string {
    return [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      `  name: ${name}`,
      `  namespace: ${appNs}`,
      'spec:',
      '  replicas: 1',
      '  selector:',
      `    matchLabels: {app: ${name}}`,
      '  template:',
      '    metadata:',
      `      labels: {app: ${name}}`,
      '    spec:',
      '      containers:',
      `        - name: ${name}`,
      `          image: ${image}`,
      '',
    ].join('\n');
  }

  async function imageSources(): Promise<void> {
    for (const app of ['web', 'api']) {
      await apply(ImageRepositoryKind, app, {
        image: `${registry.host}/team/${app}`,
        interval: '1h',
        insecure: true,
        secretRef: { name: 'registry' },
      });
    }
  }

  async function policy(name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}) {
    await apply(ImagePolicyKind, name, { imageRepositoryRef: { name: 'web' }, ...spec }, { labels });
  }

  async function automation(name: string, spec: Record<string, unknown>): Promise<void> {
    await apply(ImageUpdateAutomationKind, name, {
      sourceRef: { kind: 'GitRepository', name: 'fleet' },
      interval: '1h',
      update: { strategy: 'Setters', path: './deploy' },
      ...spec,
      git: { commit: { author: AUTHOR }, ...((spec.git as object) ?? {}) },
    });
  }

  async function ran(name: string, after?: string): Promise<Automation> {
    return eventually(
      async () => {
        const o = await get<Automation & Obj>(ImageUpdateAutomationKind, name);
        expect(o.status?.lastAutomationRunTime, `${name} has run`).to.be.a('string');
        if (after) expect(o.status?.lastAutomationRunTime).to.not.equal(after);
        expect(o.status?.observedGeneration).to.equal(o.metadata?.generation);
        return o;
      },
      { timeoutMs: 90_000, message: `${name} ran` },
    );
  }

  async function fleet(repo: string, files: Record<string, string>, url = server.url(repo)): Promise<string> {
    const created = await createRepo(root, repo, { files });
    await apply(GitRepositoryKind, 'fleet', {
      url,
      interval: '2s',
      ref: { branch: 'main' },
      secretRef: { name: 'git' },
    });
    return created.commit;
  }

  const show = (repo: string, ...args: string[]) => git(['--git-dir', join(root, `${repo}.git`), 'show', ...args]);
  const authorCommits = async (repo: string, branch = 'main') =>
    (await git(['--git-dir', join(root, `${repo}.git`), 'log', `--author=${AUTHOR.email}`, '--format=%H', branch]))
      .split('\n')
      .filter(Boolean);

  it('deploys the newest tag the policy selects: a signed commit pushed, fetched, applied', async () => {
    const repo = `fleet-${ns}`;
    const namespaceYaml = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${appNs}\n`;
    const web = deploymentYaml('web', marked(`${registry.host}/team/app:1.2.3`, 'web'));
    await fleet(repo, { 'deploy/namespace.yaml': namespaceYaml, 'deploy/web.yaml': web, 'README.md': 'fleet\n' });
    await apply(KustomizationKind, 'apps', {
      sourceRef: { kind: 'GitRepository', name: 'fleet' },
      path: './deploy',
      prune: true,
      interval: '1h',
    });
    const apps = kc.makeApiClient(AppsV1Api);
    const image = async () =>
      (await apps.readNamespacedDeployment({ name: 'web', namespace: appNs })).spec?.template.spec?.containers[0]
        ?.image;
    await eventually(async () => expect(await image()).to.equal(`${registry.host}/team/app:1.2.3`), {
      timeoutMs: 90_000,
    });

    await apply(ImageRepositoryKind, 'web', {
      image: `${registry.host}/team/app`,
      interval: '1h',
      insecure: true,
      secretRef: { name: 'registry' },
    });
    await policy('web', { policy: { semver: { range: '~1.2' } } });
    await automation('auto', {
      git: {
        commit: { author: AUTHOR, signingKey: { secretRef: { name: 'signing' } }, messageTemplate: TEMPLATE },
      },
    });

    await eventually(async () => expect(await image()).to.equal(`${registry.host}/team/app:1.2.4`), {
      timeoutMs: 120_000,
      message: 'the Deployment runs 1.2.4',
    });
    const head = (await revParse(join(root, `${repo}.git`), 'refs/heads/main'))!;
    const auto = await ran('auto');
    expect(auto.status).to.deep.include({
      lastPushCommit: head,
      observedSourceRevision: `main@sha1:${head}`,
      observedPolicies: { web: { name: `${registry.host}/team/app`, tag: '1.2.4' } },
    });
    expect(findCondition(auto.status?.conditions, 'Ready')).to.include({ status: 'True' });
    // Every other byte of the file is kept.
    expect(await show(repo, 'main:deploy/web.yaml')).to.equal(web.replace('app:1.2.3', 'app:1.2.4').trimEnd());
    expect(await show(repo, '-s', '--format=%an <%ae>%n%B', 'main')).to.equal(
      [
        `${AUTHOR.name} <${AUTHOR.email}>`,
        'Automated image update',
        '',
        `Automation name: ${ns}/auto`,
        '',
        'Files:',
        '- deploy/web.yaml',
        // `{{ end -}}` trims the blank line, as Go does.
        'Objects:',
        '- Deployment web',
        '  Changes:',
        `    - ${registry.host}/team/app:1.2.3 -> ${registry.host}/team/app:1.2.4`,
      ].join('\n'),
    );
    const verified = await exec('git', ['--git-dir', join(root, `${repo}.git`), 'verify-commit', '-v', 'main'], {
      env: { ...process.env, GNUPGHOME: gpgKey.home },
    });
    expect(verified.stderr).to.contain('Good signature');
    const ks = await ready(KustomizationKind, 'apps');
    expect(ks.status?.lastAppliedRevision).to.equal(`main@sha1:${head}`);
    expect(await authorCommits(repo)).to.deep.equal([head]);

    // A new tag in range: scanned on request, selected, committed on top.
    await pushArtifact(registry, 'team/app', '1.2.5', {
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', bytes: 'web 1.2.5' }],
    });
    await apply(
      ImageRepositoryKind,
      'web',
      { image: `${registry.host}/team/app`, interval: '1h', insecure: true, secretRef: { name: 'registry' } },
      { annotations: { 'reconcile.fluxcd.io/requestedAt': 'new-tag' } },
    );
    await eventually(async () => expect(await image()).to.equal(`${registry.host}/team/app:1.2.5`), {
      timeoutMs: 120_000,
      message: 'the Deployment runs 1.2.5',
    });
    const commits = await authorCommits(repo);
    expect(commits).to.have.length(2);
    expect(commits[1]).to.equal(head);
  });

  it('redoes a push refused because the branch moved on the new tip, keeping the other commit', async () => {
    const repo = `moved-${ns}`;
    await fleet(repo, { 'deploy/web.yaml': deploymentYaml('web', marked(`${registry.host}/team/web:1.2.3`, 'web')) });
    let moved = '';
    moveBeforePush.set(`${repo}.git`, async () => {
      moved = await commit(join(root, `${repo}.git`), { branch: 'main', files: { 'NOTES.md': 'a human was here\n' } });
    });
    await imageSources();
    await policy('web', { policy: { semver: { range: '~1.2' } } });
    await automation('auto', {});
    const auto = await eventually(
      async () => {
        const o = await get<Automation & Obj>(ImageUpdateAutomationKind, 'auto');
        expect(o.status?.lastPushCommit).to.be.a('string');
        return o;
      },
      { timeoutMs: 90_000 },
    );
    expect(moved, 'the branch was moved under the first push').to.not.equal('');
    const bare = join(root, `${repo}.git`);
    expect(await revParse(bare, 'refs/heads/main')).to.equal(auto.status?.lastPushCommit);
    expect(await git(['--git-dir', bare, 'rev-parse', 'main^'])).to.equal(moved);
    expect(await show(repo, 'main:NOTES.md')).to.equal('a human was here');
    expect(await show(repo, 'main:deploy/web.yaml')).to.contain(`${registry.host}/team/web:1.2.4`);
    expect(await authorCommits(repo)).to.have.length(1);
  });

  it('a second automation pushes its own policies to another branch, created from the checkout', async () => {
    const repo = `branches-${ns}`;
    const files = {
      'deploy/web.yaml': deploymentYaml('web', marked(`${registry.host}/team/web:1.2.3`, 'web')),
      'deploy/api.yaml': deploymentYaml('api', marked(`${registry.host}/team/api:2.0.0`, 'api')),
    };
    const base = await fleet(repo, files);
    await imageSources();
    await policy('web', { policy: { semver: { range: '~1.2' } } }, { app: 'web' });
    await apply(
      ImagePolicyKind,
      'api',
      { imageRepositoryRef: { name: 'api' }, policy: { semver: { range: '>=2.0.0' } } },
      { labels: { app: 'api' } },
    );
    await automation('web', { policySelector: { matchLabels: { app: 'web' } } });
    await automation('api', {
      policySelector: { matchLabels: { app: 'api' } },
      git: { commit: { author: AUTHOR }, push: { branch: 'staging' } },
    });
    await eventually(
      async () => {
        for (const name of ['web', 'api']) {
          const o = await get<Automation & Obj>(ImageUpdateAutomationKind, name);
          expect(o.status?.lastPushCommit, name).to.be.a('string');
        }
      },
      { timeoutMs: 90_000 },
    );
    expect(await show(repo, 'main:deploy/web.yaml')).to.contain(`${registry.host}/team/web:1.2.4`);
    expect(await show(repo, 'main:deploy/api.yaml')).to.contain(`${registry.host}/team/api:2.0.0`);
    expect(await show(repo, 'staging:deploy/api.yaml')).to.contain(`${registry.host}/team/api:2.0.1`);
    // Created from the checkout branch as it was then (before or after the other automation's push).
    const bare = join(root, `${repo}.git`);
    const parent = await git(['--git-dir', bare, 'rev-parse', 'staging^']);
    const mainCommits = (await git(['--git-dir', bare, 'rev-list', 'main'])).split('\n');
    expect(mainCommits).to.include(parent);
    expect(mainCommits).to.include(base);
    const api = await get<Automation & Obj>(ImageUpdateAutomationKind, 'api');
    expect(api.status?.lastPushCommit).to.equal(await revParse(bare, 'refs/heads/staging'));
    // The checkout branch's revision when it ran (before or after the other automation's push).
    expect(api.status?.observedSourceRevision).to.match(/^main@sha1:[0-9a-f]{40}$/);
  });

  it('commits nothing for a policy that matches nothing, a locked policy, or a registry that is down', async () => {
    const repo = `locks-${ns}`;
    const files = {
      'deploy/none.yaml': deploymentYaml('none', marked(`${registry.host}/team/web:1.2.3`, 'none')),
      'deploy/locked.yaml': deploymentYaml('locked', marked(`${registry.host}/team/web:1.2.3`, 'locked')),
      'deploy/paused.yaml': deploymentYaml('paused', marked(`${registry.host}/team/web:1.2.3`, 'paused')),
      'deploy/down.yaml': deploymentYaml('down', marked('127.0.0.1:1/team/down:1.0.0', 'down')),
    };
    const base = await fleet(repo, files);
    await imageSources();
    await apply(ImageRepositoryKind, 'down', {
      image: `127.0.0.1:${await freePort()}/team/down`,
      interval: '1h',
      insecure: true,
    });
    await policy('none', { policy: { semver: { range: '>=9.0.0' } } });
    await policy('locked', { policy: { semver: { range: '~1.2' } } }, { 'images.example.com/lock': 'true' });
    await policy('paused', { policy: { semver: { range: '~1.2' } }, suspend: true });
    await apply(ImagePolicyKind, 'down', { imageRepositoryRef: { name: 'down' }, policy: { semver: { range: '*' } } });
    await ready(ImagePolicyKind, 'locked');
    await ready(ImagePolicyKind, 'none', 'False');
    const down = await ready(ImageRepositoryKind, 'down', 'False');
    expect(findCondition(down.status?.conditions, 'Reconciling'), 'the scan is retried').to.include({
      status: 'True',
      reason: 'ProgressingWithRetry',
    });
    await automation('auto', {
      policySelector: { matchExpressions: [{ key: 'images.example.com/lock', operator: 'DoesNotExist' }] },
    });
    const auto = await ran('auto');
    expect(findCondition(auto.status?.conditions, 'Ready')).to.include({
      status: 'True',
      message: 'repository up-to-date',
    });
    expect(auto.status?.lastPushCommit).to.equal(undefined);
    expect(auto.status?.observedPolicies).to.deep.equal({});
    expect(await revParse(join(root, `${repo}.git`), 'refs/heads/main')).to.equal(base);
  });

  it('a suspended automation pushes nothing until resumed', async () => {
    const repo = `suspended-${ns}`;
    const base = await fleet(repo, {
      'deploy/web.yaml': deploymentYaml('web', marked(`${registry.host}/team/web:1.2.3`, 'web')),
    });
    await imageSources();
    await policy('web', { policy: { semver: { range: '~1.2' } } });
    await ready(ImagePolicyKind, 'web');
    const before = controller.logs().length;
    await automation('auto', { suspend: true });
    await eventually(
      async () => {
        const who = `"ImageUpdateAutomation":{"name":"auto","namespace":"${ns}"}`;
        const lines = controller.logs().slice(before).split('\n');
        expect(lines.some((l) => l.includes('reconciliation is suspended') && l.includes(who))).to.equal(true);
      },
      { timeoutMs: 60_000, message: 'the controller looked at the suspended automation' },
    );
    expect((await get<Automation & Obj>(ImageUpdateAutomationKind, 'auto')).status?.lastAutomationRunTime).to.equal(
      undefined,
    );
    expect(await revParse(join(root, `${repo}.git`), 'refs/heads/main')).to.equal(base);
    await automation('auto', { suspend: false });
    const auto = await eventually(
      async () => {
        const o = await get<Automation & Obj>(ImageUpdateAutomationKind, 'auto');
        expect(o.status?.lastPushCommit).to.be.a('string');
        return o;
      },
      { timeoutMs: 90_000 },
    );
    expect(await revParse(join(root, `${repo}.git`), 'refs/heads/main')).to.equal(auto.status?.lastPushCommit);
  });

  it('refuses a marker naming a missing policy, a file not YAML, a bad template: nothing committed', async () => {
    const repo = `bad-${ns}`;
    const base = await fleet(repo, {
      'deploy/web.yaml': deploymentYaml('web', marked(`${registry.host}/team/web:1.2.3`, 'web')),
      'deploy/typo.yaml': deploymentYaml('typo', marked(`${registry.host}/team/web:1.2.3`, 'wbe')),
      'broken/web.yaml': `spec: [1, 2\nimage: ${marked(`${registry.host}/team/web:1.2.3`, 'web')}\n`,
    });
    await imageSources();
    await policy('web', { policy: { semver: { range: '~1.2' } } });
    await ready(ImagePolicyKind, 'web');
    await automation('missing', {});
    let o = await ready(ImageUpdateAutomationKind, 'missing', 'False', 'UpdateFailed');
    expect(findCondition(o.status?.conditions, 'Ready')?.message).to.equal(
      `failed to apply policies: deploy/typo.yaml line 16 names ImagePolicy '${ns}:wbe', which does not exist`,
    );
    await automation('broken', { update: { strategy: 'Setters', path: './broken' } });
    o = await ready(ImageUpdateAutomationKind, 'broken', 'False', 'UpdateFailed');
    expect(findCondition(o.status?.conditions, 'Ready')?.message).to.match(
      /^failed to apply policies: not valid YAML: broken\/web\.yaml: line \d+, column \d+: /,
    );
    await automation('template', {
      git: { commit: { author: AUTHOR, messageTemplate: 'Update {{ .Changed.FileChanges' } },
    });
    o = await ready(ImageUpdateAutomationKind, 'template', 'False', 'InvalidSourceConfiguration');
    expect(findCondition(o.status?.conditions, 'Stalled')).to.include({ status: 'True' });
    expect(findCondition(o.status?.conditions, 'Ready')?.message).to.match(/^spec\.git\.commit\.messageTemplate: /);
    await automation('removed', {
      git: { commit: { author: AUTHOR, messageTemplate: '{{ range .Updated.Images }}{{ . }}{{ end }}' } },
    });
    await ready(ImageUpdateAutomationKind, 'removed', 'False', 'RemovedTemplateField');
    expect(await revParse(join(root, `${repo}.git`), 'refs/heads/main')).to.equal(base);
  });

  describe('over SSH', () => {
    let sshd: GitSshServer | undefined;
    let sshRoot: string;
    before(async function () {
      sshRoot = mkdtempSync(join(tmpdir(), 'tide-iua-ssh-'));
      try {
        sshd = await startGitSshServer({ root: sshRoot, writable: true });
      } catch (err) {
        console.log(`skipping SSH push: ${(err as Error).message}`);
        this.skip();
      }
    });
    after(async () => {
      await sshd?.close();
      rmSync(sshRoot, { recursive: true, force: true });
    });

    it('pushes with the GitRepository identity', async () => {
      const repo = await createRepo(sshRoot, 'fleet', {
        files: { 'deploy/web.yaml': deploymentYaml('web', marked(`${registry.host}/team/web:1.2.3`, 'web')) },
      });
      await makeWritable(repo.path);
      await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
        namespace: ns,
        body: {
          metadata: { name: 'ssh' },
          stringData: { identity: sshd!.clientKey.privateKey, known_hosts: sshd!.knownHosts },
        },
      });
      await apply(GitRepositoryKind, 'fleet', {
        url: sshd!.url('fleet'),
        interval: '1h',
        ref: { branch: 'main' },
        secretRef: { name: 'ssh' },
      });
      await imageSources();
      await policy('web', { policy: { semver: { range: '~1.2' } } });
      await automation('auto', {});
      const auto = await eventually(
        async () => {
          const o = await get<Automation & Obj>(ImageUpdateAutomationKind, 'auto');
          expect(o.status?.lastPushCommit, JSON.stringify(o.status?.conditions)).to.be.a('string');
          return o;
        },
        { timeoutMs: 90_000 },
      );
      expect(await revParse(repo.path, 'refs/heads/main')).to.equal(auto.status?.lastPushCommit);
      expect(await git(['--git-dir', repo.path, 'show', 'main:deploy/web.yaml'])).to.contain(
        `${registry.host}/team/web:1.2.4`,
      );
    });
  });
});
