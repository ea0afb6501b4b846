// GitRepository against real git servers: git http-backend over HTTP (anonymous, basic, bearer)
// and HTTPS with its own CA, and OpenSSH with key-only auth for a restricted git user.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GitRepositorySpec } from '../../controllers/api/source/gitrepository.ts';
import { optionsFrom } from '../../controllers/runtime/setup.ts';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import { Manager } from '../../controllers/runtime/manager.ts';
import { Metrics } from '../../controllers/runtime/metrics.ts';
import { setupSource, source } from '../../controllers/source/setup.ts';
import { kubeConfig } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { createGpgKey, signedCommit, signedTag, type GpgKey } from '../support/git/pgp.ts';
import { commit, createRepo, git, tag } from '../support/git/repos.ts';
import { startGitSshServer, type GitSshServer } from '../support/git/ssh-server.ts';
import { gitRepositoryHelpers } from '../support/gitrepository.ts';
import { testLogger } from '../support/logger.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { freePort } from '../support/net.ts';

const logger = testLogger();
const PASSWORD = 'sw0rdf1sh-secret';
const TOKEN = 'bearer-t0ken-secret';
const SHARD = 'sharding.fluxcd.io/key';

describe('GitRepository', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let ns: string;
  let root: string;
  let storagePath: string;
  let anon: GitHttpServer;
  let basic: GitHttpServer;
  let bearer: GitHttpServer;
  let https: GitHttpServer;
  let ssh: GitSshServer;
  let manager: Manager;
  let small: Manager;
  let appPath: string;
  let mainCommit: string;
  let gpgKey: GpgKey;

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    root = mkdtempSync(join(tmpdir(), 'tide-repos-'));
    const app = await createRepo(root, 'app', {
      branch: 'master',
      files: {
        'deploy/app.yaml': 'kind: ConfigMap\n',
        'docs/guide.md': '# guide\n',
        'logo.png': 'png',
        '.sourceignore': 'docs/\n',
        '.github/workflows/ci.yaml': 'on: push\n',
      },
    });
    appPath = app.path;
    mainCommit = await commit(app.path, {
      branch: 'main',
      parent: app.commit,
      files: { 'deploy/main.yaml': 'main\n' },
      message: 'main work',
    });
    await tag(app.path, 'v1.0.0', { target: app.commit, message: 'release 1.0.0' });
    await tag(app.path, 'v1.1.0', { target: mainCommit });
    await tag(app.path, 'v2.0.0-rc.1', { target: mainCommit, message: 'rc' });
    await git(['update-ref', 'refs/pull/7/head', mainCommit], { cwd: app.path });
    await createRepo(root, 'lib', {
      branch: 'master',
      files: { 'deploy/k8s/lib.yaml': 'lib v1\n', 'README.md': 'lib\n' },
    });

    [anon, basic, bearer, https, ssh] = await Promise.all([
      startGitHttpServer({ root }),
      startGitHttpServer({ root, auth: { username: 'git', password: PASSWORD } }),
      startGitHttpServer({ root, auth: { bearerToken: TOKEN } }),
      startGitHttpServer({ root, tls: true }),
      startGitSshServer({ root }),
    ]);
    gpgKey = await createGpgKey('Release Bot');

    storagePath = mkdtempSync(join(tmpdir(), 'tide-artifacts-'));
    const port = await freePort();
    const options = optionsFrom(source, [
      `--storage-path=${storagePath}`,
      `--storage-addr=127.0.0.1:${port}`,
      `--storage-adv-addr=127.0.0.1:${port}`,
    ]);
    // Two shards: most objects go to `manager`; those labelled for the small shard go to a manager
    // whose size limit is tiny.
    manager = new Manager({
      kubeConfig: kc,
      logger,
      metrics: new Metrics(false),
      labelSelector: `${SHARD}!=small`,
      retry: { minRetryDelayMs: 200, maxRetryDelayMs: 2000 },
    });
    await setupSource({ manager, options });
    await manager.start();
    const smallPort = await freePort();
    small = new Manager({
      kubeConfig: kc,
      logger,
      metrics: new Metrics(false),
      labelSelector: `${SHARD}=small`,
      retry: { minRetryDelayMs: 200, maxRetryDelayMs: 2000 },
    });
    await setupSource({
      manager: small,
      options: optionsFrom(source, [
        `--storage-path=${storagePath}`,
        `--storage-addr=127.0.0.1:${smallPort}`,
        `--storage-adv-addr=127.0.0.1:${smallPort}`,
        '--git-max-size=2000',
      ]),
    });
    await small.start();
  });

  after(async () => {
    await manager?.stop();
    await small?.stop();
    await Promise.all([anon, basic, bearer, https, ssh].map((s) => s?.close()));
  });

  beforeEach(async function () {
    ns = await createTestNamespace(kc, this.currentTest?.title.slice(0, 30) ?? 'gitrepo');
  });

  afterEach(async () => {
    await deleteNamespace(kc, ns);
  });

  const { api, ref, create, get, patchSpec, requestReconcile, secret, ready, notReady, download } =
    gitRepositoryHelpers({ kc: () => kc, ns: () => ns, checkSize: true });

  describe('fetching', () => {
    it('publishes a branch over HTTP as a downloadable, verified artifact without ignored files', async () => {
      await create('app', { url: anon.url('app') });
      const o = await ready('app');
      const commitSha = await git(['rev-parse', 'refs/heads/master'], { cwd: appPath });
      expect(o.status?.artifact).to.deep.include({
        revision: `master@sha1:${commitSha}`,
        path: `gitrepository/${ns}/app/${commitSha}.tar.gz`,
      });
      expect(findCondition(o.status?.conditions, 'Ready')?.message).to.equal(
        `stored artifact for revision 'master@sha1:${commitSha}'`,
      );
      expect(findCondition(o.status?.conditions, 'ArtifactInStorage')).to.include({
        status: 'True',
        reason: 'Succeeded',
      });
      expect(o.metadata?.finalizers).to.deep.equal(['finalizers.fluxcd.io']);
      const files = await download(o);
      // As in Flux, a .sourceignore with patterns replaces the default exclusions (images, CI
      // files) instead of adding to them; docs/ is what it excludes.
      expect([...files.keys()].sort()).to.deep.equal([
        '.github/workflows/ci.yaml',
        '.sourceignore',
        'deploy/app.yaml',
        'logo.png',
      ]);
      const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns });
      expect(events.items.map((e) => `${e.reason}: ${e.message}`)).to.include(
        "NewArtifact: stored artifact for commit 'initial commit'".replace(
          'initial commit',
          await git(['log', '-1', '--format=%s', commitSha], { cwd: appPath }),
        ),
      );
    });

    it('resolves branch, tag, semver, name and commit refs with Flux revisions', async () => {
      const master = await git(['rev-parse', 'refs/heads/master'], { cwd: appPath });
      const cases: [string, GitRepositorySpec['ref'], string][] = [
        ['branch', { branch: 'main' }, `main@sha1:${mainCommit}`],
        ['tag', { tag: 'v1.0.0' }, `v1.0.0@sha1:${master}`],
        ['lightweight', { tag: 'v1.1.0' }, `v1.1.0@sha1:${mainCommit}`],
        ['semver', { semver: '>=1.0.0 <2.0.0' }, `v1.1.0@sha1:${mainCommit}`],
        ['name', { name: 'refs/pull/7/head' }, `refs/pull/7/head@sha1:${mainCommit}`],
        ['commit', { branch: 'main', commit: master }, `main@sha1:${master}`],
        ['bare-commit', { commit: mainCommit }, `sha1:${mainCommit}`],
      ];
      for (const [name, gitRef] of cases) await create(name, { url: anon.url('app'), ref: gitRef });
      for (const [name, , revision] of cases) {
        const o = await ready(name);
        expect(o.status?.artifact?.revision, name).to.equal(revision);
      }
      const files = await download(await get('branch'));
      expect(files.get('deploy/main.yaml')).to.equal('main\n');
    });

    it('follows new commits, keeps the previous artifact within the retention, and honours spec.ignore', async () => {
      const repo = await createRepo(root, `moving-${ns}`, {
        branch: 'master',
        files: { 'a.yaml': 'one\n', 'pic.png': 'x' },
      });
      await create('moving', { url: anon.url(`moving-${ns}`) });
      const first = await ready('moving');
      expect([...(await download(first)).keys()], 'default exclusions drop images').to.deep.equal(['a.yaml']);
      const next = await commit(repo.path, { branch: 'master', files: { 'a.yaml': 'two\n' } });
      const second = await ready('moving', await requestReconcile('moving'));
      expect(second.status?.artifact?.revision).to.equal(`master@sha1:${next}`);
      expect((await download(second)).get('a.yaml')).to.equal('two\n');
      expect(
        existsSync(join(storagePath, first.status!.artifact!.path)),
        'previous artifact kept (retention 2)',
      ).to.equal(true);

      await patchSpec('moving', { ignore: '/a.yaml\n' });
      const third = await ready('moving');
      expect(third.status?.observedIgnore).to.equal('/a.yaml\n');
      expect([...(await download(third)).keys()], 'spec.ignore replaces the default exclusions').to.deep.equal([
        'pic.png',
      ]);
    });

    it('copies included repositories into toPath and rebuilds when they change', async () => {
      const lib = await createRepo(root, `lib-${ns}`, {
        branch: 'master',
        files: { 'deploy/k8s/lib.yaml': 'lib v1\n', 'README.md': 'lib\n' },
      });
      await create('lib', { url: anon.url(`lib-${ns}`) });
      await create('main', {
        url: anon.url('app'),
        include: [{ repository: { name: 'lib' }, fromPath: 'deploy/k8s', toPath: 'vendor/lib' }],
      });
      const o = await ready('main');
      expect((await download(o)).get('vendor/lib/lib.yaml')).to.equal('lib v1\n');
      expect(o.status?.includedArtifacts).to.have.length(1);
      expect(o.status?.observedInclude).to.deep.equal([
        { repository: { name: 'lib' }, fromPath: 'deploy/k8s', toPath: 'vendor/lib' },
      ]);

      await commit(lib.path, { branch: 'master', files: { 'deploy/k8s/lib.yaml': 'lib v2\n' } });
      await requestReconcile('lib');
      const rebuilt = await eventually(
        async () => {
          const m = await get('main');
          expect((await download(m)).get('vendor/lib/lib.yaml')).to.equal('lib v2\n');
          return m;
        },
        { timeoutMs: 60_000, message: 'the including repository was not rebuilt' },
      );
      expect(rebuilt.status?.artifact?.digest).to.not.equal(o.status?.artifact?.digest);
    });
  });

  describe('credentials', () => {
    it('basic auth: the right password works; a wrong one is AuthenticationFailed, last artifact kept', async () => {
      await secret('creds', { username: 'git', password: PASSWORD });
      await create('private', { url: basic.url('app'), secretRef: { name: 'creds' } });
      const good = await ready('private');
      await secret('creds', { username: 'git', password: 'wrong-password' });
      const bad = await notReady('private', 'AuthenticationFailed', {
        requestedAt: await requestReconcile('private'),
      });
      expect(findCondition(bad.status?.conditions, 'FetchFailed')).to.include({
        status: 'True',
        reason: 'AuthenticationFailed',
      });
      expect(bad.status?.artifact, 'the last good artifact stays in status').to.deep.equal(good.status?.artifact);
      expect((await download(bad)).size).to.be.greaterThan(0);
      const text =
        JSON.stringify(bad) +
        JSON.stringify((await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns })).items);
      expect(text).to.not.include('wrong-password');
      expect(text).to.not.include(PASSWORD);
    });

    it('bearer token', async () => {
      await secret('token', { bearerToken: TOKEN });
      await create('token', { url: bearer.url('app'), secretRef: { name: 'token' } });
      await ready('token');
      await create('no-token', { url: bearer.url('app') });
      await notReady('no-token', 'AuthenticationFailed');
    });

    it('HTTPS with the CA from the Secret; without it the certificate is refused', async () => {
      await secret('ca', { 'ca.crt': https.caPem! });
      await create('tls', { url: https.url('app'), secretRef: { name: 'ca' } });
      await ready('tls');
      await create('untrusted', { url: https.url('app') });
      const o = await notReady('untrusted', 'GitOperationFailed');
      expect(findCondition(o.status?.conditions, 'Ready')?.message).to.match(/certificate/i);
    });

    it('SSH with identity and known_hosts; an unknown host key is refused', async () => {
      await secret('ssh', { identity: ssh.clientKey.privateKey, known_hosts: ssh.knownHosts });
      await create('ssh', { url: ssh.url('app'), secretRef: { name: 'ssh' }, ref: { branch: 'main' } });
      expect((await ready('ssh')).status?.artifact?.revision).to.equal(`main@sha1:${mainCommit}`);
      await secret('ssh-enc', {
        identity: ssh.encryptedClientKey.privateKey,
        password: ssh.encryptedClientKey.passphrase,
        known_hosts: ssh.knownHosts,
      });
      await create('ssh-enc', { url: ssh.url('app'), secretRef: { name: 'ssh-enc' }, ref: { tag: 'v1.0.0' } });
      await ready('ssh-enc');
      const strangerKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
      const stranger = `[127.0.0.1]:${ssh.port} ${strangerKey}`;
      await secret('ssh-unknown', { identity: ssh.clientKey.privateKey, known_hosts: stranger });
      await create('ssh-unknown', { url: ssh.url('app'), secretRef: { name: 'ssh-unknown' } });
      const o = await notReady('ssh-unknown', 'AuthenticationFailed');
      expect(findCondition(o.status?.conditions, 'Ready')?.message).to.match(/host key/i);
    });

    it('a malformed Secret is an AuthenticationFailed that names the missing key', async () => {
      await secret('half', { identity: ssh.clientKey.privateKey });
      await create('half', { url: ssh.url('app'), secretRef: { name: 'half' } });
      const o = await notReady('half', 'AuthenticationFailed');
      expect(findCondition(o.status?.conditions, 'Ready')?.message).to.include('missing known_hosts');
      expect(JSON.stringify(o)).to.not.include('PRIVATE KEY');
    });
  });

  describe('bad input', () => {
    it('a branch that does not exist fails with GitOperationFailed naming it', async () => {
      await create('nobranch', { url: anon.url('app'), ref: { branch: 'does-not-exist' } });
      const o = await notReady('nobranch', 'GitOperationFailed');
      expect(findCondition(o.status?.conditions, 'Ready')?.message).to.include('refs/heads/does-not-exist');
      expect(findCondition(o.status?.conditions, 'FetchFailed')?.status).to.equal('True');
    });

    it('an unreachable server fails and is retried, not stalled', async () => {
      const port = await freePort();
      await create('down', { url: `http://127.0.0.1:${port}/app.git` });
      const o = await notReady('down', 'GitOperationFailed');
      expect(findCondition(o.status?.conditions, 'Stalled')).to.equal(undefined);
      expect(findCondition(o.status?.conditions, 'Reconciling')).to.include({
        status: 'True',
        reason: 'ProgressingWithRetry',
      });
    });

    it('an invalid semver range is Stalled; an unsupported scheme is refused by the API server', async () => {
      await create('badsemver', { url: anon.url('app'), ref: { semver: '>= 1.0, <<' } });
      const o = await notReady('badsemver', 'InvalidSpec');
      expect(findCondition(o.status?.conditions, 'Stalled')).to.include({ status: 'True', reason: 'InvalidSpec' });
      expect(o.status?.observedGeneration).to.equal(o.metadata?.generation);
      let error: unknown;
      await create('ftp', { url: 'ftp://example.com/repo.git' }).catch((e: unknown) => (error = e));
      expect(String((error as { body?: string })?.body)).to.include('spec.url');
    });

    it('a repository over the size limit fails with a message naming the limit, and publishes nothing', async () => {
      await createRepo(root, `big-${ns}`, { branch: 'master', files: { 'big.yaml': 'x'.repeat(50_000) } });
      await create('big', { url: anon.url(`big-${ns}`) }, { [SHARD]: 'small' });
      const o = await notReady('big', 'ArchiveOperationFailed');
      expect(findCondition(o.status?.conditions, 'Ready')?.message).to.match(/failed to archive artifact: .*2000/);
      expect(findCondition(o.status?.conditions, 'StorageOperationFailed')).to.include({
        status: 'True',
        reason: 'ArchiveOperationFailed',
      });
      expect(o.status?.artifact).to.equal(undefined);
      const dir = join(storagePath, 'gitrepository', ns, 'big');
      expect(existsSync(dir) ? readdirSync(dir) : [], 'no partial artifact left behind').to.deep.equal([]);
    });

    it('suspend stops reconciling until resumed', async () => {
      await create('paused', { url: anon.url('app'), suspend: true });
      const requestedAt = await requestReconcile('paused');
      // A repository created after it, from the same source, is fetched and published: 'paused',
      // queued first, would have been too.
      await create('unpaused', { url: anon.url('app') });
      await ready('unpaused');
      const paused = await get('paused');
      expect(paused.status?.artifact).to.equal(undefined);
      expect(paused.status?.lastHandledReconcileAt, 'a suspended object is not reconciled').to.not.equal(requestedAt);
      await patchSpec('paused', { suspend: null });
      await ready('paused');
    });
  });

  describe('verification', () => {
    it('verifies signed commits and tags against the keys in the Secret, and refuses other keys', async () => {
      const repo = await createRepo(root, `signed-${ns}`, { branch: 'master', files: { 'a.yaml': 'a\n' } });
      const signed = await signedCommit(repo.path, 'master', gpgKey);
      await signedTag(repo.path, 'v1.0.0', signed, gpgKey);
      const stranger = await createGpgKey('Stranger');
      await secret('trusted', { 'bot.asc': gpgKey.armoredPublicKey });
      await secret('untrusted', { 'stranger.asc': stranger.armoredPublicKey });
      await create('head', { url: anon.url(`signed-${ns}`), verify: { mode: 'HEAD', secretRef: { name: 'trusted' } } });
      await create('tag', {
        url: anon.url(`signed-${ns}`),
        ref: { tag: 'v1.0.0' },
        verify: { mode: 'TagAndHEAD', secretRef: { name: 'trusted' } },
      });
      await create('wrong-key', {
        url: anon.url(`signed-${ns}`),
        verify: { mode: 'HEAD', secretRef: { name: 'untrusted' } },
      });
      for (const name of ['head', 'tag']) {
        const o = await ready(name);
        expect(findCondition(o.status?.conditions, 'SourceVerified'), name).to.include({
          status: 'True',
          reason: 'Succeeded',
        });
      }
      const bad = await notReady('wrong-key', 'VerificationError');
      expect(findCondition(bad.status?.conditions, 'SourceVerified')).to.include({ status: 'False', reason: 'Failed' });
      expect(bad.status?.artifact).to.equal(undefined, 'nothing is published from an unverified commit');
    });
  });

  describe('lifecycle', () => {
    it('handles requestedAt and removes its artifacts and finalizer on deletion', async () => {
      await create('gone', { url: anon.url('app') });
      const o = await ready('gone');
      const at = await requestReconcile('gone');
      await ready('gone', at);
      const dir = join(storagePath, 'gitrepository', ns, 'gone');
      expect(existsSync(join(storagePath, o.status!.artifact!.path))).to.equal(true);
      await api().deleteNamespacedCustomObject(ref('gone'));
      await eventually(async () => {
        let status = 0;
        await get('gone').catch((e: { code?: number }) => (status = e.code ?? 0));
        expect(status).to.equal(404);
      });
      expect(existsSync(dir), 'artifacts removed').to.equal(false);
    });
  });
});
