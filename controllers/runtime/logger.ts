// Structured logs: JSON lines by default (as Flux's controllers log), or a console form for people.
export type LogLevel = 'trace' | 'debug' | 'info' | 'error';
export type LogEncoding = 'json' | 'console';

const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, error: 3 };

export interface LoggerOptions {
  level: LogLevel;
  encoding: LogEncoding;
  write?: (line: string) => void;
}

export class Logger {
  private readonly opts: Required<LoggerOptions>;
  private readonly fields: Record<string, unknown>;

  constructor(opts: LoggerOptions, fields: Record<string, unknown> = {}) {
    this.opts = { ...opts, write: opts.write ?? ((line) => void process.stderr.write(`${line}\n`)) };
    this.fields = fields;
  }

  with(fields: Record<string, unknown>): Logger {
    return new Logger(this.opts, { ...this.fields, ...fields });
  }

  trace(msg: string, fields?: Record<string, unknown>): void {
    this.log('trace', msg, fields);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields?: Record<string, unknown>): void {
    this.log('info', msg, fields);
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.log('error', msg, fields);
  }

  private log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < RANK[this.opts.level]) return;
    const all = { ...this.fields, ...fields };
    for (const [k, v] of Object.entries(all)) if (v instanceof Error) all[k] = v.message;
    const ts = new Date().toISOString();
    if (this.opts.encoding === 'json') {
      this.opts.write(JSON.stringify({ level, ts, msg, ...all }));
      return;
    }
    const kv = Object.entries(all)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`)
      .join(' ');
    this.opts.write(`${ts}\t${level.toUpperCase()}\t${msg}${kv ? `\t${kv}` : ''}`);
  }
}

export function parseLogLevel(value: string): LogLevel {
  if (value in RANK) return value as LogLevel;
  throw new Error(`invalid --log-level "${value}": use one of ${Object.keys(RANK).join(', ')}`);
}

export function parseLogEncoding(value: string): LogEncoding {
  if (value === 'json' || value === 'console') return value;
  throw new Error(`invalid --log-encoding "${value}": use json or console`);
}
