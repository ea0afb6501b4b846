// A git-over-SSH server for tests: Debian's OpenSSH sshd on 127.0.0.1 with its own host keys,
// public-key login only, as a system user whose login shell is git-shell, so a client key can run
// git-upload-pack/git-receive-pack and nothing else. Needs root (to create that user once).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { eventually } from '../eventually.ts';
import { freePort } from '../net.ts';

export const sshdPath = '/usr/sbin/sshd';
export const sshdInstallHint = 'apt-get update && apt-get install -y openssh-server';
export const gitUser = 'tide-git';
const gitShell = '/usr/bin/git-shell';

export interface GitSshServerOptions {
  /** Directory holding the bare repositories (`<name>.git`); made readable for the git user. */
  root: string;
  /**
   * Also lets the git user push to the repositories already in `root` (see makeWritable); a
   * repository created after the server started needs its own makeWritable call. Default false:
   * the repositories stay read-only for the git user.
   */
  writable?: boolean;
}

export interface SshKeyPair {
  /** OpenSSH private key (PEM armour, `-----BEGIN OPENSSH PRIVATE KEY-----`). */
  privateKey: string;
  /** One authorized_keys line: `<type> <base64>`. */
  publicKey: string;
}

export interface HostKey {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, … */
  type: string;
  /** This key's known_hosts line for the server. */
  knownHostsLine: string;
}

export interface GitSshServer {
  port: number;
  /** `ssh://tide-git@127.0.0.1:PORT/<root>/<name>.git`. */
  url(repoName: string): string;
  /** known_hosts content listing every host key of the server as `[127.0.0.1]:PORT`. */
  knownHosts: string;
  hostKeys: HostKey[];
  /** An authorized, unencrypted ed25519 key. */
  clientKey: SshKeyPair;
  /** An authorized ed25519 key encrypted with `passphrase`. */
  encryptedClientKey: SshKeyPair & { passphrase: string };
  /** sshd's log (`-e`), for a look after a failure. */
  logPath: string;
  close(): Promise<void>;
}

export async function startGitSshServer(opts: GitSshServerOptions): Promise<GitSshServer> {
  if (!fs.existsSync(sshdPath)) {
    throw new Error(`OpenSSH server not found at ${sshdPath}; install it with: ${sshdInstallHint}`);
  }
  const root = path.resolve(opts.root);
  await ensureGitUser();
  makeReadableForOthers(root);
  if (opts.writable) {
    for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
      const repo = path.join(root, entry.name);
      if (entry.isDirectory() && fs.existsSync(path.join(repo, 'HEAD'))) await makeWritable(repo);
    }
  }
  // sshd refuses to start without its privilege separation directory (normally made by systemd).
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tide-sshd-'));
  // sshd reads authorized_keys as the git user.
  fs.chmodSync(dir, 0o755);
  const file = (name: string) => path.join(dir, name);
  const passphrase = 'correct horse battery staple';
  await Promise.all([
    sshKeygen(['-t', 'ed25519', '-N', '', '-f', file('host_ed25519')]),
    sshKeygen(['-t', 'ecdsa', '-b', '256', '-N', '', '-f', file('host_ecdsa')]),
    sshKeygen(['-t', 'ed25519', '-N', '', '-f', file('client')]),
    sshKeygen(['-t', 'ed25519', '-N', passphrase, '-f', file('client_encrypted')]),
  ]);
  const read = (name: string) => fs.readFileSync(file(name), 'utf8');
  const publicKey = (name: string) => read(`${name}.pub`).trim().split(/\s+/).slice(0, 2).join(' ');
  const clientKey = { privateKey: read('client'), publicKey: publicKey('client') };
  const encryptedClientKey = {
    privateKey: read('client_encrypted'),
    publicKey: publicKey('client_encrypted'),
    passphrase,
  };
  // `restrict`: no pty, no forwarding; git-shell as login shell limits the commands.
  fs.writeFileSync(
    file('authorized_keys'),
    `restrict ${clientKey.publicKey}\nrestrict ${encryptedClientKey.publicKey}\n`,
    { mode: 0o644 },
  );

  const port = await freePort();
  fs.writeFileSync(file('sshd_config'), sshdConfig(dir, port));
  const logPath = file('sshd.log');
  const sshd = startSshd(file('sshd_config'), logPath);
  try {
    await eventually(
      async () => {
        if (sshd.exitCode !== null || sshd.signalCode !== null) {
          throw new Error(
            `sshd exited (${sshd.exitCode ?? sshd.signalCode}): ${fs.readFileSync(logPath, 'utf8').trim()}`,
          );
        }
        await readBanner(port);
      },
      { timeoutMs: 15_000, intervalMs: 50, message: `sshd on 127.0.0.1:${port}` },
    );
  } catch (err) {
    sshd.kill('SIGKILL');
    throw err;
  }

  const hostKeys = ['host_ed25519', 'host_ecdsa'].map((name) => {
    const key = publicKey(name);
    return { type: key.split(' ')[0]!, knownHostsLine: `[127.0.0.1]:${port} ${key}` };
  });
  return {
    port,
    url: (name) => `ssh://${gitUser}@127.0.0.1:${port}${encodeURI(root)}/${encodeURIComponent(name)}.git`,
    knownHosts: hostKeys.map((k) => `${k.knownHostsLine}\n`).join(''),
    hostKeys,
    clientKey,
    encryptedClientKey,
    logPath,
    close: async () => {
      if (sshd.exitCode === null && sshd.signalCode === null) {
        const exited = new Promise((resolve) => sshd.once('exit', resolve));
        sshd.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_ed25519')}`,
    `HostKey ${path.join(dir, 'host_ecdsa')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `AllowUsers ${gitUser}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    'UsePAM no',
    'StrictModes no',
    'PrintMotd no',
    'LogLevel VERBOSE',
    // The repositories belong to root; git refuses to serve another user's repository unless told
    // to (safe.directory is honoured from command-line scope, which GIT_CONFIG_* is).
    'SetEnv GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0=*',
    '',
  ].join('\n');
}

function startSshd(config: string, logPath: string): ChildProcess {
  const log = fs.openSync(logPath, 'a');
  try {
    // sshd re-executes itself, so it must be started by absolute path.
    const child = spawn(sshdPath, ['-D', '-e', '-f', config], { stdio: ['ignore', log, log] });
    // A test run that dies must not leave sshd listening.
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    child.once('exit', () => process.off('exit', kill));
    return child;
  } finally {
    fs.closeSync(log);
  }
}

/** Resolves once the server at `port` sends its SSH identification line. */
function readBanner(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(2000, () => socket.destroy(new Error('no SSH banner within 2s')));
    socket.once('error', reject);
    socket.once('data', (chunk) => {
      socket.destroy();
      if (chunk.toString('latin1').startsWith('SSH-')) resolve();
      else reject(new Error('not an SSH server'));
    });
  });
}

