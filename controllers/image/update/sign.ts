// Commit signing for ImageUpdateAutomation spec.git.commit.signingKey: OpenPGP (`type: gpg`, the
// Secret's `git.asc` and optional `passphrase`) or SSH (`type: ssh`, `identity` and optional
// `password`). The signature goes in the commit's gpgsig header, in the form `git verify-commit`
// checks: a detached armored OpenPGP signature, or an SSHSIG signature in namespace "git".
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { SignCallback } from 'isomorphic-git';
import type { ParsedKey } from 'ssh2';

/**
 * The signing key cannot be used: unreadable, encrypted with a wrong or missing passphrase, or
 * holding no key that can sign. The message names the Secret key at fault, never its value.
 */
export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

export interface CommitSigner {
  /** Signs a commit's bytes (without signature headers); returns the value of its gpgsig header. */
  sign(payload: string): Promise<string>;
}

/** isomorphic-git's onSign for `signer`. Note git.commit() calls onSign only when given a `signingKey`. */
export function signCallback(signer: CommitSigner): SignCallback {
  return async ({ payload }) => ({ signature: await signer.sign(payload) });
}

export type SigningKeyType = 'gpg' | 'ssh';

/**
 * A signer from the signing key Secret's (decoded) values, as Flux reads them: `git.asc` and
 * `passphrase` for gpg (the default), `identity` and `password` for ssh.
 */
export async function signerFromSecret(
  type: SigningKeyType | undefined,
  values: Readonly<Record<string, string | undefined>>,
): Promise<CommitSigner> {
  const key = type === 'ssh' ? 'identity' : 'git.asc';
  const value = values[key];
  if (!value) throw new SigningKeyError(`the signing key Secret has no '${key}'`);
  return type === 'ssh'
    ? sshSigner(value, values.password || undefined)
    : gpgSigner(value, values.passphrase || undefined);
}

// ---- OpenPGP ----

/**
 * A signer with the first key in `armoredKey` (an armored private key, as `gpg --export-secret-keys
 * --armor` writes it), decrypted with `passphrase` if it is encrypted. Makes detached signatures
 * over the payload's bytes, as `gpg --detach-sign --armor` does for git.
 */
export async function gpgSigner(armoredKey: string, passphrase?: string): Promise<CommitSigner> {
  // openpgp costs ~20 MB of memory: loaded only when a commit is signed with it.
  const openpgp = await import('openpgp');
  let key: import('openpgp').PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey });
  } catch (err) {
    throw new SigningKeyError(`'git.asc' is not an armored OpenPGP private key: ${reason(err)}`);
  }
  if (!key.isDecrypted()) {
    if (!passphrase) throw new SigningKeyError(`the key in 'git.asc' is encrypted and the Secret has no 'passphrase'`);
    try {
      key = await openpgp.decryptKey({ privateKey: key, passphrase });
    } catch {
      throw new SigningKeyError(`the 'passphrase' does not decrypt the key in 'git.asc'`);
    }
  }
  try {
    await key.getSigningKey();
  } catch (err) {
    throw new SigningKeyError(`the key in 'git.asc' cannot sign: ${reason(err)}`);
  }
  const signingKeys = key;
  return {
    async sign(payload) {
      const message = await openpgp.createMessage({ binary: Buffer.from(payload, 'utf8') });
      try {
        return await openpgp.sign({ message, signingKeys, detached: true, format: 'armored' });
      } catch (err) {
        throw new SigningKeyError(`cannot sign with the key in 'git.asc': ${reason(err)}`);
      }
    },
  };
}

// openpgp's messages are fixed texts, never key material; keep the first line only.
function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

// ---- SSH (OpenSSH PROTOCOL.sshsig) ----

// ssh2 is CommonJS and its `utils` export is invisible to Node's named-export detection; it costs
// ~19 MB of memory, so it is loaded on the first SSH signing key only.
let loaded: typeof import('ssh2') | undefined;
const ssh2 = (): typeof import('ssh2') => (loaded ??= createRequire(import.meta.url)('ssh2') as typeof import('ssh2'));

const SSHSIG_MAGIC = Buffer.from('SSHSIG');
const SSHSIG_VERSION = 1;
const NAMESPACE = 'git';
const HASH = 'sha512';

interface SshAlgorithm {
  /** The signature's algorithm name in its SSH encoding. */
  sigType: string;
  /** The hash ssh2 signs with; undefined for ed25519, which hashes itself. */
  hash?: string;
  ecdsa?: boolean;
}

