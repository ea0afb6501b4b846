// An HTTP proxy for tests: Debian's tinyproxy in the foreground on 127.0.0.1, optionally with
// basic auth, logging every request it handles to its own log, which tests read to prove that
// traffic went through it.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { eventually } from './eventually.ts';
import { freePort } from './net.ts';

export const tinyproxyPath = '/usr/bin/tinyproxy';
export const tinyproxyInstallHint = 'make system-deps (apt-get install -y tinyproxy)';

export interface ProxyServerOptions {
  auth?: { username: string; password: string };
}

export interface ProxyServer {
  /** `http://127.0.0.1:PORT`, for the Secret's address key. */
  address: string;
  port: number;
  /** Requests tinyproxy logged so far: `CONNECT host:port` or `GET http://…`. */
  requests(): string[];
  /** tinyproxy's whole log. */
  log(): string;
  close(): Promise<void>;
}

export async function startProxyServer(opts: ProxyServerOptions = {}): Promise<ProxyServer> {
  if (!fs.existsSync(tinyproxyPath)) {
    throw new Error(`tinyproxy not found at ${tinyproxyPath}; install it with: ${tinyproxyInstallHint}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-proxy-'));
  // tinyproxy drops to `nobody` when started as root; it must still write its log.
  fs.chmodSync(dir, 0o777);
  const logPath = path.join(dir, 'tinyproxy.log');
  const port = await freePort();
  const root = process.getuid?.() === 0;
  const conf = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    `LogFile "${logPath}"`,
    'LogLevel Connect',
    'MaxClients 64',
    'Allow 127.0.0.1',
    'DisableViaHeader Yes',
    ...(root ? ['User nobody', 'Group nogroup'] : []),
    ...(opts.auth ? [`BasicAuth ${opts.auth.username} ${opts.auth.password}`] : []),
  ].join('\n');
  const confPath = path.join(dir, 'tinyproxy.conf');
  fs.writeFileSync(confPath, `${conf}\n`, { mode: 0o644 });

  let stderr = '';
  const child: ChildProcess = spawn(tinyproxyPath, ['-d', '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const log = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '');
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`tinyproxy exited with ${child.exitCode}: ${stderr}${log()}`);
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      });
    },
    { timeoutMs: 10_000, message: 'tinyproxy did not start listening' },
  );
  return {
    address: `http://127.0.0.1:${port}`,
    port,
    log,
    requests: () => [...log().matchAll(/Request \(file descriptor \d+\): (\S+ \S+)/g)].map((m) => m[1]!),
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
