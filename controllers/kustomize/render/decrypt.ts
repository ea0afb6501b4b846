// spec.decryption (provider sops): SOPS-encrypted Secrets in the built manifests are decrypted with
// the sops CLI (built from its Go module, like kustomize) and the keys of the decryption Secret:
// `*.agekey` entries are age identities, `*.asc` entries OpenPGP private keys. Two shapes, as in
// Flux: a whole Secret encrypted with `sops -e` (it carries a `sops` field), and Secret values that
// are themselves SOPS documents (from a secretGenerator over encrypted files).
//
// kustomize has renamed, re-namespaced and re-ordered the Secret by now, which changes what the
// document's MAC covers; each value stays authenticated by its own AES-GCM tag, so the MAC is not
// checked (--ignore-mac), which is what Flux does for built resources too.
// Keys are handed to sops through its environment, never through files in the artifact, and
// nothing sops prints about a failure contains key material (only recipients).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { BuildError } from './errors.ts';
import type { Manifest } from './objects.ts';

export const DECRYPT_KEY = 'kustomize.toolkit.fluxcd.io/decrypt';

export interface DecryptionKeys {
  /** age identities (AGE-SECRET-KEY-…). */
  age: string[];
  /** Armored OpenPGP private keys. */
  pgp: string[];
}

export interface DecryptOptions {
  /** The sops binary: a path, or a name looked up on PATH (flag --sops-path). */
  sopsPath: string;
  timeoutMs: number;
  /** Undefined when the Kustomization has no spec.decryption: encrypted Secrets then fail the build. */
  keys: DecryptionKeys | undefined;
}

type Format = 'json' | 'yaml' | 'dotenv' | 'binary';

/** The keys of a decryption Secret's data (base64, as the API returns it). */
export function keysFromSecret(data: Record<string, string>): DecryptionKeys {
  const keys: DecryptionKeys = { age: [], pgp: [] };
  for (const [name, value] of Object.entries(data)) {
    const text = Buffer.from(value, 'base64').toString('utf8');
    if (name.endsWith('.agekey'))
      keys.age.push(
        ...text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l.startsWith('AGE-SECRET-KEY-')),
      );
    else if (name.endsWith('.asc')) keys.pgp.push(text);
  }
  return keys;
}

/**
 * The SOPS format a Secret value is encrypted in, from the MAC each format leaves. sops' binary
 * format is a JSON document too (`{"data": "ENC[…]", "sops": …}`), read as JSON and written out
 * as the key asks.
 */
