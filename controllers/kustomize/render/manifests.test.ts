// From an artifact served over HTTP to the objects to apply, with the real kustomize.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { resolveBinDir } from '../../../e2e/cluster/cluster.ts';
import { closeServer } from '../../runtime/http.ts';
import { fetchArtifact } from './fetch.ts';
import { buildManifests } from './manifests.ts';
import type { BuildSpec } from './manifests.ts';

async function tarball(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = pipeline(
    pack,
    createGzip(),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
  );
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, body);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const files = {
  'clusters/prod/kustomization.yaml': 'resources: [../../apps]\nnamespace: from-file\n',
  'apps/kustomization.yaml': 'resources: [deploy.yaml, script.yaml]\n',
  'apps/deploy.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {region: "\${cluster_region}"}
spec:
  replicas: \${replicas:=1}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        args: ["--env=\${cluster_env:=dev}", "--literal=$\${HOME}"]
`,
  'apps/script.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  labels: {kustomize.toolkit.fluxcd.io/substitute: disabled}
data:
  run.sh: echo \${HOME}
`,
};

describe('buildManifests: artifact URL to objects (real kustomize)', function () {
  this.timeout(60_000);
  let server: Server;
  let url: string;
  let digest: string;
  let kustomizePath: string;

  before(async function () {
    this.timeout(900_000);
    kustomizePath = join(resolveBinDir(), 'kustomize');
    const body = await tarball(files);
    digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    server = createServer((_req, res) => res.writeHead(200).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/gitrepository/ns/app/abc.tar.gz`;
  });

  after(() => closeServer(server));

  it('fetches, builds, substitutes and sets commonMetadata, in that order', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tide-manifests-')), 'artifact');
    await fetchArtifact(url, { digest, maxBytes: 1 << 20, timeoutMs: 10_000 }, dir);
    const spec: BuildSpec = {
      path: './clusters/prod',
      targetNamespace: 'prod',
      postBuild: {
        substitute: { cluster_env: 'production' },
        substituteFrom: [
          { kind: 'ConfigMap', name: 'cluster-vars' },
          { kind: 'Secret', name: 'optional-vars', optional: true },
        ],
      },
      commonMetadata: { labels: { team: 'web' }, annotations: { note: '${cluster_env}' } },
    };
    const reads: string[] = [];
    const objects = await buildManifests(dir, spec, {
      kustomizePath,
      timeoutMs: 30_000,
      readVariables: async (kind, name) => {
        reads.push(`${kind}/${name}`);
        return kind === 'ConfigMap' && name === 'cluster-vars'
          ? { cluster_region: 'eu-west-1', replicas: '3' }
          : undefined;
      },
    });
    expect(reads).to.deep.equal(['ConfigMap/cluster-vars', 'Secret/optional-vars']);
    expect(objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).to.deep.equal([
      'ConfigMap/prod/script',
      'Deployment/prod/web',
    ]);
    type Deployment = (typeof objects)[0] & {
      spec: { replicas: number; template: { metadata: unknown; spec: { containers: { args: string[] }[] } } };
    };
    const [script, web] = objects as [(typeof objects)[0], Deployment];
    expect(script.data).to.deep.equal({ 'run.sh': 'echo ${HOME}' });
    expect(web.spec.replicas).to.equal(3);
    expect(web.spec.template.spec.containers[0]!.args).to.deep.equal(['--env=production', '--literal=${HOME}']);
    expect(web.spec.template.metadata).to.deep.equal({ labels: { app: 'web' } });
    expect(web.metadata.labels).to.deep.equal({ team: 'web' });
    expect(web.metadata.annotations).to.deep.equal({ region: 'eu-west-1', note: '${cluster_env}' });
  });
});
