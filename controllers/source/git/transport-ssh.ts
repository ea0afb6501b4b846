// Git over SSH for isomorphic-git, which only speaks smart HTTP. isomorphic-git is given a
// stand-in http:// URL and an HttpClient that plays a stateless smart-HTTP server by running
// `<service> '<path>'` on the SSH server, where the service is git-upload-pack (fetch) or
// git-receive-pack (push):
//   GET  …/info/refs?service=<service> → the `# service=` preamble + the ref advertisement the
//        command prints (up to its flush-pkt); the command is then sent a flush-pkt ("no wants",
//        "no commands"), on which both services exit cleanly, and closed.
//   POST …/<service> → a fresh command whose advertisement is skipped; the request body is
//        written and stdin ended, and the command's output is the response body. For a fetch the
//        body is wants, deepen, flush, done — all of it, as stateless HTTP sends it — and the
//        output shallow lines, NAK and the side-band pack; for a push the body is the commands,
//        any push-options and the pack, and the output the (side-band) report-status, which
//        git-receive-pack writes only after the whole pack is read: hence the end of stdin.
// With protocol v0 over SSH those are the bytes smart HTTP would carry, so isomorphic-git's
// parsers work unchanged. One SSH connection serves every request of a Transport.
// ssh2 is CommonJS and its `utils` export is invisible to Node's named-export detection.
import { createRequire } from 'node:module';
import type {
  AnyAuthMethod,
  Client,
  ClientChannel,
  ConnectConfig,
  ParsedKey,
  PublicKeyAuthMethod,
  ServerHostKeyAlgorithm,
} from 'ssh2';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { connectTunnel } from './proxy.ts';
import { checkHostKey, fingerprint, keysForHost, keyType, parseKnownHosts, type KnownHostKey } from './known-hosts.ts';
import { RequestGuard, connectionCause, sizeLimitError } from './transport-http.ts';
import { TransportError, type GitCredentials, type Transport, type TransportOptions } from './types.ts';

// ssh2 costs ~19 MB of memory: loaded (synchronously, it is CommonJS) on the first ssh:// URL only.
let loaded: typeof import('ssh2') | undefined;
const ssh2 = (): typeof import('ssh2') => (loaded ??= createRequire(import.meta.url)('ssh2') as typeof import('ssh2'));

/** The git commands the transport runs: git-upload-pack for fetches, git-receive-pack for pushes. */
const services = ['git-upload-pack', 'git-receive-pack'] as const;
type GitService = (typeof services)[number];
const flushPkt = Buffer.from('0000');
const maxStderr = 8192;

interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** The repository path as the server's git-upload-pack/git-receive-pack expect it. */
  path: string;
  /** `host:port`, for messages. */
  label: string;
}

export function openSshTransport(url: URL, creds: GitCredentials, opts: TransportOptions): Transport {
  const target = sshTarget(url);
  const knownHosts = parseKnownHosts(creds.knownHosts ?? '');
  if (knownHosts.length === 0) {
    throw new TransportError(
      'hostkey',
      `no known_hosts entries to check ${target.label} against: ` +
        "add the server's host keys to the Secret as known_hosts",
    );
  }
  const identity = creds.identity ? parseIdentity(creds.identity, creds.identityPassphrase) : undefined;
  const session = new SshSession(target, knownHosts, identity, opts);
  return {
    url: `http://ssh.invalid${url.pathname.replace(/\/+$/, '')}`,
    http: { request: (req) => session.request(req) } satisfies HttpClient,
    close: () => session.close(),
  };
}

function sshTarget(url: URL): SshTarget {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : 22;
  let path = decodeURIComponent(url.pathname);
  // As git does: ssh://host/~user/repo names a path relative to a home directory.
  if (path.startsWith('/~')) path = path.slice(1);
  if (!host || path === '' || path === '/')
    throw new TransportError('protocol', `SSH URL for ${url.host} names no repository path`);
  return { host, port, username: decodeURIComponent(url.username) || 'git', path, label: `${host}:${port}` };
}

