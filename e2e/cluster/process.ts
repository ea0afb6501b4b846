// Child processes that log to <stateDir>/logs/<name>.log and record their pid in
// <stateDir>/pids/<name>.pid, so that another process (`make down`) can stop them later.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Proc {
  readonly name: string;
  readonly logPath: string;
  readonly child: ChildProcess;
  exit: Exit | undefined;

  constructor(name: string, logPath: string, child: ChildProcess) {
    this.name = name;
    this.logPath = logPath;
    this.child = child;
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
    });
  }

  /** An error naming the process, how it ended and the tail of its log. */
  exitError(during: string): Error {
    const how = this.exit?.signal ? `signal ${this.exit.signal}` : `code ${this.exit?.code}`;
    const tail = lastLines(this.logPath, 8)
      .map((l) => `  | ${l}`)
      .join('\n');
    return new Error(`${this.name} exited with ${how} ${during}; see ${this.logPath}\n${tail}`);
  }
}

export interface SpawnOptions {
  stateDir: string;
  /** Let the process outlive this one (make up); otherwise it is killed when this process exits. */
  detached: boolean;
  cwd?: string;
}

const ownedChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

export function spawnLogged(name: string, command: string, args: string[], opts: SpawnOptions): Proc {
  const logPath = path.join(opts.stateDir, 'logs', `${name}.log`);
  const pidPath = pidFile(opts.stateDir, name);
  fs.mkdirSync(path.dirname(logPath), { recursive: true });
  fs.mkdirSync(path.dirname(pidPath), { recursive: true });
  // Append, so a restarted component (stopApiServer/startApiServer) keeps its earlier log.
  const out = fs.openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: opts.cwd, stdio: ['ignore', out, out], detached: opts.detached });
  } finally {
    fs.closeSync(out);
  }
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command}); see ${logPath}`);
  fs.writeFileSync(pidPath, `${child.pid}\n`);
  child.unref();
  if (!opts.detached) {
    ownedChildren.add(child);
    child.on('exit', () => ownedChildren.delete(child));
    // A crashed or interrupted test run must not leave an apiserver behind.
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const c of ownedChildren) c.kill('SIGKILL');
      });
    }
  }
  return new Proc(name, logPath, child);
}

export function pidFile(stateDir: string, name: string): string {
  return path.join(stateDir, 'pids', `${name}.pid`);
}

/**
 * The live pid recorded for `name`, or undefined. A pid counts only while its command line
 * mentions the state dir: every component is given absolute paths inside it, and this keeps a
 * recycled pid from being mistaken for ours.
 */
export function recordedPid(stateDir: string, name: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(fs.readFileSync(pidFile(stateDir, name), 'utf8'), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  const cmdline = readProc(pid, 'cmdline')?.replaceAll('\0', ' ') ?? '';
  return cmdline.includes(path.resolve(stateDir)) ? pid : undefined;
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie: an exited child stays in the table until its parent reaps it. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readProc(pid, 'stat');
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** SIGTERM, then SIGKILL once `graceMs` has passed. Resolves when the process is gone. */
export async function terminate(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      break;
    }
    await sleep(50);
  }
  while (isAlive(pid)) await sleep(20);
}

/**
 * Stops the recorded processes group by group: the members of a group in parallel, the groups in
 * order. Returns the names that were running.
 */
export async function stopRecorded(stateDir: string, groups: string[][]): Promise<string[]> {
  const stopped: string[] = [];
  for (const group of groups) {
    await Promise.all(
      group.map(async (name) => {
        const pid = recordedPid(stateDir, name);
        if (pid !== undefined) {
          await terminate(pid);
          stopped.push(name);
        }
        fs.rmSync(pidFile(stateDir, name), { force: true });
      }),
    );
  }
  return stopped;
}

export function lastLines(file: string, n: number): string[] {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n);
  } catch {
    return ['(no log written)'];
  }
}

/** Free loopback ports, held open together so the same port is never handed out twice. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<net.Server>((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      });
    }),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** True when nothing listens on `port` on any local address. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, () => s.close(() => resolve(true)));
  });
}
