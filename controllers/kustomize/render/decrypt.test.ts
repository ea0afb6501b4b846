// These tests run the real sops, age-keygen and kustomize (built by e2e/controlplane/build.sh) and gpg.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveBinDir } from '../../../e2e/cluster/cluster.ts';
import { decryptObjects, encryptedFormat, keysFromSecret, type DecryptionKeys } from './decrypt.ts';
import { BuildError } from './errors.ts';
import { build } from './kustomize.ts';
import { artifact } from '../../../e2e/support/tree.ts';
import type { Manifest } from './objects.ts';

const exec = promisify(execFile);

describe('SOPS decryption (real sops, kustomize, gpg)', function () {
  this.timeout(60_000);
  let bin: string;
  let work: string;
  let age: { identity: string; recipient: string };
  let pgp: { fingerprint: string; armoredSecretKey: string; home: string };

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const sops = async (args: string[], input: string, env: Record<string, string> = {}) => {
    const file = join(work, `in-${Math.random().toString(16).slice(2)}`);
    writeFileSync(file, input);
    const { stdout } = await exec(join(bin, 'sops'), [...args, file], {
      env: { PATH: process.env.PATH!, HOME: work, ...env },
    });
    return stdout;
  };
  const secretYaml = (name: string) =>
    `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
type: Opaque
stringData:
  password: s3cr3t-${name}
  user: admin
`;
  const encryptAge = (text: string, type = 'yaml', extra: string[] = ['--encrypted-regex', '^(data|stringData)$']) =>
    sops(['--encrypt', '--age', age.recipient, '--input-type', type, '--output-type', type, ...extra], text);

  before(async function () {
    this.timeout(900_000);
    bin = resolveBinDir();
    work = mkdtempSync(join(tmpdir(), 'tide-sops-test-'));
    const keyFile = join(work, 'age.txt');
    await exec(join(bin, 'age-keygen'), ['-o', keyFile]);
    const text = readFileSync(keyFile, 'utf8');
    age = { identity: /AGE-SECRET-KEY-\S+/.exec(text)![0], recipient: /public key: (age1\S+)/.exec(text)![1]! };
    const home = mkdtempSync(join(tmpdir(), 'tide-sops-gpg-'));
    const gpg = (args: string[]) =>
      exec('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args]);
    await gpg(['--quick-gen-key', 'Tide SOPS <sops@example.com>', 'default', 'default', 'never']);
    const fingerprint = (await gpg(['--with-colons', '--list-secret-keys'])).stdout
      .split('\n')
      .find((l) => l.startsWith('fpr:'))!
      .split(':')[9]!;
    pgp = { fingerprint, armoredSecretKey: (await gpg(['--armor', '--export-secret-keys', fingerprint])).stdout, home };
  });

  const keys = (): DecryptionKeys =>
    keysFromSecret({
      'identity.agekey': b64(`# created: now\n${age.identity}\n`),
      'team.asc': b64(pgp.armoredSecretKey),
      'other.txt': b64('ignored'),
    });
  const run = (objects: Manifest[], k: DecryptionKeys | null = keys()) =>
    decryptObjects(objects, { sopsPath: join(bin, 'sops'), timeoutMs: 30_000, keys: k ?? undefined });
  const failure = (objects: Manifest[], k: DecryptionKeys | null) =>
    run(objects, k).then(
      () => expect.fail('expected decryption to fail'),
      (e: unknown) => e as Error,
    );

  it('reads age identities from *.agekey and OpenPGP keys from *.asc entries', () => {
    const k = keys();
    expect(k.age).to.deep.equal([age.identity]);
    expect(k.pgp).to.have.length(1);
    expect(k.pgp[0]).to.include('BEGIN PGP PRIVATE KEY BLOCK');
  });

  it('decrypts a whole Secret after kustomize renamed and re-namespaced it', async () => {
    const root = artifact({
      'app/secret.yaml': await encryptAge(secretYaml('creds')),
      'app/kustomization.yaml': 'resources: [secret.yaml]\n',
    });
    const built = await build(
      root,
      'app',
      { namePrefix: 'p-', targetNamespace: 'prod' },
      { kustomizePath: join(bin, 'kustomize'), timeoutMs: 30_000 },
    );
    expect(built[0]).to.have.property('sops');
    const [secret] = await run(built);
    expect(secret).to.deep.equal({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'p-creds', namespace: 'prod' },
      stringData: { password: 's3cr3t-creds', user: 'admin' },
      type: 'Opaque',
    });
  });

  it('decrypts a Secret encrypted for an OpenPGP key', async () => {
    const encrypted = await sops(
      [
        '--encrypt',
        '--pgp',
        pgp.fingerprint,
        '--input-type',
        'yaml',
        '--output-type',
        'yaml',
        '--encrypted-regex',
        '^stringData$',
      ],
      secretYaml('pgp'),
      { GNUPGHOME: pgp.home },
    );
    const root = artifact({ 'app/secret.yaml': encrypted });
    const built = await build(root, 'app', {}, { kustomizePath: join(bin, 'kustomize'), timeoutMs: 30_000 });
    const [secret] = await run(built);
    expect((secret as unknown as { stringData: Record<string, string> }).stringData).to.deep.equal({
      password: 's3cr3t-pgp',
      user: 'admin',
    });
  });

  it('decrypts Secret values that are SOPS documents (secretGenerator over encrypted files)', async () => {
    const env = await sops(
      ['--encrypt', '--age', age.recipient, '--input-type', 'dotenv', '--output-type', 'dotenv'],
      'TOKEN=abc123\nLEVEL=debug\n',
    );
    const json = await sops(
      ['--encrypt', '--age', age.recipient, '--input-type', 'json', '--output-type', 'json'],
      '{"api": {"key": "k-1"}}',
    );
    const binary = await sops(
      ['--encrypt', '--age', age.recipient, '--input-type', 'binary', '--output-type', 'json'],
      'raw token\n',
    );
    expect([env, json, binary].map((t) => encryptedFormat(Buffer.from(t)))).to.deep.equal(['dotenv', 'json', 'json']);
    const root = artifact({
      'app/kustomization.yaml': `secretGenerator:
- name: gen
  options: {disableNameSuffixHash: true}
  files: [config.env=config.env.encrypted, settings.json=settings.json.encrypted, token=token.encrypted]
`,
      'app/config.env.encrypted': env,
      'app/settings.json.encrypted': json,
      'app/token.encrypted': binary,
      'envs/kustomization.yaml': 'secretGenerator:\n- name: split\n  envs: [config.env.encrypted]\n',
      'envs/config.env.encrypted': env,
    });
    const kustomize = { kustomizePath: join(bin, 'kustomize'), timeoutMs: 30_000 };
    const [secret] = await run(await build(root, 'app', {}, kustomize));
    const data = Object.fromEntries(
      Object.entries((secret as unknown as { data: Record<string, string> }).data).map(([k, v]) => [
        k,
        Buffer.from(v, 'base64').toString('utf8'),
      ]),
    );
    expect(data).to.deep.equal({
      'config.env': 'TOKEN=abc123\nLEVEL=debug\n',
      'settings.json': `${JSON.stringify({ api: { key: 'k-1' } }, null, '\t')}\n`,
      token: 'raw token\n',
    });
    // As envs:, kustomize has already split the encrypted file into keys: a clear refusal.
    const err = await failure(await build(root, 'envs', {}, kustomize), keys());
    expect(err.message).to.match(
      /^Secret\/split-\w+ comes from a SOPS-encrypted dotenv file given to a secretGenerator as envs:/,
    );
  });

  it('fails naming the Secret, and nothing of any key, when the keys do not open it', async () => {
    const built = [
      JSON.parse(JSON.stringify((await import('yaml')).parse(await encryptAge(secretYaml('locked'))))) as Manifest,
    ];
    const err = await failure(built, { age: [], pgp: [] });
    expect(err).to.be.instanceOf(BuildError);
    expect(err.message).to.match(/^failed to decrypt Secret\/locked: .*(Failed to get the data key|age)/);
    expect(err.message).to.not.include('AGE-SECRET-KEY');
    expect(err.message).to.not.include('\n');
  });

  it('refuses an encrypted Secret when spec.decryption is not set, and leaves decrypt: disabled alone', async () => {
    const encrypted = (await import('yaml')).parse(await encryptAge(secretYaml('needs-keys'))) as Manifest;
    const err = await failure([encrypted], null);
    expect(err.message).to.equal('Secret/needs-keys is encrypted with SOPS, but spec.decryption is not set');
    const disabled = {
      ...encrypted,
      metadata: { ...encrypted.metadata, annotations: { 'kustomize.toolkit.fluxcd.io/decrypt': 'disabled' } },
    } as Manifest;
    expect(await run([disabled], null)).to.deep.equal([disabled]);
    const plain = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'plain' }, data: { a: b64('b') } } as Manifest;
    expect(await run([plain], null)).to.deep.equal([plain]);
  });
});