const ALGORITHMS: Record<string, SshAlgorithm> = {
  'ssh-ed25519': { sigType: 'ssh-ed25519' },
  'ssh-rsa': { sigType: 'rsa-sha2-512', hash: 'sha512' },
  'ecdsa-sha2-nistp256': { sigType: 'ecdsa-sha2-nistp256', hash: 'sha256', ecdsa: true },
  'ecdsa-sha2-nistp384': { sigType: 'ecdsa-sha2-nistp384', hash: 'sha384', ecdsa: true },
  'ecdsa-sha2-nistp521': { sigType: 'ecdsa-sha2-nistp521', hash: 'sha512', ecdsa: true },
};

/**
 * A signer with the SSH private key `identity` (OpenSSH or PEM format; ed25519, ECDSA or RSA),
 * decrypted with `password` if it is encrypted. Makes the armored SSHSIG signatures of
 * `ssh-keygen -Y sign -n git` (hash sha512; RSA keys sign with rsa-sha2-512).
 */
export function sshSigner(identity: string, password?: string): CommitSigner {
  const parsed = ssh2().utils.parseKey(identity, password);
  if (parsed instanceof Error) {
    if (/passphrase/i.test(parsed.message)) {
      throw new SigningKeyError(
        password
          ? `the 'password' does not decrypt the SSH key in 'identity'`
          : `the SSH key in 'identity' is encrypted and the Secret has no 'password'`,
      );
    }
    throw new SigningKeyError(`'identity' is not an SSH private key: ${parsed.message.split('\n')[0]}`);
  }
  const key: ParsedKey | undefined = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key?.isPrivateKey()) throw new SigningKeyError(`'identity' holds no SSH private key`);
  const algorithm = ALGORITHMS[key.type];
  if (!algorithm) {
    throw new SigningKeyError(`the SSH key in 'identity' is of type ${key.type}; signing needs ed25519, ECDSA or RSA`);
  }
  const publicKey = key.getPublicSSH();
  return {
    async sign(payload) {
      const signed = Buffer.concat([
        SSHSIG_MAGIC,
        sshString(NAMESPACE),
        sshString(''),
        sshString(HASH),
        sshString(createHash(HASH).update(payload, 'utf8').digest()),
      ]);
      const raw = key.sign(signed, algorithm.hash) as Buffer | Error;
      if (raw instanceof Error) throw new SigningKeyError(`cannot sign with the SSH key in 'identity'`);
      const blob = algorithm.ecdsa ? ecdsaSignatureBlob(raw) : raw;
      const signature = Buffer.concat([
        SSHSIG_MAGIC,
        uint32(SSHSIG_VERSION),
        sshString(publicKey),
        sshString(NAMESPACE),
        sshString(''),
        sshString(HASH),
        sshString(Buffer.concat([sshString(algorithm.sigType), sshString(blob)])),
      ]);
      return armorSshSignature(signature);
    },
  };
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(value: string | Buffer): Buffer {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([uint32(b.length), b]);
}

function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const v = unsigned.subarray(i);
  return sshString(v.length > 0 && v[0]! & 0x80 ? Buffer.concat([Buffer.of(0), v]) : v);
}

/** Node signs ECDSA as DER `SEQUENCE { INTEGER r, INTEGER s }`; SSH wants `mpint r || mpint s`. */
function ecdsaSignatureBlob(der: Buffer): Buffer {
  let at = 0;
  const length = (): number => {
    const first = der[at++]!;
    if (first < 0x80) return first;
    let n = 0;
    for (let k = first & 0x7f; k > 0; k--) n = (n << 8) | der[at++]!;
    return n;
  };
  const integer = (): Buffer => {
    if (der[at++] !== 0x02) throw new SigningKeyError(`the SSH key in 'identity' made a malformed ECDSA signature`);
    const n = length();
    const v = der.subarray(at, at + n);
    at += n;
    return v;
  };
  if (der[at++] !== 0x30) throw new SigningKeyError(`the SSH key in 'identity' made a malformed ECDSA signature`);
  length();
  const r = integer();
  const s = integer();
  return Buffer.concat([mpint(r), mpint(s)]);
}

/** As ssh-keygen writes it: base64 in lines of 70 characters between the armor lines. */
function armorSshSignature(blob: Buffer): string {
  const b64 = blob.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70));
  return `-----BEGIN SSH SIGNATURE-----\n${lines.join('\n')}\n-----END SSH SIGNATURE-----\n`;
}