export function encryptedFormat(value: Buffer): Exclude<Format, 'binary'> | undefined {
  const text = value.toString('utf8');
  if (/"mac":\s*"ENC\[/.test(text)) return 'json';
  if (/^\s*mac: ENC\[/m.test(text)) return 'yaml';
  if (/^sops_mac=ENC\[/m.test(text)) return 'dotenv';
  return undefined;
}

/** The plain format a value should come out in, from its key, as Flux decides it. */
function formatForKey(key: string): Format {
  switch (extname(key)) {
    case '.json':
      return 'json';
    case '.yaml':
    case '.yml':
      return 'yaml';
    case '.env':
      return 'dotenv';
    default:
      return 'binary';
  }
}

function isWholeEncryptedSecret(o: Manifest): boolean {
  const sops = (o as { sops?: { mac?: unknown } }).sops;
  return o.kind === 'Secret' && o.apiVersion === 'v1' && typeof sops === 'object' && sops !== null && !!sops.mac;
}

const subject = (o: Manifest) => `Secret/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

/** One line of what sops said, without its layout. */
function tidy(stderr: string): string {
  return stderr.replace(/\s+/g, ' ').trim().slice(0, 600);
}

class Sops {
  private readonly opts: DecryptOptions & { keys: DecryptionKeys };
  private home: Promise<string> | undefined;
  private dir: Promise<string> | undefined;
  private count = 0;

  constructor(opts: DecryptOptions & { keys: DecryptionKeys }) {
    this.opts = opts;
  }

  /** A private GnuPG home with the OpenPGP keys imported, made on first use. */
  private gnupgHome(): Promise<string> {
    this.home ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tide-gnupg-'));
      for (const key of this.opts.keys.pgp)
        await this.run(
          'gpg',
          ['--batch', '--import'],
          key,
          { GNUPGHOME: dir },
          'importing an OpenPGP key of the decryption Secret',
        );
      return dir;
    })();
    return this.home;
  }

  /** A private directory for the encrypted input (sops cannot read a pipe as its file). */
  private scratch(): Promise<string> {
    this.dir ??= mkdtemp(join(tmpdir(), 'tide-sops-'));
    return this.dir;
  }

  async decrypt(input: string, from: Format, to: Format): Promise<string> {
    const env: Record<string, string> = { SOPS_AGE_KEY: this.opts.keys.age.join('\n') };
    if (this.opts.keys.pgp.length > 0) env.GNUPGHOME = await this.gnupgHome();
    const file = join(await this.scratch(), `input-${++this.count}`);
    await writeFile(file, input, { mode: 0o600 });
    try {
      return await this.run(
        this.opts.sopsPath,
        ['--decrypt', '--ignore-mac', '--input-type', from, '--output-type', to, file],
        '',
        env,
        'sops',
      );
    } finally {
      await rm(file, { force: true });
    }
  }

  private run(
    binary: string,
    args: string[],
    input: string,
    extra: Record<string, string>,
    what: string,
  ): Promise<string> {
    // PATH lets sops find gpg; HOME keeps it away from the controller's own keyrings.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), SOPS_AGE_KEY_FILE: '/dev/null', ...extra };
    return new Promise((resolve, reject) => {
      const child = spawn(binary, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const timer = setTimeout(() => child.kill('SIGKILL'), this.opts.timeoutMs);
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new Error(
            e.code === 'ENOENT' ? `${binary} not found; install sops or set --sops-path` : `${what}: ${e.message}`,
          ),
        );
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
        reject(
          new Error(
            signal === 'SIGKILL'
              ? `${what} timed out after ${this.opts.timeoutMs}ms`
              : tidy(Buffer.concat(err).toString('utf8')) || `${what} exited with ${code}`,
          ),
        );
      });
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    });
  }

  async cleanup(): Promise<void> {
    for (const dir of [this.home, this.dir]) {
      const path = await dir?.catch(() => undefined);
      if (path) await rm(path, { recursive: true, force: true });
    }
  }
}

/**
 * Decrypts the SOPS-encrypted Secrets among `objects` (in place of the encrypted ones). Objects
 * annotated `kustomize.toolkit.fluxcd.io/decrypt: disabled` are left as they are. Throws a
 * BuildError naming the Secret (and the key of a value) when one cannot be decrypted, or when
 * one is encrypted and the Kustomization has no spec.decryption.
 */
export async function decryptObjects(objects: Manifest[], opts: DecryptOptions): Promise<Manifest[]> {
  const candidates = objects.filter((o) => o.kind === 'Secret' && o.metadata.annotations?.[DECRYPT_KEY] !== 'disabled');
  const encrypted = (o: Manifest) =>
    isWholeEncryptedSecret(o) ||
    (o as { data?: Record<string, string> }).data?.sops_mac !== undefined ||
    Object.values((o as { data?: Record<string, string> }).data ?? {}).some(
      (v) => typeof v === 'string' && encryptedFormat(Buffer.from(v, 'base64')) !== undefined,
    );
  const todo = candidates.filter(encrypted);
  if (todo.length === 0) return objects;
  if (!opts.keys) throw new BuildError(`${subject(todo[0]!)} is encrypted with SOPS, but spec.decryption is not set`);
  const sops = new Sops({ ...opts, keys: opts.keys });
  try {
    const done = new Map<Manifest, Manifest>();
    for (const o of todo) done.set(o, await decryptOne(sops, o));
    return objects.map((o) => done.get(o) ?? o);
  } finally {
    await sops.cleanup();
  }
}

async function decryptOne(sops: Sops, o: Manifest): Promise<Manifest> {
  if (isWholeEncryptedSecret(o)) {
    try {
      return JSON.parse(await sops.decrypt(JSON.stringify(o), 'json', 'json')) as Manifest;
    } catch (err) {
      throw new BuildError(`failed to decrypt ${subject(o)}: ${(err as Error).message}`);
    }
  }
  const data = { ...((o as { data?: Record<string, string> }).data ?? {}) };
  // kustomize splits a dotenv file given as `envs:` into one key per line, the SOPS metadata
  // included, before anything can decrypt it.
  if (data.sops_mac !== undefined && Buffer.from(data.sops_mac, 'base64').toString('utf8').startsWith('ENC[')) {
    throw new BuildError(
      `${subject(o)} comes from a SOPS-encrypted dotenv file given to a secretGenerator as envs:, ` +
        'which is not supported yet; list it under files: with a key ending in .env instead',
    );
  }
  for (const [key, value] of Object.entries(data)) {
    const from = encryptedFormat(Buffer.from(value, 'base64'));
    if (!from) continue;
    try {
      const plain = await sops.decrypt(Buffer.from(value, 'base64').toString('utf8'), from, formatForKey(key));
      data[key] = Buffer.from(plain, 'utf8').toString('base64');
    } catch (err) {
      throw new BuildError(`failed to decrypt ${subject(o)} key '${key}': ${(err as Error).message}`);
    }
  }
  return { ...o, data } as Manifest;
}
