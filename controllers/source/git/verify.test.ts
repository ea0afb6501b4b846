import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { splitCommit, splitTag, verifyCommit, verifyTag } from './verify.ts';
import { GIT_TEST_ENV } from './test-env.ts';

const ENV = GIT_TEST_ENV;

function git(cwd: string, args: string[], input?: Buffer, env: NodeJS.ProcessEnv = ENV): string {
  return execFileSync('git', args, { cwd, env, input, encoding: 'utf8' }).trim();
}

interface TestKey {
  armoredPublic: string;
  secret: openpgp.PrivateKey;
  keyId: string;
}

async function newKey(name: string): Promise<TestKey> {
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name, email: `${name.toLowerCase()}@tide.invalid` }],
    format: 'armored',
  });
  const secret = await openpgp.readPrivateKey({ armoredKey: privateKey });
  return { armoredPublic: publicKey, secret, keyId: secret.getKeyID().toHex().toUpperCase() };
}

async function detachedSignature(key: TestKey, payload: Buffer): Promise<string> {
  const message = await openpgp.createMessage({ binary: payload });
  return openpgp.sign({ message, signingKeys: key.secret, detached: true, format: 'armored' });
}

// The gpgsig header holds the armored signature, every line after the first indented by a space.
function withGpgsig(payload: Buffer, signature: string): Buffer {
  const header = Buffer.from(`gpgsig ${signature.trimEnd().split('\n').join('\n ')}\n`);
  const end = payload.indexOf('\n\n') + 1;
  return Buffer.concat([payload.subarray(0, end), header, payload.subarray(end)]);
}

