// The push side of git's smart protocol (git-receive-pack), over any Transport: list the refs the
// server would update, then send ref updates, push options and one pack in a single request and
// read the server's per-ref verdict. isomorphic-git's own push sends one ref and no push options;
// this sends several updates at once (all or nothing when the server is atomic-capable) and never
// asks for a forced update: every command names the old value the caller based its work on, so a
// ref that moved in the meantime is refused by the server instead of overwritten.
import { TransportError, type Transport } from './types.ts';

const SERVICE = 'git-receive-pack';
export const ZERO_OID = '0000000000000000000000000000000000000000';

export interface ReceivePackInfo {
  /** Full ref name → object id, as advertised. */
  refs: Map<string, string>;
  capabilities: Set<string>;
}

export interface RefUpdate {
  /** Full ref name, e.g. refs/heads/main. */
  ref: string;
  /** The value the server must still hold (ZERO_OID: the ref must not exist yet). */
  old: string;
  new: string;
}

/** The server refused the push or one of its ref updates (a moved ref, a hook, a policy). */
export class PushRejectedError extends Error {
  override name = 'PushRejectedError';
}

/** Lists the refs and capabilities of the receive-pack service. */
export async function discoverReceivePack(transport: Transport): Promise<ReceivePackInfo> {
  const res = await transport.http.request({
    url: `${transport.url}/info/refs?service=${SERVICE}`,
    method: 'GET',
    headers: { accept: `application/x-${SERVICE}-advertisement` },
  });
  const lines = parsePktLines(await collect(res.body ?? []));
  const refs = new Map<string, string>();
  let capabilities = new Set<string>();
  let first = true;
  for (const line of lines) {
    if (line === null) continue;
    const text = line.toString('utf8').replace(/\n$/, '');
    if (text.startsWith('# service=')) continue;
    let refPart = text;
    if (first) {
      const nul = text.indexOf('\0');
      if (nul >= 0) {
        capabilities = new Set(
          text
            .slice(nul + 1)
            .split(' ')
            .filter(Boolean),
        );
        refPart = text.slice(0, nul);
      }
      first = false;
    }
    const [oid, name] = refPart.split(' ');
    if (!oid || !name || name === 'capabilities^{}') continue;
    refs.set(name, oid);
  }
  return { refs, capabilities };
}

export interface PushRequest {
  updates: RefUpdate[];
  /** The pack holding every object the server lacks (may be empty when nothing new is sent). */
  pack: Uint8Array;
  /** `git push -o key=value` options; refused when the server does not announce push-options. */
  options?: Record<string, string>;
  capabilities: Set<string>;
}

/** Sends the updates and the pack; resolves when every ref was accepted, throws PushRejectedError otherwise. */
export async function sendReceivePack(transport: Transport, req: PushRequest): Promise<void> {
  if (req.updates.length === 0) return;
  const options = Object.entries(req.options ?? {});
  if (options.length > 0 && !req.capabilities.has('push-options')) {
    throw new PushRejectedError('the git server does not accept push options (no push-options capability)');
  }
  const wanted = ['report-status', 'side-band-64k', 'ofs-delta', 'atomic', 'push-options', 'quiet'];
  const caps = wanted.filter((c) => req.capabilities.has(c) && (c !== 'push-options' || options.length > 0));
  caps.push('agent=tide');
  const chunks: Buffer[] = [];
  req.updates.forEach((u, i) => {
    chunks.push(pktLine(`${u.old} ${u.new} ${u.ref}${i === 0 ? `\0${caps.join(' ')}` : ''}\n`));
  });
  chunks.push(FLUSH);
  if (caps.includes('push-options')) {
    for (const [key, value] of options) chunks.push(pktLine(value === '' ? `${key}\n` : `${key}=${value}\n`));
    chunks.push(FLUSH);
  }
  chunks.push(Buffer.from(req.pack));
  const res = await transport.http.request({
    url: `${transport.url}/${SERVICE}`,
    method: 'POST',
    headers: {
      'content-type': `application/x-${SERVICE}-request`,
      accept: `application/x-${SERVICE}-result`,
    },
    body: once(Buffer.concat(chunks)),
  });
  const body = await collect(res.body ?? []);
  if (!caps.includes('report-status')) return;
  const { status, errors, progress } = caps.includes('side-band-64k')
    ? demux(body)
    : { status: body, errors: '', progress: '' };
  if (errors) throw new PushRejectedError(`the git server refused the push: ${errors.trim()}`);
  checkReport(parsePktLines(status), req.updates, remoteSaid(progress));
}

/** What the server printed (hooks, ref lock errors), one line, for a refusal's message. */
function remoteSaid(progress: string): string {
  const lines = progress
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.length > 0 ? ` (the server said: ${lines.join(' / ').slice(0, 500)})` : '';
}

function checkReport(lines: (Buffer | null)[], updates: RefUpdate[], said: string): void {
  const refused: string[] = [];
  let unpack = '';
  const accepted = new Set<string>();
  for (const line of lines) {
    if (line === null) continue;
    const text = line.toString('utf8').replace(/\n$/, '');
    if (text.startsWith('unpack ')) unpack = text.slice('unpack '.length);
    else if (text.startsWith('ok ')) accepted.add(text.slice(3));
    else if (text.startsWith('ng ')) {
      const [ref, ...why] = text.slice(3).split(' ');
      refused.push(`${ref}: ${why.join(' ')}`);
    }
  }
  if (unpack && unpack !== 'ok') throw new PushRejectedError(`the git server could not unpack: ${unpack}`);
  if (refused.length > 0) throw new PushRejectedError(`the git server refused ${refused.join('; ')}${said}`);
  const missing = updates.filter((u) => !accepted.has(u.ref)).map((u) => u.ref);
  if (missing.length > 0) throw new PushRejectedError(`the git server did not confirm ${missing.join(', ')}`);
}

/** Splits a side-band-64k response into band 1 (the status pkt-lines), 2 (messages) and 3 (fatal errors). */
function demux(body: Buffer): { status: Buffer; errors: string; progress: string } {
  const status: Buffer[] = [];
  let errors = '';
  let progress = '';
  for (const line of parsePktLines(body)) {
    if (line === null || line.length === 0) continue;
    const band = line[0];
    if (band === 1) status.push(line.subarray(1));
    else if (band === 2) progress += line.subarray(1).toString('utf8');
    else if (band === 3) errors += line.subarray(1).toString('utf8');
  }
  return { status: Buffer.concat(status), errors, progress };
}

const FLUSH = Buffer.from('0000');

function pktLine(payload: string): Buffer {
  const data = Buffer.from(payload, 'utf8');
  return Buffer.concat([Buffer.from((data.length + 4).toString(16).padStart(4, '0')), data]);
}

/** pkt-lines of a buffer; null for a flush-pkt (0000) and delim (0001). */
export function parsePktLines(buf: Buffer): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  let pos = 0;
  while (pos + 4 <= buf.length) {
    const len = Number.parseInt(buf.subarray(pos, pos + 4).toString('ascii'), 16);
    if (Number.isNaN(len)) throw new TransportError('protocol', 'the git server sent a malformed pkt-line');
    if (len < 4) {
      out.push(null);
      pos += 4;
      continue;
    }
    if (pos + len > buf.length) throw new TransportError('protocol', 'the git server sent a truncated pkt-line');
    out.push(buf.subarray(pos + 4, pos + len));
    pos += len;
  }
  return out;
}

async function collect(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function* once(chunk: Uint8Array): AsyncIterableIterator<Uint8Array> {
  yield chunk;
}
