import type { V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createPublicKey, verify } from 'node:crypto';
import {
  generateAppKey,
  startGitHubAppServer,
  type GitHubAppKeyPair,
  type GitHubAppServer,
} from '../../../e2e/support/git/github-app-server.ts';
import { ReconcileError } from '../../runtime/outcome.ts';
import { SecretError, providerCredentials } from './credentials.ts';
import { GitHubAppTokens, appJwt, githubAppFrom } from './github-app.ts';

const secret = (data: Record<string, string>): V1Secret => ({
  metadata: { name: 'gh', namespace: 'ns' },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});

describe('GitHub App provider', function () {
  this.timeout(20_000);
  let key: GitHubAppKeyPair;
  let server: GitHubAppServer;
  const TOKEN = 'ghs_installation-token-1';

  before(async () => {
    key = generateAppKey();
    server = await startGitHubAppServer({
      appID: '1234',
      installationID: '5678',
      owner: { login: 'acme', kind: 'users' },
      publicKeyPem: key.publicKeyPem,
      token: TOKEN,
    });
  });
  after(() => server?.close());

  const appSecret = (extra: Record<string, string> = {}) =>
    secret({
      githubAppID: '1234',
      githubAppInstallationID: '5678',
      githubAppPrivateKey: key.privateKeyPem,
      githubAppBaseURL: `${server.apiUrl}/`,
      ...extra,
    });

  it('signs an RS256 JWT with iss = app ID, issued 30 s back and valid for two minutes', () => {
    const app = githubAppFrom(appSecret());
    const jwt = appJwt(app, 1_700_000_000_500);
    const [h, p, s] = jwt.split('.') as [string, string, string];
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).to.deep.equal({ alg: 'RS256', typ: 'JWT' });
    expect(JSON.parse(Buffer.from(p, 'base64url').toString())).to.deep.equal({
      iat: 1_699_999_970,
      exp: 1_700_000_090,
      iss: '1234',
    });
    const ok = verify(
      'sha256',
      Buffer.from(`${h}.${p}`),
      createPublicKey(key.publicKeyPem),
      Buffer.from(s, 'base64url'),
    );
    expect(ok).to.equal(true);
    expect(app.api).to.equal(server.apiUrl);
  });

  it('checks the Secret keys as Flux does', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ githubAppID: 'abc' }, /githubAppID is not a number/],
      [{ githubAppInstallationID: '' }, /githubAppInstallationID or githubAppInstallationOwner must be provided/],
      [{ githubAppInstallationOwner: 'acme' }, /only one of githubAppInstallationID and githubAppInstallationOwner/],
      [{ githubAppPrivateKey: 'not a key' }, /githubAppPrivateKey is not a PEM private key/],
      [{ githubAppBaseURL: 'ftp://x' }, /githubAppBaseURL must be http\(s\)/],
    ];
    for (const [extra, why] of cases) {
      expect(() => githubAppFrom(appSecret(extra)), JSON.stringify(extra))
        .to.throw(SecretError)
        .with.property('message')
        .that.matches(why);
    }
  });

  it('buys an installation token once and reuses it until four fifths of its life have passed', async () => {
    let now = Date.now();
    const tokens = new GitHubAppTokens(() => now);
    const app = githubAppFrom(appSecret());
    const before = server.issued();
    expect(await tokens.token(app, { timeoutMs: 5000 })).to.equal(TOKEN);
    expect(await tokens.token(app, { timeoutMs: 5000 })).to.equal(TOKEN);
    expect(server.issued() - before).to.equal(1);
    now += 47 * 60_000;
    await tokens.token(app, { timeoutMs: 5000 });
    expect(server.issued() - before).to.equal(1);
    now += 2 * 60_000;
    await tokens.token(app, { timeoutMs: 5000 });
    expect(server.issued() - before).to.equal(2);
  });

  it('finds the installation of an owner, trying organisations before users', async () => {
    const app = githubAppFrom(appSecret({ githubAppInstallationID: '', githubAppInstallationOwner: 'acme' }));
    expect(await new GitHubAppTokens().token(app, { timeoutMs: 5000 })).to.equal(TOKEN);
    const lookups = server.requests.filter((r) => r.method === 'GET').map((r) => [r.path, r.status]);
    expect(lookups.slice(-2)).to.deep.equal([
      ['/api/v3/orgs/acme/installation', 404],
      ['/api/v3/users/acme/installation', 200],
    ]);
  });

  it('gives basic auth as x-access-token with the token, and refuses app data under the generic provider', async () => {
    const creds = await providerCredentials(appSecret(), 'https://github.example/org/repo', 'github', {
      timeoutMs: 5000,
      tokens: new GitHubAppTokens(),
    });
    expect(creds).to.deep.equal({ username: 'x-access-token', password: TOKEN });
    const generic = await providerCredentials(appSecret(), 'https://h/r', undefined, { timeoutMs: 5000 }).catch(
      (e) => e,
    );
    expect(generic).to.be.instanceOf(ReconcileError).with.property('reason', 'InvalidProviderConfiguration');
    const none = await providerCredentials(secret({ username: 'u', password: 'p' }), 'https://h/r', 'github', {
      timeoutMs: 5000,
    }).catch((e) => e);
    expect(none).to.be.instanceOf(ReconcileError).with.property('reason', 'InvalidProviderConfiguration');
  });

  it('fails with AuthenticationFailed when GitHub refuses, naming the installation', async () => {
    const other = generateAppKey();
    const wrongKey = await providerCredentials(
      appSecret({ githubAppPrivateKey: other.privateKeyPem }),
      'https://h/r',
      'github',
      { timeoutMs: 5000, tokens: new GitHubAppTokens() },
    ).catch((e) => e);
    expect(wrongKey).to.be.instanceOf(ReconcileError).with.property('reason', 'AuthenticationFailed');
    expect(wrongKey.message).to.match(/token request for installation 5678 to 127\.0\.0\.1:\d+ failed \(HTTP 401/);
    expect(server.requests.at(-1)?.refusal).to.equal('bad signature');
  });
});