describe('signature verification', function () {
  this.timeout(60000);
  let tmp: string;
  let repo: string;
  let gitdir: string;
  let tree: string;
  let unsignedCommit: string;
  let alice: TestKey;
  let bob: TestKey;

  const writeObject = (type: 'commit' | 'tag', raw: Buffer) =>
    git(repo, ['hash-object', '-t', type, '-w', '--stdin'], raw);

  const commitPayload = (message: Buffer) =>
    Buffer.concat([
      Buffer.from(
        `tree ${tree}\nparent ${unsignedCommit}\n` +
          'author Tide Test <test@tide.invalid> 1704067200 +0000\n' +
          'committer Tide Test <test@tide.invalid> 1704067200 +0000\n' +
          'encoding ISO-8859-1\n' +
          // A multi-line header that is not a signature must stay in the signed payload.
          'mergetag object 0000000000000000000000000000000000000000\n type commit\n tag x\n' +
          '\n',
      ),
      message,
    ]);

  async function signedCommit(key: TestKey, message = Buffer.from('signed caf\xe9\n', 'latin1')): Promise<string> {
    const payload = commitPayload(message);
    return writeObject('commit', withGpgsig(payload, await detachedSignature(key, payload)));
  }

  async function signedTag(key: TestKey, name: string): Promise<string> {
    const payload = Buffer.from(
      `object ${unsignedCommit}\ntype commit\ntag ${name}\n` +
        `tagger Tide Test <test@tide.invalid> 1704067200 +0000\n\nrelease ${name}\n`,
    );
    return writeObject('tag', Buffer.concat([payload, Buffer.from(await detachedSignature(key, payload))]));
  }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tide-verify-'));
    repo = join(tmp, 'repo');
    fs.mkdirSync(repo);
    git(repo, ['init', '-q', '-b', 'main']);
    writeFileSync(join(repo, 'app.yaml'), 'kind: ConfigMap\n');
    git(repo, ['add', '-A']);
    git(repo, ['commit', '-q', '-m', 'unsigned']);
    unsignedCommit = git(repo, ['rev-parse', 'HEAD']);
    tree = git(repo, ['rev-parse', 'HEAD^{tree}']);
    gitdir = join(repo, '.git');
    [alice, bob] = await Promise.all([newKey('Alice'), newKey('Bob')]);
  });

  after(() => rmSync(tmp, { recursive: true, force: true }));

  describe('verifyCommit', () => {
    it('accepts a commit signed by a trusted key, byte for byte', async () => {
      const commit = await signedCommit(alice);
      const res = await verifyCommit({ fs, gitdir, commit, armoredKeys: [bob.armoredPublic, alice.armoredPublic] });
      expect(res.keyId)
        .to.equal(alice.keyId)
        .and.match(/^[0-9A-F]{16}$/);
      expect(res.fingerprint)
        .to.match(/^[0-9A-F]{40}$/)
        .and.satisfy((f: string) => f.endsWith(alice.keyId));
    });

    it('finds a key among several in one armored block or in concatenated blocks', async () => {
      const commit = await signedCommit(alice);
      const binary = async (k: TestKey) => (await openpgp.readKey({ armoredKey: k.armoredPublic })).write();
      const oneBlock = openpgp.armor(
        openpgp.enums.armor.publicKey,
        Buffer.concat([await binary(bob), await binary(alice)]),
      );
      expect((await openpgp.readKeys({ armoredKeys: oneBlock })).length).to.equal(2);
      for (const value of [oneBlock, bob.armoredPublic + alice.armoredPublic]) {
        const res = await verifyCommit({ fs, gitdir, commit, armoredKeys: [value] });
        expect(res.keyId).to.equal(alice.keyId);
      }
    });

    it('names the signing key when no trusted key matches', async () => {
      const commit = await signedCommit(alice);
      const err = await verifyCommit({ fs, gitdir, commit, armoredKeys: [bob.armoredPublic] }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(
        new RegExp(`^signature of commit ${commit} made by key [0-9A-F]{16} does not match any of the 1 trusted keys$`),
      );
      // ECC keys sign with a subkey; its ID, not Bob's, is what the message must name.
      const signer = (
        await openpgp.readSignature({ armoredSignature: splitCommit(await raw(commit)).signature! })
      ).getSigningKeyIDs()[0]!;
      expect((err as Error).message).to.include(signer.toHex().toUpperCase());
    });

    it('rejects a commit whose content changed after signing', async () => {
      const payload = commitPayload(Buffer.from('original\n'));
      const signature = await detachedSignature(alice, payload);
      const commit = writeObject('commit', withGpgsig(commitPayload(Buffer.from('tampered\n')), signature));
      const err = await verifyCommit({ fs, gitdir, commit, armoredKeys: [alice.armoredPublic] }).catch((e: Error) => e);
      expect(err)
        .to.be.instanceOf(Error)
        .with.property('message')
        .that.matches(new RegExp(`^signature of commit ${commit} made by key [0-9A-F]{16} is invalid`));
    });

    it('says an unsigned commit is not signed', async () => {
      const err = await verifyCommit({ fs, gitdir, commit: unsignedCommit, armoredKeys: [alice.armoredPublic] }).catch(
        (e: Error) => e,
      );
      expect(err).to.be.instanceOf(Error).with.property('message', `commit ${unsignedCommit} is not signed`);
    });

    it('refuses an object that is not a commit, and keys that are not keys', async () => {
      const tag = await signedTag(alice, 'v0.0.1');
      const notCommit = await verifyCommit({ fs, gitdir, commit: tag, armoredKeys: [alice.armoredPublic] }).catch(
        (e: Error) => e,
      );
      expect(notCommit)
        .to.be.instanceOf(Error)
        .with.property('message')
        .that.matches(/is a tag, not a commit/);
      const commit = await signedCommit(alice);
      const badKey = await verifyCommit({ fs, gitdir, commit, armoredKeys: ['not a key'] }).catch((e: Error) => e);
      expect(badKey)
        .to.be.instanceOf(Error)
        .with.property('message')
        .that.matches(/trusted key 1 is not an armored OpenPGP key/);
    });
  });

  describe('verifyTag', () => {
    it('accepts a tag signed by a trusted key', async () => {
      const tagOid = await signedTag(alice, 'v1.0.0');
      expect(await verifyTag({ fs, gitdir, tagOid, armoredKeys: [alice.armoredPublic] })).to.include({
        keyId: alice.keyId,
      });
    });

    it('names the signing key when no trusted key matches', async () => {
      const tagOid = await signedTag(alice, 'v1.0.1');
      const err = await verifyTag({ fs, gitdir, tagOid, armoredKeys: [bob.armoredPublic] }).catch((e: Error) => e);
      expect(err)
        .to.be.instanceOf(Error)
        .with.property('message')
        .that.matches(
          new RegExp(`^signature of tag ${tagOid} made by key [0-9A-F]{16} does not match any of the 1 trusted keys$`),
        );
    });

    it('says an unsigned annotated tag is not signed', async () => {
      git(repo, ['tag', '-a', '-m', 'plain', 'v0.0.0']);
      const tagOid = git(repo, ['rev-parse', 'v0.0.0']);
      const err = await verifyTag({ fs, gitdir, tagOid, armoredKeys: [alice.armoredPublic] }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error).with.property('message', `tag ${tagOid} is not signed`);
    });
  });

  describe('payload extraction', () => {
    it('removes every gpgsig header and keeps other continuation lines', () => {
      const raw = Buffer.from(
        'tree t\ngpgsig-sha256 a\n b\nmergetag x\n y\n' +
          'gpgsig -----BEGIN PGP SIGNATURE-----\n \n z\n -----END PGP SIGNATURE-----\n\nmsg\n gpgsig kept\n',
      );
      const { payload, signature } = splitCommit(raw);
      expect(payload.toString()).to.equal('tree t\nmergetag x\n y\n\nmsg\n gpgsig kept\n');
      expect(signature).to.equal('-----BEGIN PGP SIGNATURE-----\n\nz\n-----END PGP SIGNATURE-----\n');
    });

    it('splits a tag at the last signature block', () => {
      const raw = Buffer.from(
        'object o\n\nnotes\n-----BEGIN PGP SIGNATURE-----\nquoted\n-----BEGIN PGP SIGNATURE-----\nsig\n',
      );
      const { payload, signature } = splitTag(raw);
      expect(payload.toString()).to.equal('object o\n\nnotes\n-----BEGIN PGP SIGNATURE-----\nquoted\n');
      expect(signature).to.equal('-----BEGIN PGP SIGNATURE-----\nsig\n');
    });
  });

  describe('with commits and tags signed by git and gpg', () => {
    let gnupg: string;
    let env: NodeJS.ProcessEnv;
    let armored: string;

    // gpg is one of the packages `make system-deps` installs; without it this fails, never skips.
    before(() => {
      gnupg = mkdtempSync(join(tmpdir(), 'tide-gpg-'));
      env = { ...ENV, GNUPGHOME: gnupg };
      execFileSync(
        'gpg',
        ['--batch', '--passphrase', '', '--quick-gen-key', 'Tide Test <test@tide.invalid>', 'ed25519', 'sign', 'never'],
        { env, stdio: 'ignore' },
      );
      armored = execFileSync('gpg', ['--armor', '--export', 'test@tide.invalid'], { env, encoding: 'utf8' });
    });

    after(() => {
      if (!gnupg) return;
      execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env, stdio: 'ignore' });
      rmSync(gnupg, { recursive: true, force: true });
    });

    it('verifies them with the exported public key and rejects them without it', async () => {
      writeFileSync(join(repo, 'app.yaml'), 'kind: Secret\n');
      git(
        repo,
        ['-c', 'user.signingkey=test@tide.invalid', 'commit', '-q', '-S', '-a', '-m', 'signed by git'],
        undefined,
        env,
      );
      git(repo, ['-c', 'user.signingkey=test@tide.invalid', 'tag', '-s', '-m', 'signed tag', 'v2.0.0'], undefined, env);
      const commit = git(repo, ['rev-parse', 'HEAD']);
      const tagOid = git(repo, ['rev-parse', 'v2.0.0']);
      const gpgKeyId = (await openpgp.readKey({ armoredKey: armored })).getKeyID().toHex().toUpperCase();

      expect(await verifyCommit({ fs, gitdir, commit, armoredKeys: [armored] })).to.include({ keyId: gpgKeyId });
      expect(await verifyTag({ fs, gitdir, tagOid, armoredKeys: [armored] })).to.include({ keyId: gpgKeyId });
      const err = await verifyCommit({
        fs,
        gitdir,
        commit,
        armoredKeys: [alice.armoredPublic, bob.armoredPublic],
      }).catch((e: Error) => e);
      expect(err)
        .to.be.instanceOf(Error)
        .with.property('message')
        .that.matches(new RegExp(`made by key ${gpgKeyId} does not match any of the 2 trusted keys`));
    });
  });

  async function raw(oid: string): Promise<Buffer> {
    return Buffer.from(execFileSync('git', ['cat-file', 'commit', oid], { cwd: repo, env: ENV }));
  }
});
