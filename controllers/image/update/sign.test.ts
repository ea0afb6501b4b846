import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git from 'isomorphic-git';
import * as openpgp from 'openpgp';
import { type CommitSigner, SigningKeyError, gpgSigner, signCallback, signerFromSecret, sshSigner } from './sign.ts';

const EMAIL = 'bot@tide.invalid';
const temps: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `tide-sign-${prefix}-`));
  temps.push(dir);
  return dir;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function mustRun(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<string> {
  const r = await run(cmd, args, env, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A new repository with one commit made by isomorphic-git, signed through onSign; returns dir and SHA. */
async function signedCommit(onSign: Parameters<typeof git.commit>[0]['onSign']): Promise<{ dir: string; oid: string }> {
  const dir = tempDir('repo');
  await git.init({ fs, dir, defaultBranch: 'main' });
  writeFileSync(join(dir, 'deploy.yaml'), 'image: ghcr.io/example/app:v1.2.3\n');
  await git.add({ fs, dir, filepath: 'deploy.yaml' });
  const oid = await git.commit({
    fs,
    dir,
    author: { name: 'Tide Bot', email: EMAIL, timestamp: 1_700_000_000, timezoneOffset: 0 },
    message: 'Update image to v1.2.3\n\nSigned by Tide.\n',
    // isomorphic-git calls onSign only when a signingKey is given; its value goes unused.
    signingKey: 'unused',
    onSign,
  });
  return { dir, oid };
}

function expectSigningKeyError(err: unknown, mentions: string, secret?: string): void {
  expect(err).to.be.instanceOf(SigningKeyError);
  const message = (err as Error).message;
  expect(message).to.contain(mentions);
  if (secret) expect(message).not.to.contain(secret);
}

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('commit signing', () => {
  after(() => {
    for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  });

  describe('gpg', () => {
    interface GpgKey {
      home: string;
      fingerprint: string;
      /** The primary key's, then its subkeys'. */
      fingerprints: string[];
      armoredSecret: string;
    }

    const gpgHomes: string[] = [];
    const gpg = (home: string, passphrase: string, args: string[], input?: string) =>
      mustRun(
        'gpg',
        ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', passphrase, ...args],
        {},
        input,
      );

    interface KeyLayout {
      algo: string;
      usage: string;
      /** A subkey to add: its algorithm and usage. */
      subkey?: [string, string];
    }

    async function gpgKey(name: string, passphrase = '', layout?: KeyLayout): Promise<GpgKey> {
      const home = tempDir('gpg');
      gpgHomes.push(home);
      const { algo, usage, subkey } = layout ?? { algo: 'ed25519', usage: 'sign' };
      await gpg(home, passphrase, ['--quick-gen-key', `${name} <${EMAIL}>`, algo, usage, 'never']);
      const listFingerprints = async () =>
        (await gpg(home, passphrase, ['--with-colons', '--list-secret-keys']))
          .split('\n')
          .filter((l) => l.startsWith('fpr:'))
          .map((l) => l.split(':')[9]!);
      const [fingerprint] = await listFingerprints();
      if (subkey) await gpg(home, passphrase, ['--quick-add-key', fingerprint!, subkey[0], subkey[1], 'never']);
      const fingerprints = await listFingerprints();
      const armoredSecret = await gpg(home, passphrase, ['--armor', '--export-secret-keys', fingerprint!]);
      return { home, fingerprint: fingerprint!, fingerprints, armoredSecret };
    }

    let plain: GpgKey;
    let protectedKey: GpgKey;
    let withSubkey: GpgKey;
    let certOnly: GpgKey;
    const PASSPHRASE = 'correct horse battery staple';

    before(async function () {
      // Key generation spawns gpg / ssh-keygen: slow on a loaded machine, not stuck.
      this.timeout(60_000);
      [plain, protectedKey, withSubkey, certOnly] = await Promise.all([
        gpgKey('Tide Plain'),
        gpgKey('Tide Protected', PASSPHRASE),
        gpgKey('Tide Subkey', PASSPHRASE, { algo: 'ed25519', usage: 'cert', subkey: ['ed25519', 'sign'] }),
        gpgKey('Tide Cert Only', '', { algo: 'ed25519', usage: 'cert', subkey: ['cv25519', 'encr'] }),
      ]);
    });

    after(async () => {
      // The gpg-agents that gpg started for the throwaway homes.
      for (const home of gpgHomes) await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
    });

    async function verify(key: { home: string }, signer: CommitSigner): Promise<Run> {
      const { dir, oid } = await signedCommit(async ({ payload }) => ({ signature: await signer.sign(payload) }));
      return run('git', ['-C', dir, 'verify-commit', '-v', oid], { GNUPGHOME: key.home });
    }

    it('signs a commit that git verify-commit accepts with the key', async () => {
      const r = await verify(plain, await gpgSigner(plain.armoredSecret));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('Good signature from "Tide Plain');
      expect(r.stderr).to.contain(plain.fingerprint);
    });

    it('decrypts a passphrase-protected key with its passphrase', async () => {
      expect(protectedKey.armoredSecret).to.contain('BEGIN PGP PRIVATE KEY BLOCK');
      const r = await verify(protectedKey, await gpgSigner(protectedKey.armoredSecret, PASSPHRASE));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('Good signature from "Tide Protected');
      expect(r.stderr).to.contain(protectedKey.fingerprint);
    });

    it('signs with the signing subkey of a key whose primary key only certifies', async () => {
      const r = await verify(withSubkey, await gpgSigner(withSubkey.armoredSecret, PASSPHRASE));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('Good signature from "Tide Subkey');
      expect(r.stderr).to.contain(`using EDDSA key ${withSubkey.fingerprints[1]}`);
    });

    it('signs with an RSA key (made by openpgp, checked by gpg)', async () => {
      const { privateKey, publicKey } = await openpgp.generateKey({
        type: 'rsa',
        rsaBits: 2048,
        userIDs: [{ name: 'Tide RSA', email: EMAIL }],
        format: 'armored',
      });
      const home = tempDir('gpg');
      gpgHomes.push(home);
      await gpg(home, '', ['--import'], publicKey);
      const fingerprint = (await openpgp.readKey({ armoredKey: publicKey })).getFingerprint().toUpperCase();
      const r = await verify({ home }, await gpgSigner(privateKey));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('Good signature from "Tide RSA');
      expect(r.stderr).to.contain(`using RSA key ${fingerprint}`);
    });

    it('rejects a key with no signing-capable (sub)key', async () => {
      expectSigningKeyError(await rejection(gpgSigner(certOnly.armoredSecret)), "'git.asc' cannot sign");
    });

    it('a signature by another key does not verify (the check is real)', async () => {
      const r = await verify(plain, await gpgSigner(protectedKey.armoredSecret, PASSPHRASE));
      expect(r.code).not.to.equal(0);
    });

    it('rejects a wrong passphrase with a SigningKeyError that does not contain it', async () => {
      const wrong = 'hunter2-not-the-passphrase';
      const err = await rejection(gpgSigner(protectedKey.armoredSecret, wrong));
      expectSigningKeyError(err, "'passphrase'", wrong);
      expect((err as Error).message).to.contain("'git.asc'");
    });

    it('rejects an encrypted key without a passphrase, naming the missing passphrase', async () => {
      expectSigningKeyError(await rejection(gpgSigner(protectedKey.armoredSecret)), "no 'passphrase'");
    });

    it('rejects garbage in git.asc with a SigningKeyError naming git.asc', async () => {
      const garbage = 'not a key at all 0123456789';
      expectSigningKeyError(await rejection(gpgSigner(garbage)), "'git.asc'", garbage);
    });

    it('rejects a public key in git.asc', async () => {
      const pub = await gpg(plain.home, '', ['--armor', '--export', plain.fingerprint]);
      expectSigningKeyError(await rejection(gpgSigner(pub)), "'git.asc'");
    });

    it('never puts key material in an error', async () => {
      const truncated = plain.armoredSecret.slice(0, plain.armoredSecret.length / 2);
      const err = await rejection(gpgSigner(truncated));
      expect(err).to.be.instanceOf(SigningKeyError);
      const body = plain.armoredSecret.split('\n').filter((l) => l.length > 20);
      for (const line of body) expect((err as Error).message).not.to.contain(line);
    });
  });

  describe('ssh', () => {
    interface SshKey {
      file: string;
      identity: string;
      publicKey: string;
    }

    async function sshKey(type: string, extra: string[] = [], passphrase = ''): Promise<SshKey> {
      const file = join(tempDir('ssh'), 'id');
      await mustRun('ssh-keygen', ['-q', '-t', type, ...extra, '-N', passphrase, '-C', EMAIL, '-f', file]);
      return { file, identity: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
    }

    function allowedSigners(key: SshKey): string {
      const file = join(tempDir('allowed'), 'allowed_signers');
      writeFileSync(file, `${EMAIL} ${key.publicKey}\n`);
      return file;
    }

    async function verify(key: SshKey, signer: CommitSigner): Promise<Run> {
      const { dir, oid } = await signedCommit(signCallback(signer));
      const allowed = allowedSigners(key);
      return run('git', [
        '-C',
        dir,
        '-c',
        'gpg.format=ssh',
        '-c',
        `gpg.ssh.allowedSignersFile=${allowed}`,
        'verify-commit',
        '-v',
        oid,
      ]);
    }

    const PASSWORD = 'open sesame 42';
    const keys: Record<string, SshKey> = {};

    before(async function () {
      // Key generation spawns gpg / ssh-keygen: slow on a loaded machine, not stuck.
      this.timeout(60_000);
      const specs: [string, Promise<SshKey>][] = [
        ['ed25519', sshKey('ed25519')],
        ['ecdsa', sshKey('ecdsa')],
        ['ecdsa-384', sshKey('ecdsa', ['-b', '384'])],
        ['ecdsa-521', sshKey('ecdsa', ['-b', '521'])],
        ['rsa', sshKey('rsa', ['-b', '2048'])],
        ['rsa-pem', sshKey('rsa', ['-b', '2048', '-m', 'PEM'])],
        ['ecdsa-pem', sshKey('ecdsa', ['-m', 'PEM'])],
        ['protected', sshKey('ed25519', [], PASSWORD)],
      ];
      for (const [name, key] of specs) keys[name] = await key;
    });

    for (const [name, label] of [
      ['ed25519', 'an ed25519 key'],
      ['ecdsa', 'an ECDSA P-256 key'],
      ['ecdsa-384', 'an ECDSA P-384 key'],
      ['ecdsa-521', 'an ECDSA P-521 key'],
      ['rsa', 'an RSA key (rsa-sha2-512)'],
      ['rsa-pem', 'a PEM-format RSA key'],
      ['ecdsa-pem', 'a PEM-format ECDSA key'],
    ] as const) {
      it(`signs a commit with ${label} that git verify-commit accepts`, async () => {
        const key = keys[name]!;
        const r = await verify(key, sshSigner(key.identity));
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stderr).to.contain(`Good "git" signature for ${EMAIL}`);
      });
    }

    it('writes the SSHSIG armor ssh-keygen writes, in namespace git with sha512', async () => {
      const sig = await sshSigner(keys.ed25519!.identity).sign('payload\n');
      expect(sig).to.match(/^-----BEGIN SSH SIGNATURE-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END SSH SIGNATURE-----\n$/);
      const blob = Buffer.from(sig.split('\n').slice(1, -2).join(''), 'base64');
      expect(blob.subarray(0, 6).toString()).to.equal('SSHSIG');
      expect(blob.toString('latin1')).to.contain('\x00\x00\x00\x03git\x00\x00\x00\x00\x00\x00\x00\x06sha512');
    });

    it('makes the very bytes ssh-keygen -Y sign -n git makes with an ed25519 key (deterministic)', async () => {
      const payload = 'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n';
      const key = keys.ed25519!;
      const theirs = await run('ssh-keygen', ['-Y', 'sign', '-f', key.file, '-n', 'git'], {}, payload);
      expect(theirs.code, theirs.stderr).to.equal(0);
      expect(await sshSigner(key.identity).sign(payload)).to.equal(theirs.stdout);
    });

    it('ECDSA signatures verify whatever the leading bits of r and s (mpint encoding)', async () => {
      const key = keys.ecdsa!;
      const signer = sshSigner(key.identity);
      const allowed = allowedSigners(key);
      const dir = tempDir('sigs');
      await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const payload = `payload ${i}\n`;
          const sigFile = join(dir, `${i}.sig`);
          writeFileSync(sigFile, await signer.sign(payload));
          const args = ['-Y', 'verify', '-f', allowed, '-I', EMAIL, '-n', 'git', '-s', sigFile];
          const r = await run('ssh-keygen', args, {}, payload);
          expect(r.code, `${i}: ${r.stderr}`).to.equal(0);
        }),
      );
    });

    it('decrypts a passphrase-protected key with its password', async () => {
      const key = keys.protected!;
      const r = await verify(key, sshSigner(key.identity, PASSWORD));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.contain(`Good "git" signature for ${EMAIL}`);
    });

    it('a signature by another key does not verify (the check is real)', async () => {
      const r = await verify(keys.ed25519!, sshSigner(keys.rsa!.identity));
      expect(r.code).not.to.equal(0);
    });

    it('rejects a wrong password with a SigningKeyError that does not contain it', async () => {
      const wrong = 'not-the-password-xyz';
      const err = await rejection(() => sshSigner(keys.protected!.identity, wrong));
      expectSigningKeyError(err, "'password'", wrong);
      expect((err as Error).message).to.contain("'identity'");
    });

    it('rejects an encrypted key without a password, naming the missing password', async () => {
      expectSigningKeyError(await rejection(() => sshSigner(keys.protected!.identity)), "no 'password'");
    });

    it('rejects garbage in identity with a SigningKeyError naming identity', async () => {
      const garbage = 'not a key at all 0123456789';
      expectSigningKeyError(await rejection(() => sshSigner(garbage)), "'identity'", garbage);
    });

    it('rejects a public key in identity', async () => {
      expectSigningKeyError(await rejection(() => sshSigner(keys.ed25519!.publicKey)), "'identity'");
    });
  });

  describe('signerFromSecret', () => {
    it('reads identity (and password) for type ssh', async () => {
      const file = join(tempDir('ssh'), 'id');
      await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
      const signer = await signerFromSecret('ssh', { identity: readFileSync(file, 'utf8') });
      expect(await signer.sign('x\n')).to.match(/^-----BEGIN SSH SIGNATURE-----\n/);
    });

    it('reads git.asc for type gpg and by default, and names a missing Secret key', async () => {
      expectSigningKeyError(await rejection(signerFromSecret(undefined, { identity: 'x' })), "no 'git.asc'");
      expectSigningKeyError(await rejection(signerFromSecret('gpg', { 'git.asc': 'garbage' })), "'git.asc'");
      expectSigningKeyError(await rejection(signerFromSecret('ssh', { 'git.asc': 'x' })), "no 'identity'");
    });
  });
});
