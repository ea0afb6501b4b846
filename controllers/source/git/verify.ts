// OpenPGP verification of signed commits and annotated tags (GitRepository spec.verify), on the
// raw objects so the signed bytes are exactly those git signed, whatever their encoding.
import git from 'isomorphic-git';
import * as openpgp from 'openpgp';

export interface VerifyCommitOptions {
  fs: typeof import('node:fs');
  gitdir: string;
  commit: string;
  /** Armored public keys (a Secret's values); one value may hold several keys. */
  armoredKeys: string[];
}

export interface VerifyTagOptions {
  fs: typeof import('node:fs');
  gitdir: string;
  tagOid: string;
  armoredKeys: string[];
}

export interface VerifiedSignature {
  /** Primary key ID of the trusted key that verified, 16 upper-case hex digits as gpg shows it. */
  keyId: string;
  /** Its primary key fingerprint, upper-case hex. */
  fingerprint: string;
}

interface Signed {
  payload: Uint8Array;
  signature?: string;
}

const LF = 0x0a;
const SP = 0x20;
const PGP_BEGIN = '-----BEGIN PGP SIGNATURE-----';
// Git recognises these too; a tag signed with them is signed, just not in a form we can check.
const OTHER_BEGINS = ['-----BEGIN SSH SIGNATURE-----', '-----BEGIN SIGNED MESSAGE-----'];

function startsWith(line: Uint8Array, prefix: string): boolean {
  if (line.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

function* lines(raw: Uint8Array): Generator<{ start: number; line: Uint8Array }> {
  for (let start = 0; start < raw.length; ) {
    const nl = raw.indexOf(LF, start);
    const end = nl === -1 ? raw.length : nl + 1;
    yield { start, line: raw.subarray(start, end) };
    start = end;
  }
}

/**
 * Git signs a commit without its signature headers: `gpgsig` (ours) and any other `gpgsig*`
 * (signatures for another hash algorithm), each with its continuation lines.
 */
export function splitCommit(raw: Uint8Array): Signed {
  const kept: Uint8Array[] = [];
  const sig: Uint8Array[] = [];
  let inSig = false;
  let inOtherSig = false;
  for (const { start, line } of lines(raw)) {
    if (line[0] === LF) {
      kept.push(raw.subarray(start));
      break;
    }
    if (line[0] === SP && (inSig || inOtherSig)) {
      if (inSig) sig.push(line.subarray(1));
      continue;
    }
    inSig = startsWith(line, 'gpgsig ');
    inOtherSig = !inSig && startsWith(line, 'gpgsig');
    if (inSig) sig.push(line.subarray('gpgsig '.length));
    else if (!inOtherSig) kept.push(line);
  }
  return {
    payload: Buffer.concat(kept),
    signature: sig.length > 0 ? Buffer.concat(sig).toString('utf8') : undefined,
  };
}

/** Like git, the signature of a tag starts at the last line that opens a signature block. */
export function splitTag(raw: Uint8Array): Signed {
  let at = -1;
  for (const { start, line } of lines(raw)) {
    if (startsWith(line, PGP_BEGIN) || OTHER_BEGINS.some((b) => startsWith(line, b))) at = start;
  }
  if (at === -1) return { payload: raw };
  return { payload: raw.subarray(0, at), signature: Buffer.from(raw.subarray(at)).toString('utf8') };
}

async function readRaw(
  fs: typeof import('node:fs'),
  gitdir: string,
  oid: string,
  type: 'commit' | 'tag',
): Promise<Uint8Array> {
  const obj = await git.readObject({ fs, gitdir, oid, format: 'content' });
  if (obj.type !== type) throw new Error(`object ${oid} is a ${obj.type}, not a ${type}`);
  return obj.object as Uint8Array;
}

// openpgp reads one armor block per call; Secret values are often several exports concatenated.
const ARMOR_BLOCK = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

async function trustedKeys(armoredKeys: string[]): Promise<openpgp.Key[]> {
  const keys: openpgp.Key[] = [];
  for (const [i, value] of armoredKeys.entries()) {
    const blocks = value.match(ARMOR_BLOCK) ?? [value];
    try {
      for (const block of blocks) keys.push(...(await openpgp.readKeys({ armoredKeys: block })));
    } catch (err) {
      throw new Error(`trusted key ${i + 1} is not an armored OpenPGP key: ${(err as Error).message}`);
    }
  }
  return keys;
}

const hex = (id: openpgp.KeyID) => id.toHex().toUpperCase();

async function check(what: string, signed: Signed, armoredKeys: string[]): Promise<VerifiedSignature> {
  if (signed.signature === undefined) throw new Error(`${what} is not signed`);
  if (!signed.signature.startsWith(PGP_BEGIN)) {
    throw new Error(`${what} has a signature that is not OpenPGP (SSH or X.509), which cannot be verified`);
  }
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature: signed.signature });
  } catch (err) {
    throw new Error(`${what} has a malformed signature: ${(err as Error).message}`);
  }
  const keys = await trustedKeys(armoredKeys);
  const signers = signature.getSigningKeyIDs();
  const signerText = signers.map(hex).join(', ') || 'unknown';
  // A signature names its (sub)key; looking it up ourselves makes "no such key" distinguishable
  // from "right key, bad signature".
  const key = keys.find((k) => k.getKeys().some((sub) => signers.some((id) => sub.getKeyID().equals(id))));
  if (!key) {
    throw new Error(
      `signature of ${what} made by key ${signerText} does not match any of the ${keys.length} trusted keys`,
    );
  }
  const message = await openpgp.createMessage({ binary: signed.payload });
  const { signatures } = await openpgp.verify({ message, signature, verificationKeys: [key], format: 'binary' });
  // Results we return before awaiting must not surface as unhandled rejections.
  for (const s of signatures) s.verified.catch(() => {});
  let failure: unknown = new Error('no signature packet');
  for (const s of signatures) {
    try {
      await s.verified;
      return { keyId: hex(key.getKeyID()), fingerprint: key.getFingerprint().toUpperCase() };
    } catch (err) {
      failure = err;
    }
  }
  throw new Error(`signature of ${what} made by key ${signerText} is invalid: ${(failure as Error).message}`);
}

export async function verifyCommit(opts: VerifyCommitOptions): Promise<VerifiedSignature> {
  const raw = await readRaw(opts.fs, opts.gitdir, opts.commit, 'commit');
  return check(`commit ${opts.commit}`, splitCommit(raw), opts.armoredKeys);
}

export async function verifyTag(opts: VerifyTagOptions): Promise<VerifiedSignature> {
  const raw = await readRaw(opts.fs, opts.gitdir, opts.tagOid, 'tag');
  return check(`tag ${opts.tagOid}`, splitTag(raw), opts.armoredKeys);
}
