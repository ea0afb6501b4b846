// GitRepository fields beyond the basics, against real parts: sparseCheckout, recurseSubmodules
// (git http-backend and OpenSSH), proxySecretRef (tinyproxy with basic auth) and provider github
// (a loopback GitHub App token endpoint in front of git http-backend accepting only its token).
import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import { Manager } from '../../controllers/runtime/manager.ts';
import { Metrics } from '../../controllers/runtime/metrics.ts';
import { optionsFrom } from '../../controllers/runtime/setup.ts';
import { setupSource, source } from '../../controllers/source/setup.ts';
import { kubeConfig } from '../support/cluster.ts';
import { installCRDs } from '../support/crds.ts';
import { eventually } from '../support/eventually.ts';
import { generateAppKey, startGitHubAppServer, type GitHubAppServer } from '../support/git/github-app-server.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.ts';
import { commit, createRepo } from '../support/git/repos.ts';
import { startGitSshServer, type GitSshServer } from '../support/git/ssh-server.ts';
import { commitWithSubmodules } from '../support/git/submodules.ts';
import { gitRepositoryHelpers } from '../support/gitrepository.ts';
import { testLogger } from '../support/logger.ts';
import { createTestNamespace, deleteNamespace } from '../support/namespace.ts';
import { freePort } from '../support/net.ts';
import { startProxyServer, type ProxyServer } from '../support/proxy.ts';

const logger = testLogger();
const GIT_PASSWORD = 'g1t-pa55word';
const PROXY_PASSWORD = 'pr0xy-s3cret';
const APP_TOKEN = 'ghs_t0ken-from-the-app';

