// Memory defaults of tide-controller (README, "Memory"). Node sizes V8's heap for a machine, not
// for a controller whose live heap is ~50-100 MB: a young generation of up to 2 x 64 MB, and an old
// generation let grow to up to 4x its live size before a full GC. Both are paid in RSS. The process
// starts again once (process.execve: same PID, same stdio) with a small young generation and, in a
// container with a memory limit, an old-generation limit of 75% of it, as Go's GOMEMLIMIT would be
// set, and at most 2 glibc malloc arenas; the old generation's growth between full GCs is capped
// once running. Heap flags of the user's own (command line or NODE_OPTIONS) turn all of this off,
// and so does TIDE_NODE_DEFAULTS=off.
import { totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';

/** Set in the restarted process (so that it restarts once); "off" turns the defaults off. */
export const DEFAULTS_ENV = 'TIDE_NODE_DEFAULTS';
/** V8's young generation is two semi-spaces of this many MB at most (Node's default: 64 on 64-bit). */
export const SEMI_SPACE_MB = 8;
/** Share of a container's memory limit given to V8's old generation. */
export const OLD_SPACE_SHARE = 0.75;
/** The old generation grows by at most this much (percent of the live heap) before a full GC. */
export const HEAP_GROWING_PERCENT = 30;
/** glibc's malloc arenas: one per thread by default, each keeping what was freed in it. */
export const MALLOC_ARENAS = '2';

const HEAP_FLAGS = [
  '--max-old-space-size',
  '--max-old-space-size-percentage',
  '--max-semi-space-size',
  '--min-semi-space-size',
  '--max-heap-size',
];

export interface MemoryInputs {
  /** Node flags of the command line (process.execArgv). */
  execArgv: readonly string[];
  /** NODE_OPTIONS. */
  nodeOptions?: string;
  /** The container's memory limit in bytes (process.constrainedMemory()); 0 or none: no limit. */
  memoryLimit?: number;
  /** The machine's memory; a "limit" at least this large is no limit. */
  totalMemory: number;
}

/** Whether the user sized V8's heap already: a heap flag, with dashes or underscores, with or without a value. */
export function userSizedHeap(execArgv: readonly string[], nodeOptions = ''): boolean {
  const args = [...execArgv, ...nodeOptions.split(/\s+/)].filter(Boolean);
  return args.some((arg) => {
    const name = arg.split('=')[0]!.replaceAll('_', '-');
    return HEAP_FLAGS.includes(name);
  });
}

/** The Node flags tide-controller adds by default; none when the user sized the heap. */
export function memoryFlags({ execArgv, nodeOptions, memoryLimit, totalMemory }: MemoryInputs): string[] {
  if (userSizedHeap(execArgv, nodeOptions)) return [];
  const flags = [`--max-semi-space-size=${SEMI_SPACE_MB}`];
  if (memoryLimit && memoryLimit > 0 && memoryLimit < totalMemory) {
    const mb = Math.floor((memoryLimit * OLD_SPACE_SHARE) / (1024 * 1024));
    flags.push(`--max-old-space-size=${mb}`);
  }
  return flags;
}

/** The environment of the restarted process: glibc's arenas limited unless the user chose. */
export function memoryEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? MALLOC_ARENAS, [DEFAULTS_ENV]: 'applied' };
}

/**
 * Called first thing by main.ts: restarts node with memoryFlags() unless this is the restarted
 * process, the defaults are off, or there is nothing to add. Never returns when it restarts.
 */
export function applyMemoryDefaults(): void {
  const state = process.env[DEFAULTS_ENV];
  if (state === 'off') return;
  if (state !== 'applied') {
    if (userSizedHeap(process.execArgv, process.env.NODE_OPTIONS)) return;
    const flags = memoryFlags({
      execArgv: process.execArgv,
      nodeOptions: process.env.NODE_OPTIONS,
      memoryLimit: process.constrainedMemory(),
      totalMemory: totalmem(),
    });
    const args = [...flags, ...process.execArgv, ...process.argv.slice(1)];
    // execve keeps stdio only: a process started with an IPC channel (fork()) stays as it is.
    if (typeof process.execve === 'function' && !process.channel)
      process.execve(process.execPath, [process.execPath, ...args], memoryEnv(process.env));
  }
  // Read by V8 at every full GC, so it takes effect now (heap sizes are fixed once the heap exists).
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