function sshKeygen(args: string[]): Promise<void> {
  return run('ssh-keygen', ['-q', '-C', '', ...args]).then(() => undefined);
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Creates the git-shell user once per machine; later calls find it and only fix its shell. */
async function ensureGitUser(): Promise<void> {
  const entry = await run('getent', ['passwd', gitUser]).catch(() => '');
  if (!entry) {
    if (process.getuid?.() !== 0) {
      throw new Error(`the SSH test server needs a system user ${gitUser}; run the tests as root once to create it`);
    }
    try {
      await run('useradd', [
        '--system',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        gitShell,
        gitUser,
      ]);
    } catch (err) {
      // Another test process may have created it meanwhile.
      if (!(await run('getent', ['passwd', gitUser]).catch(() => ''))) throw err;
    }
  } else if (entry.trim().split(':')[6] !== gitShell) {
    await run('usermod', ['--shell', gitShell, gitUser]);
  }
  // useradd leaves the password locked ('!'), and sshd without PAM refuses locked accounts even
  // for key logins; '*' means "no password" without locking.
  const shadow = await run('getent', ['shadow', gitUser]).catch(() => '');
  if (shadow.split(':')[1]?.startsWith('!')) await run('usermod', ['--password', '*', gitUser]);
}

/**
 * Lets the git user (git-receive-pack runs as it) push to the bare repository at `repoPath`,
 * which root owns: every file and directory in it becomes writable for others, and
 * core.sharedRepository=0666 keeps the files and directories that later pushes (as the git user)
 * or fixture commits (as root) create writable for the other. The parents only need to be
 * searchable, as for reading.
 */
export async function makeWritable(repoPath: string): Promise<void> {
  const repo = path.resolve(repoPath);
  if (!fs.existsSync(path.join(repo, 'HEAD'))) throw new Error(`${repo} is not a bare git repository`);
  makeReadableForOthers(repo);
  await run('git', ['config', '--file', path.join(repo, 'config'), 'core.sharedRepository', '0666']);
  await run('chmod', ['-R', 'a+rwX', repo]);
}

/**
 * git-upload-pack runs as the git user: it must read `dir` and pass through every parent. Parents
 * inside the temp directory (mkdtemp makes them 0700) get search permission for others; any
 * other parent is left alone and reported.
 */
function makeReadableForOthers(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const mode = fs.statSync(dir).mode;
  if ((mode & 0o005) !== 0o005) fs.chmodSync(dir, mode | 0o005);
  const tmp = fs.realpathSync(os.tmpdir());
  for (let parent = path.dirname(dir); parent !== path.dirname(parent); parent = path.dirname(parent)) {
    const parentMode = fs.statSync(parent).mode;
    if ((parentMode & 0o001) !== 0) continue;
    if (!parent.startsWith(`${tmp}${path.sep}`)) {
      throw new Error(
        `${parent} is not searchable by other users, so ${gitUser} cannot reach ${dir}; ` +
          `put the repositories under ${tmp}`,
      );
    }
    fs.chmodSync(parent, parentMode | 0o001);
  }
}
