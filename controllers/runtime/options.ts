// Command-line flags in Go's style (--flag=value, --flag value, bare booleans), declared where they
// are used: the manager declares its own, each controller its own. A declaration gives the flag's
// kind, default and help; parsing gives a typed options object (kebab-case names in camelCase).
import { parseDuration } from './duration.ts';

export type FlagKind = 'string' | 'bool' | 'int' | 'bytes' | 'duration';

export interface Flag<T> {
  kind: FlagKind;
  help: string;
  /** The default as it would be typed on the command line; undefined: no default. */
  default: string | undefined;
  /** Turns the text into the value; throws with what was expected. */
  parse(text: string): T;
}

// biome-ignore lint/suspicious/noExplicitAny: any flag, whatever its value type
export type FlagSet = Record<string, Flag<any>>;

type CamelCase<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;

/** The typed options of a flag set: --artifact-retention-records becomes artifactRetentionRecords. */
export type Options<F extends FlagSet> = {
  [K in keyof F & string as CamelCase<K>]: F[K] extends Flag<infer T> ? T : never;
};

function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function string(opts: { help: string; default: string }): Flag<string>;
function string<L extends string>(opts: { help: string; default: L; oneOf: readonly L[] }): Flag<L>;
function string(opts: { help: string }): Flag<string | undefined>;
function string(opts: { help: string; default?: string; oneOf?: readonly string[] }): Flag<string | undefined> {
  const { oneOf } = opts;
  return {
    kind: 'string',
    help: oneOf ? `${opts.help} One of ${oneOf.join(', ')}.` : opts.help,
    default: opts.default,
    parse(text) {
      if (oneOf && !oneOf.includes(text)) throw new Error(`expected one of ${oneOf.join(', ')}`);
      return text;
    },
  };
}

function bool(opts: { help: string; default?: boolean }): Flag<boolean> {
  return {
    kind: 'bool',
    help: opts.help,
    default: String(opts.default ?? false),
    parse(text) {
      if (text !== 'true' && text !== 'false') throw new Error('expected true or false');
      return text === 'true';
    },
  };
}

function int(opts: { help: string; default: number; min?: number }): Flag<number> {
  const min = opts.min ?? Number.MIN_SAFE_INTEGER;
  return {
    kind: 'int',
    help: opts.help,
    default: String(opts.default),
    parse(text) {
      const n = Number(text);
      if (text.trim() === '' || !Number.isSafeInteger(n) || n < min)
        throw new Error(min === 1 ? 'expected a positive integer' : `expected an integer of at least ${min}`);
      return n;
    },
  };
}

const BINARY_UNITS: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A positive number of bytes: 1073741824 or 1Gi (Ki, Mi, Gi, Ti as Kubernetes quantities). */
function bytes(opts: { help: string; default: number }): Flag<number> {
  return {
    kind: 'bytes',
    help: opts.help,
    default: String(opts.default),
    parse(text) {
      const m = /^([0-9]+)(Ki|Mi|Gi|Ti)?$/.exec(text.trim());
      const n = m ? Number(m[1]) * BINARY_UNITS[m[2] ?? '']! : Number.NaN;
      if (!Number.isSafeInteger(n) || n < 1) throw new Error('expected a number of bytes such as 1073741824 or 1Gi');
      return n;
    },
  };
}

/** A Go duration; the value is in milliseconds. */
function duration(opts: { help: string; default: string }): Flag<number> {
  return {
    kind: 'duration',
    help: opts.help,
    default: opts.default,
    parse(text) {
      try {
        return parseDuration(text);
      } catch {
        throw new Error('expected a Go duration such as 30s, 5m or 1h30m');
      }
    },
  };
}

export const flag = { string, bool, int, bytes, duration };

/** Flags that belong together: the manager's, or one controller's. */
export interface FlagGroup<F extends FlagSet = FlagSet> {
  /** Where the flags belong, as --help heads them and errors name them, e.g. "kustomize controller". */
  title: string;
  /** Errors name the group (false for the manager's own flags). */
  named: boolean;
  flags: F;
}

/** A command line that cannot be read at all: an unknown flag, a missing value, a stray argument. */
export class UsageError extends Error {}

/** Raw flag values by name, as given on the command line (the last of repeated flags wins, as in Go). */
export type RawArgs = ReadonlyMap<string, string>;

export function readArgs(argv: readonly string[], groups: readonly FlagGroup[]): RawArgs {
  const known = new Map<string, Flag<unknown>>();
  for (const g of groups) {
    for (const [name, f] of Object.entries(g.flags)) {
      // Two controllers may share one flag (the same declaration, e.g. the Helm helper's path).
      if (known.has(name) && known.get(name) !== f) throw new Error(`flag --${name} is declared twice`);
      known.set(name, f);
    }
  }
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([^-=][^=]*)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      if (arg === '--' && i === argv.length - 1) break;
      throw new UsageError(`unexpected argument "${arg}"`);
    }
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    const f = known.get(name);
    if (!f) throw new UsageError(`unknown flag --${name}`);
    if (inline !== undefined) values.set(name, inline);
    else if (f.kind === 'bool') values.set(name, 'true');
    else if (i + 1 < argv.length) values.set(name, argv[++i]!);
    else throw new UsageError(`flag --${name} needs a value`);
  }
  return values;
}

/** The typed options of one group; a bad value throws naming the flag (and the group). */
export function parseOptions<F extends FlagSet>(group: FlagGroup<F>, args: RawArgs): Options<F> {
  const options: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(group.flags)) {
    const text = args.get(name) ?? f.default;
    if (text === undefined) continue;
    try {
      options[camelCase(name)] = f.parse(text);
    } catch (err) {
      const where = group.named ? ` (${group.title})` : '';
      throw new Error(`invalid --${name}="${text}"${where}: ${(err as Error).message}`);
    }
  }
  return options as Options<F>;
}

/** --help: every group under its title, each flag with its kind, default and help. */
export function usage(command: string, groups: readonly FlagGroup[]): string {
  const sections = groups.map((g) => {
    const lines = Object.entries(g.flags).map(([name, f]) => {
      const kind = f.kind === 'bool' ? '' : ` ${f.kind}`;
      const shown = f.kind === 'bool' ? f.default === 'true' : f.default !== undefined && f.default !== '';
      const def = shown
        ? ` (default ${f.kind === 'string' || f.kind === 'duration' ? `"${f.default}"` : f.default})`
        : '';
      return `  --${name}${kind}${def}\n      ${f.help}`;
    });
    return `${g.title}:\n${lines.join('\n')}\n`;
  });
  return `Usage: ${command} [flags]\n\n${sections.join('\n')}`;
}
