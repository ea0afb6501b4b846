// OpenSSH known_hosts: which host keys an SSH server may present. Supports plain and hashed
// (`|1|salt|hash`) host fields, `[host]:port` for non-default ports, comma lists, `*`/`?`
// wildcards, `!` negation and the `@revoked` marker. `@cert-authority` lines are kept out of the
// result: host certificates are not supported, so such a line never vouches for a key.
import { createHash, createHmac } from 'node:crypto';

export interface KnownHostKey {
  /** The host field as written: patterns or one hashed name. */
  hosts: string;
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, … as named inside the key blob. */
  type: string;
  /** The public key blob (SSH wire format), as a server presents it during key exchange. */
  key: Buffer;
  revoked: boolean;
}

export type HostKeyVerdict = { ok: true } | { ok: false; reason: 'unknown-host' | 'mismatch' | 'revoked' };

export function parseKnownHosts(content: string): KnownHostKey[] {
  const entries: KnownHostKey[] = [];
  for (const raw of content.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@cert-authority') continue;
      if (marker !== '@revoked') continue;
      revoked = true;
    }
    const [hosts, type, base64] = fields;
    if (!hosts || !type || !base64) continue;
    const key = Buffer.from(base64, 'base64');
    // A line whose blob does not name its own type is corrupt; OpenSSH skips those too.
    if (keyType(key) !== type) continue;
    entries.push({ hosts, type, key, revoked });
  }
  return entries;
}

/** The name known_hosts uses for a server: `host`, or `[host]:port` when the port is not 22. */
export function knownHostsName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/** The entries (including revoked ones) that apply to `host:port`. */
export function keysForHost(entries: KnownHostKey[], host: string, port: number): KnownHostKey[] {
  const name = knownHostsName(host, port);
  return entries.filter((e) => hostFieldMatches(e.hosts, name));
}

/** Whether `key`, offered by `host:port`, is one known_hosts lists for it and has not revoked. */
export function checkHostKey(entries: KnownHostKey[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const forHost = keysForHost(entries, host, port);
  // OpenSSH: a revoked key is refused for every host, whatever other lines say.
  if (entries.some((e) => e.revoked && e.key.equals(key))) return { ok: false, reason: 'revoked' };
  const known = forHost.filter((e) => !e.revoked);
  if (known.length === 0) return { ok: false, reason: 'unknown-host' };
  return known.some((e) => e.key.equals(key)) ? { ok: true } : { ok: false, reason: 'mismatch' };
}

/** `SHA256:<unpadded base64>`, as `ssh-keygen -l` and OpenSSH's error messages print it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm name at the start of an SSH public key blob, or undefined when it is malformed. */
export function keyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  return blob.subarray(4, 4 + len).toString('latin1');
}

function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) return hashedMatches(field, name);
  let matched = false;
  for (const pattern of field.toLowerCase().split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), name)) return false;
    } else if (globMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>`: the name itself is not recoverable. */
function hashedMatches(field: string, name: string): boolean {
  const [, , salt, hash] = field.split('|');
  if (!salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return expected.length === actual.length && expected.equals(actual);
}

function globMatches(pattern: string, name: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === name;
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${source}$`).test(name);
}