describe('GitRepository parity: sparseCheckout, recurseSubmodules, proxySecretRef, provider github', function () {
  this.timeout(180_000);
  let kc: KubeConfig;
  let ns: string;
  let root: string;
  let basic: GitHttpServer;
  let tls: GitHttpServer;
  let ssh: GitSshServer;
  let appGit: GitHttpServer;
  let tokenServer: GitHubAppServer;
  let proxy: ProxyServer;
  let manager: Manager;
  let appKey: ReturnType<typeof generateAppKey>;
  let superCommit: string;
  let libCommit: string;

  before(async () => {
    kc = kubeConfig();
    await installCRDs(kc);
    root = mkdtempSync(join(tmpdir(), 'tide-parity-repos-'));
    await createRepo(root, 'app', {
      files: {
        'deploy/app.yaml': 'kind: ConfigMap\n',
        'deploy/sub/extra.yaml': 'kind: Secret\n',
        'deploy-old/old.yaml': 'kind: Old\n',
        'charts/chart/Chart.yaml': 'name: chart\n',
        'docs/guide.md': '# guide\n',
        'README.md': '# app\n',
      },
    });
    // super → lib (../lib.git) → nested (../nested.git): two levels of submodules by relative URL.
    const nested = await createRepo(root, 'nested', { files: { 'nested.yaml': 'kind: Nested\n' } });
    await createRepo(root, 'lib', { files: { 'lib.yaml': 'kind: Lib v1\n' } });
    libCommit = await commitWithSubmodules(join(root, 'lib.git'), 'main', {}, [
      { path: 'deep', url: '../nested.git', commit: nested.commit },
    ]);
    // A newer lib commit on its branch: the superproject must get the one its gitlink records.
    await commit(join(root, 'lib.git'), { branch: 'main', files: { 'lib.yaml': 'kind: Lib v2\n' } });
    await createRepo(root, 'super', { files: { 'app.yaml': 'kind: App\n' } });
    superCommit = await commitWithSubmodules(join(root, 'super.git'), 'main', {}, [
      { path: 'vendor/lib', url: '../lib.git', commit: libCommit },
    ]);

    appKey = generateAppKey();
    [basic, tls, ssh, appGit, tokenServer, proxy] = await Promise.all([
      startGitHttpServer({ root, auth: { username: 'git', password: GIT_PASSWORD } }),
      startGitHttpServer({ root, tls: true }),
      startGitSshServer({ root }),
      // Accepts nothing but the installation token, as GitHub does for an app.
      startGitHttpServer({ root, auth: { username: 'x-access-token', password: APP_TOKEN } }),
      startGitHubAppServer({
        appID: '4242',
        installationID: '777',
        owner: { login: 'acme', kind: 'orgs' },
        publicKeyPem: appKey.publicKeyPem,
        token: APP_TOKEN,
      }),
      startProxyServer({ auth: { username: 'proxy-user', password: PROXY_PASSWORD } }),
    ]);

    const port = await freePort();
    const options = optionsFrom(source, [
      `--storage-path=${mkdtempSync(join(tmpdir(), 'tide-parity-artifacts-'))}`,
      `--storage-addr=127.0.0.1:${port}`,
      `--storage-adv-addr=127.0.0.1:${port}`,
    ]);
    manager = new Manager({
      kubeConfig: kc,
      logger,
      metrics: new Metrics(false),
      retry: { minRetryDelayMs: 200, maxRetryDelayMs: 2000 },
    });
    await setupSource({ manager, options });
    await manager.start();
  });

  after(async () => {
    await manager?.stop();
    await Promise.all([basic, tls, ssh, appGit, tokenServer, proxy].map((s) => s?.close()));
  });

  beforeEach(async function () {
    ns = await createTestNamespace(kc, this.currentTest?.title.slice(0, 30) ?? 'parity');
  });

  afterEach(async () => {
    await deleteNamespace(kc, ns);
  });

  const { create, patchSpec, secret, ready, notReady, download, eventMessages } = gitRepositoryHelpers({
    kc: () => kc,
    ns: () => ns,
    defaults: { ref: { branch: 'main' } },
  });

  describe('spec.sparseCheckout', () => {
    it('packs only the listed directories, rebuilds when the list changes and records it', async () => {
      await secret('creds', { username: 'git', password: GIT_PASSWORD });
      await create('sparse', {
        url: basic.url('app'),
        secretRef: { name: 'creds' },
        sparseCheckout: ['./deploy', 'charts/'],
      });
      const first = await ready('sparse');
      expect([...(await download(first)).keys()].sort()).to.deep.equal([
        'charts/chart/Chart.yaml',
        'deploy/app.yaml',
        'deploy/sub/extra.yaml',
      ]);
      expect(first.status?.observedSparseCheckout).to.deep.equal(['./deploy', 'charts/']);

      // Same commit, other directories: the stored artifact is not up to date any more.
      await patchSpec('sparse', { sparseCheckout: ['deploy/sub'] });
      const second = await ready('sparse');
      expect([...(await download(second)).keys()]).to.deep.equal(['deploy/sub/extra.yaml']);
      expect(second.status?.observedSparseCheckout).to.deep.equal(['deploy/sub']);
      expect(second.status?.artifact?.revision).to.equal(first.status?.artifact?.revision);
      expect(second.status?.artifact?.digest).not.to.equal(first.status?.artifact?.digest);
    });

    it('fails with GitOperationFailed for a directory the commit lacks, keeping the last artifact', async () => {
      await create('missing', { url: basic.url('app'), secretRef: { name: 'creds' }, sparseCheckout: ['deploy'] });
      await secret('creds', { username: 'git', password: GIT_PASSWORD });
      const good = await ready('missing');
      await patchSpec('missing', { sparseCheckout: ['deploy', 'nope'] });
      const o = await notReady('missing', 'GitOperationFailed');
      expect(findCondition(o.status?.conditions, 'FetchFailed')?.message).to.contain(
        "sparse checkout dir 'nope' does not exist",
      );
      expect(findCondition(o.status?.conditions, 'Stalled')).to.equal(undefined);
      expect(o.status?.artifact).to.deep.equal(good.status?.artifact);
      expect(o.status?.observedSparseCheckout).to.deep.equal(['deploy']);
    });

    it('stalls with InvalidSpec naming the field for a path outside the repository', async () => {
      await create('invalid', { url: basic.url('app'), sparseCheckout: ['deploy', '../etc'] });
      const o = await notReady('invalid', 'InvalidSpec', { stalled: true });
      expect(findCondition(o.status?.conditions, 'Ready')?.message).to.contain("spec.sparseCheckout[1] '../etc'");
    });
  });

  describe('spec.recurseSubmodules', () => {
    const expected = {
      'app.yaml': 'kind: App\n',
      'vendor/lib/lib.yaml': 'kind: Lib v1\n',
      'vendor/lib/deep/nested.yaml': 'kind: Nested\n',
    };

    it('packs submodules at their recorded commits, recursively, with the repository credentials (HTTP)', async () => {
      await secret('creds', { username: 'git', password: GIT_PASSWORD });
      await create('subs', { url: basic.url('super'), secretRef: { name: 'creds' }, recurseSubmodules: true });
      const o = await ready('subs');
      expect(o.status?.artifact?.revision).to.equal(`main@sha1:${superCommit}`);
      expect(o.status?.observedRecurseSubmodules).to.equal(true);
      expect(Object.fromEntries(await download(o))).to.deep.equal(expected);
      // Every submodule request carried the repository's credentials.
      const paths = basic.requests.filter((r) => r.status === 200).map((r) => r.path);
      expect(paths).to.include.members(['/lib.git/git-upload-pack', '/nested.git/git-upload-pack']);

      // Turned off, the same commit is rebuilt without them.
      await patchSpec('subs', { recurseSubmodules: false });
      const off = await eventually(async () => {
        const x = await ready('subs');
        expect(x.status?.observedRecurseSubmodules).to.equal(undefined);
        return x;
      });
      expect([...(await download(off)).keys()]).to.deep.equal(['app.yaml']);
    });

    it('fetches submodules over SSH with the same identity', async () => {
      await secret('ssh', { identity: ssh.clientKey.privateKey, known_hosts: ssh.knownHosts });
      await create('ssh-subs', { url: ssh.url('super'), secretRef: { name: 'ssh' }, recurseSubmodules: true });
      expect(Object.fromEntries(await download(await ready('ssh-subs')))).to.deep.equal(expected);
    });

    it('fails with AuthenticationFailed when the credentials do not open a submodule', async () => {
      // The superproject is public; its submodules sit behind basic auth.
      const anon = await startGitHttpServer({ root });
      try {
        await commitWithSubmodules(join(root, 'super.git'), 'private-subs', {}, [
          { path: 'vendor/lib', url: `${basic.url('lib')}`, commit: libCommit },
        ]);
        await create('denied', { url: anon.url('super'), ref: { branch: 'private-subs' }, recurseSubmodules: true });
        const o = await notReady('denied', 'AuthenticationFailed');
        expect(findCondition(o.status?.conditions, 'FetchFailed')?.message).to.contain("submodule 'vendor/lib'");
      } finally {
        await anon.close();
      }
    });
  });

  describe('spec.proxySecretRef', () => {
    it('fetches HTTPS through the proxy, which logs the tunnel', async () => {
      await secret('ca', { 'ca.crt': tls.caPem! });
      await secret('proxy', { address: proxy.address, username: 'proxy-user', password: PROXY_PASSWORD });
      await create('proxied', { url: tls.url('app'), secretRef: { name: 'ca' }, proxySecretRef: { name: 'proxy' } });
      await ready('proxied');
      expect(proxy.requests()).to.include(`CONNECT ${new URL(tls.baseUrl).host}`);
    });

    it('goes through the proxy over plain HTTP with the repository credentials too', async () => {
      await secret('creds', { username: 'git', password: GIT_PASSWORD });
      await secret('proxy', { address: proxy.address, username: 'proxy-user', password: PROXY_PASSWORD });
      await create('plain', { url: basic.url('app'), secretRef: { name: 'creds' }, proxySecretRef: { name: 'proxy' } });
      await ready('plain');
      expect(proxy.requests()).to.include(`GET ${basic.url('app')}/info/refs?service=git-upload-pack`);
    });

    it('fails clearly for wrong proxy credentials, without the password anywhere', async () => {
      await secret('ca', { 'ca.crt': tls.caPem! });
      await secret('proxy', { address: proxy.address, username: 'proxy-user', password: 'wr0ng-pr0xy-pw' });
      await create('wrong', { url: tls.url('app'), secretRef: { name: 'ca' }, proxySecretRef: { name: 'proxy' } });
      const o = await notReady('wrong', 'AuthenticationFailed');
      const message = findCondition(o.status?.conditions, 'FetchFailed')?.message ?? '';
      expect(message).to.contain(`proxy ${new URL(proxy.address).host} rejected the proxy credentials`);
      const everything = JSON.stringify(o) + (await eventMessages()).join('\n');
      expect(everything).not.to.contain('wr0ng-pr0xy-pw');
      expect(everything).not.to.contain(PROXY_PASSWORD);
    });

    it('fails clearly for a missing Secret or a Secret without address, and recovers once it is fixed', async () => {
      await create('nosecret', { url: tls.url('app'), secretRef: { name: 'ca' }, proxySecretRef: { name: 'proxy' } });
      await secret('ca', { 'ca.crt': tls.caPem! });
      let o = await notReady('nosecret', 'AuthenticationFailed');
      expect(findCondition(o.status?.conditions, 'FetchFailed')?.message).to.match(
        /spec\.proxySecretRef: secret '.*\/proxy' not found/,
      );
      await secret('proxy', { username: 'proxy-user', password: PROXY_PASSWORD });
      o = await eventually(async () => {
        const x = await notReady('nosecret', 'AuthenticationFailed');
        expect(findCondition(x.status?.conditions, 'FetchFailed')?.message).to.contain("key 'address' not found");
        return x;
      });
      await secret('proxy', { address: 'socks5://127.0.0.1:1080', username: 'proxy-user', password: PROXY_PASSWORD });
      await eventually(async () => {
        const x = await notReady('nosecret', 'AuthenticationFailed');
        expect(findCondition(x.status?.conditions, 'FetchFailed')?.message).to.contain(
          "proxy URL must use the http or https scheme, got 'socks5'",
        );
      });
      // Secret problems are retried, as in Flux: fixing the Secret is enough.
      await secret('proxy', { address: proxy.address, username: 'proxy-user', password: PROXY_PASSWORD });
      await ready('nosecret');
    });
  });

  describe('spec.provider github', () => {
    const appSecret = (extra: Record<string, string> = {}) => ({
      githubAppID: '4242',
      githubAppInstallationID: '777',
      githubAppPrivateKey: appKey.privateKeyPem,
      githubAppBaseURL: tokenServer.apiUrl,
      ...extra,
    });

    it('authenticates with a GitHub App installation token as x-access-token, fetched once', async () => {
      await secret('app', appSecret());
      const issued = tokenServer.issued();
      await create('gh', { url: appGit.url('app'), provider: 'github', secretRef: { name: 'app' } });
      const o = await ready('gh');
      expect(o.status?.artifact?.revision).to.match(/^main@sha1:/);
      const basicToken = `Basic ${Buffer.from(`x-access-token:${APP_TOKEN}`).toString('base64')}`;
      expect(appGit.requests.filter((r) => r.status === 200).map((r) => r.authorization)).to.include(basicToken);
      // A second reconcile reuses the cached token.
      await create('gh2', { url: appGit.url('app'), provider: 'github', secretRef: { name: 'app' } });
      await ready('gh2');
      expect(tokenServer.issued() - issued).to.equal(1);
    });

    it('finds the installation from githubAppInstallationOwner, through the proxy', async () => {
      await secret('app', appSecret({ githubAppInstallationID: '', githubAppInstallationOwner: 'acme' }));
      await secret('proxy', { address: proxy.address, username: 'proxy-user', password: PROXY_PASSWORD });
      await create('owner', {
        url: appGit.url('lib'),
        provider: 'github',
        secretRef: { name: 'app' },
        proxySecretRef: { name: 'proxy' },
      });
      await ready('owner');
      expect(proxy.requests()).to.include(`GET ${tokenServer.apiUrl}/orgs/acme/installation`);
    });

    it('fails with AuthenticationFailed when the token endpoint refuses the app key', async () => {
      await secret('app', appSecret({ githubAppPrivateKey: generateAppKey().privateKeyPem }));
      await create('badkey', { url: appGit.url('app'), provider: 'github', secretRef: { name: 'app' } });
      const o = await notReady('badkey', 'AuthenticationFailed');
      expect(findCondition(o.status?.conditions, 'FetchFailed')?.message).to.match(
        /GitHub App installation token: .*installation 777.*HTTP 401/,
      );
      expect(tokenServer.requests.at(-1)?.refusal).to.equal('bad signature');
    });

    it('stalls without a secretRef, and refuses app data under the generic provider', async () => {
      await create('nosecret', { url: appGit.url('app'), provider: 'github' });
      await notReady('nosecret', 'InvalidProviderConfiguration', { stalled: true });
      await secret('app', appSecret());
      await create('generic', { url: appGit.url('app'), secretRef: { name: 'app' } });
      const o = await notReady('generic', 'InvalidProviderConfiguration');
      expect(findCondition(o.status?.conditions, 'FetchFailed')?.message).to.contain(
        'has github app data but provider is not set to github',
      );
    });

    it('keeps other providers Stalled as UnsupportedFeature', async () => {
      await create('azure', { url: appGit.url('app'), provider: 'azure' });
      await notReady('azure', 'UnsupportedFeature', { stalled: true });
    });
  });
});
