// These tests run the real Helm helper (the tide-helm that e2e/controlplane/build.sh builds).
import { expect } from 'chai';
import { createReadStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { parse } from 'yaml';
import { resolveBinDir } from '../../e2e/cluster/cluster.ts';
import { artifact } from '../../e2e/support/tree.ts';
import { Logger } from '../runtime/logger.ts';
import { HelmHelper, HelmHelperError, type HelmTarget, type InstallParams } from './client.ts';

const chartYaml = (name: string, version: string, extra = '') =>
  `apiVersion: v2\nname: ${name}\nversion: ${version}\n${extra}`;
const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n';

/** Every file of a .tgz, by name. */
async function untar(path: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c) => chunks.push(c as Buffer));
    stream.on('end', () => {
      files.set(header.name, Buffer.concat(chunks).toString('utf8'));
      next();
    });
  });
  await pipeline(createReadStream(path), createGunzip(), extract);
  return files;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.fail('expected the request to fail'),
    (e: unknown) => e as HelmHelperError,
  );

const readLines = (path: string) =>
  readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('HelmHelper (real tide-helm)', function () {
  this.timeout(30_000);
  let helperPath: string;
  let helper: HelmHelper;
  let root: string;

  before(function () {
    this.timeout(900_000);
    helperPath = join(resolveBinDir(), 'tide-helm');
    root = artifact(
      {
        'app/Chart.yaml': chartYaml(
          'app',
          '0.1.0',
          `dependencies:
- {name: lib, version: 1.x, repository: "file://../lib"}
- {name: redis, version: 2.0.0, repository: https://charts.example.com, alias: cache, condition: cache.enabled}
`,
        ),
        'app/Chart.lock': `dependencies:
- {name: lib, version: 1.2.0, repository: "file://../lib"}
- {name: redis, version: 2.0.0, repository: https://charts.example.com}
digest: sha256:0000
generated: "2024-01-01T00:00:00Z"
`,
        'app/values.yaml': 'image: {repository: nginx, tag: "1.0"}\nreplicas: 1\n',
        'app/templates/cm.yaml': configMap,
        'lib/Chart.yaml': chartYaml('lib', '1.2.0'),
        'lib/templates/cm.yaml': configMap,
        'redis/Chart.yaml': chartYaml('redis', '2.0.0'),
        'redis/values.yaml': 'port: 6379\n',
        'values/a.yaml': 'image: {repository: nginx, tag: "1.1", pullPolicy: Always}\nresources: {limits: {cpu: 1}}\n',
        'values/b.yaml': 'image: {tag: "2.0"}\nresources: {limits: {memory: 1Gi}}\nreplicas: 3\n',
        'values/list.yaml': '- not\n- a map\n',
        'index.yaml': `apiVersion: v1
generated: "2024-01-01T00:00:00Z"
entries:
  zeta:
  - {name: zeta, version: 1.0.0, urls: [zeta-1.0.0.tgz], digest: d1, created: "2024-01-01T00:00:00Z"}
  - {name: zeta, version: 2.0.0, urls: [zeta-2.0.0.tgz], digest: d2, created: "2024-02-01T00:00:00Z", apiVersion: v2}
  - {name: zeta, version: 1.5.0, urls: [zeta-1.5.0.tgz, https://mirror/zeta-1.5.0.tgz], digest: d3}
  alpha:
  - {name: alpha, version: 0.1.0, urls: [alpha-0.1.0.tgz], apiVersion: v2}
  - {name: alpha, version: 0.10.0, urls: [alpha-0.10.0.tgz], apiVersion: v2}
  - {version: 0.2.0, urls: [nameless.tgz]}
  broken:
  - {version: 1.0.0}
`,
        'bad-yaml.yaml': 'apiVersion: v1\nentries: [unclosed\n',
        'no-api-version.yaml': 'entries:\n  a:\n  - {name: a, version: 1.0.0}\n',
      },
      'tide-helm-',
    );
    helper = new HelmHelper({ path: helperPath });
  });

  after(async () => {
    await helper?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('answers ping with the Helm SDK version', async () => {
    expect(await helper.request('ping', {})).to.deep.equal({ version: 'v4.3.1' });
  });

  it('rejects an unknown op with UnknownOp', async () => {
    const err = await failure(helper.request('nope', {}));
    expect(err).to.be.instanceOf(HelmHelperError);
    expect(err.code).to.equal('UnknownOp');
  });

  describe('index.parse', () => {
    it('writes one line per chart in name order, versions newest first', async () => {
      const out = join(root, 'index.jsonl');
      const summary = await helper.parseIndex({ path: join(root, 'index.yaml'), out });
      // Like Helm, versions that do not validate (no name) are dropped, and a chart left empty with them.
      expect(summary).to.deep.equal({ charts: 2, versions: 5 });
      const lines = readLines(out);
      expect(lines.map((l) => l.name)).to.deep.equal(['alpha', 'zeta']);
      expect(lines[0].versions.map((v: { version: string }) => v.version)).to.deep.equal(['0.10.0', '0.1.0']);
      expect(lines[1].versions).to.deep.equal([
        { version: '2.0.0', digest: 'd2', urls: ['zeta-2.0.0.tgz'], created: '2024-02-01T00:00:00Z', apiVersion: 'v2' },
        {
          version: '1.5.0',
          digest: 'd3',
          urls: ['zeta-1.5.0.tgz', 'https://mirror/zeta-1.5.0.tgz'],
          created: '',
          apiVersion: 'v1',
        },
        { version: '1.0.0', digest: 'd1', urls: ['zeta-1.0.0.tgz'], created: '2024-01-01T00:00:00Z', apiVersion: 'v1' },
      ]);
    });

    it('fails with InvalidIndex on YAML that does not parse, or without apiVersion', async () => {
      for (const [file, text] of [
        ['bad-yaml.yaml', /bad-yaml\.yaml.*yaml/],
        ['no-api-version.yaml', /no API version/],
        ['missing.yaml', /no such file/],
      ] as const) {
        const err = await failure(helper.parseIndex({ path: join(root, file), out: join(root, `${file}.jsonl`) }));
        expect(err.code, file).to.equal('InvalidIndex');
        expect(err.message, file).to.match(text);
      }
    });
  });

  describe('chart.inspect', () => {
    it('reads a chart directory: metadata, dependencies and lock', async () => {
      expect(await helper.inspectChart({ path: join(root, 'app') })).to.deep.equal({
        name: 'app',
        version: '0.1.0',
        apiVersion: 'v2',
        type: '',
        dependencies: [
          { name: 'lib', version: '1.x', repository: 'file://../lib', alias: '', condition: '' },
          {
            name: 'redis',
            version: '2.0.0',
            repository: 'https://charts.example.com',
            alias: 'cache',
            condition: 'cache.enabled',
          },
        ],
        lock: [
          { name: 'lib', version: '1.2.0', repository: 'file://../lib' },
          { name: 'redis', version: '2.0.0', repository: 'https://charts.example.com' },
        ],
      });
    });

    it('reads a packaged chart, and fails with InvalidChart on what is not one', async () => {
      const { path } = await helper.packageChart({ path: join(root, 'redis'), out: join(root, 'inspect') });
      const info = await helper.inspectChart({ path });
      expect(info).to.include({ name: 'redis', version: '2.0.0', apiVersion: 'v2' });
      expect(info.lock).to.equal(null);
      const err = await failure(helper.inspectChart({ path: join(root, 'values') }));
      expect(err.code).to.equal('InvalidChart');
      expect(err.message).to.match(/Chart\.yaml/);
    });
  });

  describe('chart.package', () => {
    let redisTgz: string;
    before(async () => {
      redisTgz = (await helper.packageChart({ path: join(root, 'redis'), out: join(root, 'remote') })).path;
      expect(redisTgz).to.equal(join(root, 'remote', 'redis-2.0.0.tgz'));
    });

    it('attaches file:// and given dependencies, overrides the version and merges values files', async () => {
      const out = join(root, 'out');
      const res = await helper.packageChart({
        path: join(root, 'app'),
        out,
        version: '0.1.0+abcdef012345',
        valuesFiles: [join(root, 'values/a.yaml'), join(root, 'values/b.yaml')],
        dependencies: { cache: redisTgz },
      });
      expect(res).to.deep.equal({ path: join(out, 'app-0.1.0+abcdef012345.tgz'), name: 'app', version: res.version });
      expect(res.version).to.equal('0.1.0+abcdef012345');
      const files = await untar(res.path);
      // The SDK's saver writes subcharts unpacked under charts/, as `helm package` does.
      expect([...files.keys()]).to.include.members([
        'app/Chart.yaml',
        'app/values.yaml',
        'app/templates/cm.yaml',
        'app/charts/lib/Chart.yaml',
        'app/charts/lib/templates/cm.yaml',
        'app/charts/redis/Chart.yaml',
        'app/charts/redis/values.yaml',
      ]);
      expect(parse(files.get('app/Chart.yaml')!)).to.include({ name: 'app', version: '0.1.0+abcdef012345' });
      expect(parse(files.get('app/charts/redis/Chart.yaml')!)).to.include({ version: '2.0.0' });
      expect(parse(files.get('app/values.yaml')!)).to.deep.equal({
        image: { repository: 'nginx', tag: '2.0', pullPolicy: 'Always' },
        resources: { limits: { cpu: 1, memory: '1Gi' } },
        replicas: 3,
      });
      expect(await helper.inspectChart({ path: res.path })).to.include({ version: '0.1.0+abcdef012345' });
    });

    it('keeps the chart as it is without dependencies or values files', async () => {
      const res = await helper.packageChart({ path: join(root, 'app'), out: join(root, 'plain') });
      const files = await untar(res.path);
      expect([...files.keys()].filter((f) => f.includes('/charts/'))).to.deep.equal([]);
      expect(parse(files.get('app/values.yaml')!)).to.deep.equal({
        image: { repository: 'nginx', tag: '1.0' },
        replicas: 1,
      });
    });

    it('fails with MissingDependency naming a dependency that was not given', async () => {
      const err = await failure(
        helper.packageChart({ path: join(root, 'app'), out: join(root, 'missing'), dependencies: {} }),
      );
      expect(err.code).to.equal('MissingDependency');
      expect(err.message).to.match(/"cache"/);
    });

    it('refuses a file:// dependency outside root', async () => {
      const err = await failure(
        helper.packageChart({
          path: join(root, 'app'),
          out: join(root, 'outside'),
          dependencies: { cache: redisTgz },
          root: join(root, 'app'),
        }),
      );
      expect(err.code).to.equal('MissingDependency');
      expect(err.message).to.match(/outside/);
    });

    it('fails with InvalidValues naming a values file that is not a map', async () => {
      const list = join(root, 'values/list.yaml');
      const err = await failure(
        helper.packageChart({ path: join(root, 'redis'), out: join(root, 'invalid'), valuesFiles: [list] }),
      );
      expect(err.code).to.equal('InvalidValues');
      expect(err.message).to.include(list);
    });
  });

  describe('release ops without a cluster', () => {
    /** A kubeconfig of a server nothing listens on. */
    const unreachable = () => {
      const path = join(root, 'unreachable.kubeconfig');
      writeFileSync(
        path,
        `apiVersion: v1
kind: Config
current-context: c
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
`,
        { mode: 0o600 },
      );
      return { kubeconfig: path, storageNamespace: 'apps', persistent: false };
    };
    const install = (target: HelmTarget, name: string, chart: string): InstallParams => ({
      target,
      name,
      chart,
      namespace: 'apps',
      values: { image: { tag: '2.0' } },
      timeoutMs: 5_000,
      wait: false,
      waitForJobs: false,
      disableHooks: false,
      disableOpenAPIValidation: false,
      disableSchemaValidation: false,
      replace: false,
      createNamespace: false,
    });

    it('fails with InvalidParams on a kubeconfig that cannot be read or a bad release name', async () => {
      const missing = { kubeconfig: join(root, 'no-such-kubeconfig'), storageNamespace: 'apps' };
      let err = await failure(helper.history({ target: missing, name: 'app' }));
      expect(err.code).to.equal('InvalidParams');
      expect(err.message).to.include('no-such-kubeconfig');
      err = await failure(helper.install(install(unreachable(), 'Not_A_Name', join(root, 'app'))));
      expect(err.code).to.equal('InvalidParams');
    });

    it('fails with InvalidChart before it reaches the cluster, InstallFailed when it cannot', async () => {
      const target = unreachable();
      let err = await failure(helper.install(install(target, 'app', join(root, 'no-such-chart'))));
      expect(err.code).to.equal('InvalidChart');
      err = await failure(helper.install(install(target, 'app', join(root, 'lib'))));
      expect(err.code).to.equal('InstallFailed');
      expect(err.message).to.include('127.0.0.1:1');
    });
  });

  describe('the process', () => {
    it('answers 10 requests sent at once', async () => {
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          i % 2
            ? helper.inspectChart({ path: join(root, 'lib') }).then((c) => c.name)
            : helper.request<{ version: string }>('ping').then((p) => p.version),
        ),
      );
      expect(answers).to.deep.equal(Array.from({ length: 10 }, (_, i) => (i % 2 ? 'lib' : 'v4.3.1')));
    });

    it('rejects a timed-out or aborted request, and only it', async () => {
      const big = bigIndex(root);
      const timedOut = failure(helper.parseIndex({ path: big, out: `${big}.1.jsonl` }, { timeoutMs: 1 }));
      const controller = new AbortController();
      const aborted = failure(helper.parseIndex({ path: big, out: `${big}.2.jsonl` }, { signal: controller.signal }));
      controller.abort(new Error('stop'));
      const pinged = helper.request('ping');
      expect((await timedOut).code).to.equal('Timeout');
      expect((await aborted).message).to.equal('stop');
      expect(await pinged).to.deep.equal({ version: 'v4.3.1' });
    });

    it('rejects what is pending when the helper dies, and starts a new one for the next request', async () => {
      await helper.request('ping');
      const pid = helper.pid!;
      const big = bigIndex(root);
      const pending = failure(helper.parseIndex({ path: big, out: `${big}.3.jsonl` }));
      await new Promise((r) => setImmediate(r));
      process.kill(pid, 'SIGKILL');
      const err = await pending;
      expect(err.code).to.equal('HelperExited');
      expect(err.message).to.match(/^helm helper exited with signal SIGKILL/);
      expect(await helper.request('ping')).to.deep.equal({ version: 'v4.3.1' });
      expect(helper.pid).to.be.a('number').and.not.equal(pid);
    });

    it('reports the exit code and last stderr line of a helper that dies, and backs off restarting it', async () => {
      const script = join(root, 'dying-helper.sh');
      writeFileSync(script, '#!/bin/sh\necho starting >&2\necho boom >&2\nexit 3\n', { mode: 0o755 });
      const logged: string[] = [];
      const logger = new Logger({ level: 'debug', encoding: 'json', write: (l) => logged.push(l) });
      const dying = new HelmHelper({ path: script, logger });
      const first = await failure(dying.request('ping'));
      expect(first.code).to.equal('HelperExited');
      expect(first.message).to.equal('helm helper exited with code 3: boom');
      const started = Date.now();
      await failure(dying.request('ping'));
      await failure(dying.request('ping'));
      expect(Date.now() - started).to.be.at.least(250); // 100 ms, then 200 ms
      const stderr = logged.map((l) => JSON.parse(l)).filter((l) => l.msg === 'helm helper stderr');
      expect(stderr.slice(0, 2).map((l) => [l.level, l.line])).to.deep.equal([
        ['debug', 'starting'],
        ['debug', 'boom'],
      ]);
      await dying.close();
    });

    it('fails clearly when the binary cannot be started, and after close()', async () => {
      const broken = new HelmHelper({ path: join(root, 'no-such-helper') });
      const err = await failure(broken.request('ping'));
      expect(err.code).to.equal('HelperUnavailable');
      expect(err.message).to.match(/ENOENT/);
      const closing = new HelmHelper({ path: helperPath });
      await closing.request('ping');
      await closing.close();
      expect((await failure(closing.request('ping'))).code).to.equal('Closed');
    });
  });
});

/** An index of a few MB, which takes the helper a moment to parse. */
function bigIndex(root: string): string {
  const path = join(root, 'big-index.yaml');
  const lines = ['apiVersion: v1', 'entries:'];
  for (let c = 0; c < 300; c++) {
    lines.push(`  chart-${c}:`);
    for (let v = 0; v < 50; v++) {
      lines.push(
        `  - {name: chart-${c}, version: 1.${v}.0, digest: ${'ab'.repeat(32)}, ` +
          `urls: [https://charts.example.com/chart-${c}-1.${v}.0.tgz], description: ${'x'.repeat(100)}}`,
      );
    }
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