function parseIdentity(identity: string, passphrase: string | undefined): ParsedKey {
  const parsed = ssh2().utils.parseKey(identity, passphrase);
  if (parsed instanceof Error) {
    if (/passphrase/i.test(parsed.message)) {
      throw new TransportError(
        'auth',
        `the SSH identity is encrypted and its passphrase is ${passphrase ? 'wrong' : 'missing'}`,
      );
    }
    throw new TransportError('auth', `the SSH identity is not a private key ssh2 can read: ${parsed.message}`);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key?.isPrivateKey()) throw new TransportError('auth', 'the SSH identity is not a private key');
  return key;
}

class SshSession {
  readonly #target: SshTarget;
  readonly #knownHosts: KnownHostKey[];
  readonly #identity: ParsedKey | undefined;
  readonly #opts: TransportOptions;
  #client: Promise<Client> | undefined;
  #closed = false;

  constructor(target: SshTarget, knownHosts: KnownHostKey[], identity: ParsedKey | undefined, opts: TransportOptions) {
    this.#target = target;
    this.#knownHosts = knownHosts;
    this.#identity = identity;
    this.#opts = opts;
  }

  async request(req: GitHttpRequest): Promise<GitHttpResponse> {
    const url = new URL(req.url);
    const method = (req.method ?? 'GET').toUpperCase();
    const guard = new RequestGuard(this.#opts, {
      host: this.#target.label,
      timeoutMessage: `${this.#target.label} did not answer within ${this.#opts.timeoutMs} ms`,
    });
    try {
      if (method === 'GET' && url.pathname.endsWith('/info/refs')) {
        const service = services.find((s) => s === url.searchParams.get('service'));
        if (service) return await this.#advertise(service, req.url, guard);
      }
      if (method === 'POST') {
        const service = services.find((s) => url.pathname.endsWith(`/${s}`));
        if (service) return await this.#rpc(service, req, guard);
      }
      throw new TransportError(
        'protocol',
        'the SSH transport only serves git-upload-pack (fetch) and git-receive-pack (push); ' +
          `it cannot ${method} ${url.pathname}${url.search}`,
      );
    } catch (err) {
      guard.done();
      throw (
        guard.failure ??
        (err instanceof TransportError
          ? err
          : new TransportError('unreachable', `SSH to ${this.#target.label} failed: ${(err as Error).message}`))
      );
    }
  }

  close(): void {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    client?.then(
      (c) => c.end(),
      () => {},
    );
  }

  async #advertise(service: GitService, url: string, guard: RequestGuard): Promise<GitHttpResponse> {
    const command = await this.#exec(service, guard);
    const { advertisement } = await command.readAdvertisement();
    // A flush-pkt instead of wants (upload-pack) or commands (receive-pack) tells the command the
    // client wants nothing; it then exits.
    command.finish(flushPkt);
    guard.done();
    const preamble = pktLine(`# service=${service}\n`);
    return response(
      url,
      'GET',
      `application/x-${service}-advertisement`,
      single(Buffer.concat([preamble, flushPkt, advertisement])),
    );
  }

  /** One request/response turn: the whole request body in, the command's output out. */
  async #rpc(service: GitService, req: GitHttpRequest, guard: RequestGuard): Promise<GitHttpResponse> {
    const body = await collect(req.body ?? []);
    const command = await this.#exec(service, guard);
    const { rest } = await command.readAdvertisement();
    command.write(body);
    return response(req.url, 'POST', `application/x-${service}-result`, command.output(rest, guard));
  }

  async #exec(service: GitService, guard: RequestGuard): Promise<GitCommand> {
    const client = await this.#connect(guard);
    const { label, path } = this.#target;
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      guard.onFail(reject);
      try {
        client.exec(`${service} ${shellQuote(path)}`, (err, ch) => {
          if (err) reject(new TransportError('protocol', `${label} refused to run ${service}: ${err.message}`));
          // A channel that opens after the deadline has nobody left to read it.
          else if (guard.failure) ch.close();
          else resolve(ch);
        });
      } catch (err) {
        // The connection went away since the last request; the next request reconnects.
        this.#client = undefined;
        reject(new TransportError('unreachable', `SSH connection to ${label} was lost: ${(err as Error).message}`));
      }
    });
    const command = new GitCommand(service, channel, this.#target, this.#opts.maxBytes);
    guard.onFail((err) => command.abort(err));
    return command;
  }

  #connect(guard: RequestGuard): Promise<Client> {
    if (this.#closed)
      return Promise.reject(new TransportError('protocol', `the SSH transport to ${this.#target.label} is closed`));
    if (this.#client) {
      // Opened by an earlier request, whose guard does not watch this one's deadline.
      const existing = this.#client;
      return new Promise((resolve, reject) => {
        guard.onFail(reject);
        existing.then(resolve, reject);
      });
    }
    const connecting = this.#open(guard);
    this.#client = connecting;
    connecting.catch(() => {
      if (this.#client === connecting) this.#client = undefined;
    });
    return connecting;
  }

  async #open(guard: RequestGuard): Promise<Client> {
    const { host, port, username, label } = this.#target;
    // As go-git does for SSH: through an HTTP CONNECT tunnel when a proxy is set.
    const proxy = this.#opts.proxy;
    const sock = proxy ? await connectTunnel(proxy, host, port, (destroy) => guard.onFail(destroy)) : undefined;
    const client = new (ssh2().Client)();
    let hostKeyProblem: TransportError | undefined;
    const algorithms = hostKeyAlgorithms(keysForHost(this.#knownHosts, host, port));
    const auth: AnyAuthMethod[] = this.#identity
      ? [{ type: 'publickey', username, key: this.#identity } satisfies PublicKeyAuthMethod]
      : [{ type: 'none', username }];
    const config: ConnectConfig = {
      host,
      port,
      username,
      authHandler: auth,
      readyTimeout: this.#opts.timeoutMs,
      ...(sock ? { sock } : {}),
      algorithms: algorithms ? { serverHostKey: algorithms } : undefined,
      hostVerifier: (key: Buffer) => {
        const verdict = checkHostKey(this.#knownHosts, host, port, key);
        if (!verdict.ok) hostKeyProblem = hostKeyError(label, key, verdict.reason);
        return verdict.ok;
      },
    };
    const connection = new Promise<Client>((resolve, reject) => {
      let ready = false;
      guard.onFail((err) => {
        if (!ready) {
          reject(err);
          client.destroy();
        }
      });
      client.once('ready', () => {
        ready = true;
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (!ready) reject(guard.failure ?? hostKeyProblem ?? this.#connectError(err, algorithms));
      });
      client.once('close', () => {
        if (!ready)
          reject(
            guard.failure ?? hostKeyProblem ?? new TransportError('unreachable', `${label} closed the SSH connection`),
          );
        // The next request reconnects.
        else if (this.#client === connection) this.#client = undefined;
      });
      client.connect(config);
      // Git's request/answer turns are small writes; with Nagle's algorithm each waits for a
      // delayed ACK (a listing took ~200 ms instead of ~10 ms on loopback).
      client.setNoDelay(true);
    });
    return connection;
  }

  #connectError(
    err: Error & { level?: string; code?: string },
    restrictedTo: ServerHostKeyAlgorithm[] | undefined,
  ): TransportError {
    const { label, username } = this.#target;
    switch (err.level) {
      case 'client-authentication':
        return new TransportError(
          'auth',
          this.#identity
            ? `${label} rejected the SSH identity for user ${username}`
            : `${label} requires an SSH identity for user ${username} and none was given`,
        );
      case 'client-timeout':
        return new TransportError('timeout', `no SSH handshake with ${label} within ${this.#opts.timeoutMs} ms`);
      case 'client-socket':
        return new TransportError('unreachable', `cannot reach ${label}: ${connectionCause(err)}`);
      case 'handshake':
        if (restrictedTo && /host key/i.test(err.message)) {
          return new TransportError(
            'hostkey',
            `${label} offers none of the host key types known_hosts lists for it (${restrictedTo.join(', ')})`,
          );
        }
        return new TransportError('protocol', `SSH handshake with ${label} failed: ${err.message}`);
      default:
        return new TransportError('unreachable', `SSH connection to ${label} failed: ${err.message}`);
    }
  }
}

/** One run of `git-upload-pack` or `git-receive-pack` on an exec channel. */
class GitCommand {
  readonly #service: GitService;
  readonly #channel: ClientChannel;
  readonly #chunks: AsyncIterator<Buffer>;
  readonly #target: SshTarget;
  readonly #maxBytes: number | undefined;
  readonly #exited: Promise<number | null>;
  readonly #aborted: Promise<never>;
  #abort: (err: Error) => void = () => {};
  #stderr = '';

  constructor(service: GitService, channel: ClientChannel, target: SshTarget, maxBytes: number | undefined) {
    this.#service = service;
    this.#channel = channel;
    this.#chunks = (channel as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    this.#target = target;
    this.#maxBytes = maxBytes;
    // Failures reach the reader through #next(); an 'error' event nobody listens to would crash
    // the process instead.
    channel.on('error', () => {});
    channel.stderr.on('error', () => {});
    channel.stderr.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < maxStderr) this.#stderr += chunk.toString('utf8');
    });
    let exitCode: number | null = null;
    channel.on('exit', (code: number | null) => {
      exitCode = code;
    });
    this.#exited = new Promise((resolve) => channel.once('close', () => resolve(exitCode)));
    this.#aborted = new Promise<never>((_resolve, reject) => {
      this.#abort = reject;
    });
    this.#aborted.catch(() => {});
  }

  /**
   * Ends the command with `err`: a pending read fails at once. (ssh2's channel.destroy() ignores
   * its error and waits for the server to confirm the close, which a hung server never does.)
   */
  abort(err: Error): void {
    this.#abort(err);
    this.#channel.close();
  }

  /** Reads pkt-lines up to and including the advertisement's flush-pkt; `rest` is what followed. */
  async readAdvertisement(): Promise<{ advertisement: Buffer; rest: Buffer }> {
    let buf = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      while (buf.length - pos >= 4) {
        const len = pktLength(buf, pos);
        if (len === 0) return { advertisement: buf.subarray(0, pos + 4), rest: buf.subarray(pos + 4) };
        if (len === undefined || len < 4) throw this.#protocolError('sent a malformed ref advertisement');
        if (buf.length - pos < len) break;
        pos += len;
      }
      const { value, done } = await this.#next();
      if (done) throw await this.#endedError();
      buf = Buffer.concat([buf, value]);
      if (this.#maxBytes !== undefined && buf.length > this.#maxBytes)
        throw sizeLimitError(this.#target.label, this.#maxBytes);
    }
  }

  write(data: Uint8Array): void {
    // EOF after the request: a server that wanted more fails instead of waiting forever, and
    // git-receive-pack has all of the pack before it reports the push's status.
    this.#channel.end(data);
  }

  /** Sends `data`, then closes the channel without waiting for the command. */
  finish(data: Uint8Array): void {
    this.#channel.end(data);
    void this.#chunks.return?.();
  }

  /** The command's remaining stdout as a response body, starting with `first`. */
  async *output(first: Buffer, guard: RequestGuard): AsyncGenerator<Uint8Array> {
    const maxBytes = this.#maxBytes;
    let total = first.length;
    try {
      if (first.length > 0) yield first;
      for (;;) {
        const { value, done } = await this.#next();
        if (done) break;
        total += value.length;
        if (maxBytes !== undefined && total > maxBytes) throw sizeLimitError(this.#target.label, maxBytes);
        yield value;
      }
      const code = await this.#exitCode();
      if (code !== 0 && code !== null) throw this.#protocolError(`exited with code ${code}`);
      guard.throwIfFailed();
    } catch (err) {
      throw (
        guard.failure ??
        (err instanceof TransportError
          ? err
          : new TransportError('unreachable', `reading from ${this.#target.label} failed: ${(err as Error).message}`))
      );
    } finally {
      guard.done();
      void this.#chunks.return?.();
    }
  }

  #next(): Promise<IteratorResult<Buffer>> {
    return Promise.race([this.#chunks.next(), this.#aborted]);
  }

  /** The command's exit code once the channel closes; null when the server did not send one. */
  #exitCode(): Promise<number | null> {
    return Promise.race([this.#exited, this.#aborted]);
  }

  /** Why the command ended before its advertisement was complete, from what it printed. */
  async #endedError(): Promise<TransportError> {
    await this.#exitCode();
    const said = serverMessage(this.#stderr);
    if (/does not appear to be a git repository|not a git repository|no such file|does not exist/i.test(said)) {
      return new TransportError('not-found', `no repository ${this.#target.path} on ${this.#target.label}: ${said}`);
    }
    return this.#protocolError('ended without a ref advertisement');
  }

  #protocolError(what: string): TransportError {
    const said = serverMessage(this.#stderr);
    const { label } = this.#target;
    return new TransportError('protocol', `${this.#service} on ${label} ${what}${said ? `: ${said}` : ''}`);
  }
}

/**
 * The server host key algorithms to offer: only those known_hosts has keys of for this host, so
 * a server with several host keys presents the one we can check (as OpenSSH does). Undefined
 * when the host is not listed; the verifier then rejects whatever it presents.
 */
function hostKeyAlgorithms(keys: KnownHostKey[]): ServerHostKeyAlgorithm[] | undefined {
  const algorithms = new Set<ServerHostKeyAlgorithm>();
  for (const { type, revoked } of keys) {
    if (revoked) continue;
    if (type === 'ssh-rsa') for (const a of ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] as const) algorithms.add(a);
    else if (isHostKeyAlgorithm(type)) algorithms.add(type);
  }
  return algorithms.size > 0 ? [...algorithms] : undefined;
}

function isHostKeyAlgorithm(type: string): type is ServerHostKeyAlgorithm {
  return ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-dss'].includes(type);
}

function hostKeyError(label: string, key: Buffer, reason: 'unknown-host' | 'mismatch' | 'revoked'): TransportError {
  const offered = `${keyType(key) ?? 'unknown type'} key ${fingerprint(key)}`;
  switch (reason) {
    case 'unknown-host':
      return new TransportError('hostkey', `host ${label} is not in known_hosts (it offered ${offered})`);
    case 'mismatch':
      return new TransportError('hostkey', `host key of ${label} does not match known_hosts (it offered ${offered})`);
    case 'revoked':
      return new TransportError('hostkey', `host key of ${label} is revoked in known_hosts (it offered ${offered})`);
  }
}

/** The lines of the server's stderr worth showing: its fatal/error lines, or all of it. */
function serverMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines.filter((l) => /^(fatal|error)\b/i.test(l));
  return (errors.length > 0 ? errors : lines).join('; ').slice(0, 500);
}

/** POSIX single quotes, as git itself quotes the path it sends over SSH. */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

function pktLine(payload: string): Buffer {
  const data = Buffer.from(payload, 'utf8');
  return Buffer.concat([Buffer.from((data.length + 4).toString(16).padStart(4, '0')), data]);
}

function pktLength(buf: Buffer, pos: number): number | undefined {
  const hex = buf.toString('latin1', pos, pos + 4);
  return /^[0-9a-fA-F]{4}$/.test(hex) ? Number.parseInt(hex, 16) : undefined;
}

function response(
  url: string,
  method: string,
  contentType: string,
  body: AsyncIterableIterator<Uint8Array>,
): GitHttpResponse {
  return { url, method, statusCode: 200, statusMessage: 'OK', headers: { 'content-type': contentType }, body };
}

async function* single(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield chunk;
}

async function collect(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
