// Client of tide-helm (controllers/helm/helper), the long-running Go process that runs the Helm SDK
// for us: it parses repository indexes, inspects charts and packages them, and installs, upgrades,
// tests, rolls back and uninstalls releases; it decides nothing.
// One JSON object a line each way: {"id", "op", "params"} in, {"id", "result" | "error"} out. The
// child starts with the first request and again after it dies (slower each time it keeps dying).
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../runtime/logger.ts';

export interface HelmHelperOptions {
  /** The tide-helm binary. */
  path: string;
  logger?: Logger | undefined;
  /** Environment of the child (e.g. GOMEMLIMIT); nothing else of ours is passed on. */
  env?: Record<string, string> | undefined;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  /** Rejects the request (only it) after this long; the helper still finishes the work. */
  timeoutMs?: number | undefined;
}

/**
 * A failed request. `code` is the helper's (InvalidIndex, InvalidChart, MissingDependency,
 * InvalidValues, PackageFailed, UnknownOp, InvalidParams, WriteFailed, Internal) or the client's:
 * HelperExited, HelperUnavailable, Timeout, Closed.
 *
 * Release ops add: ReleaseNotFound (no record of the release; upgrade, test, rollback, uninstall,
 * unlock, manifest), InstallFailed, UpgradeFailed, TestFailed (names the failed hooks),
 * RollbackFailed, UninstallFailed (Helm's message each), RenderFailed (templates, a `required`
 * value, the values schema, dependency conditions; Helm records no release), PostRenderFailed
 * (kustomize's message; no release recorded), InvalidChart (cannot be loaded, a library chart, a
 * dependency missing from charts/), NotLocked (unlock of a release that is not pending) and
 * StorageFailed (reading or writing the release records failed outside of a Helm action).
 * InvalidParams also covers a kubeconfig that cannot be read.
 */
export class HelmHelperError extends Error {
  override name = 'HelmHelperError';
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** index.parse: the charts and versions written to `out`, one JSON line per chart. */
export interface IndexSummary {
  charts: number;
  versions: number;
}

/** chart.inspect */
export interface ChartInfo {
  name: string;
  version: string;
  apiVersion: string;
  type: string;
  dependencies: { name: string; version: string; repository: string; alias: string; condition: string }[];
  /** Chart.lock (requirements.lock), or null without one. */
  lock: { name: string; version: string; repository: string }[] | null;
}

export interface PackageParams {
  /** A chart directory or packaged chart. */
  path: string;
  /** Directory the archive is written to, as <name>-<version>.tgz. */
  out: string;
  /** Replaces the chart's version. */
  version?: string | undefined;
  /** Absolute paths, deep-merged in order into the chart's new values.yaml. */
  valuesFiles?: string[] | undefined;
  /**
   * Chart (dir or .tgz) of each Chart.yaml dependency by alias or name. When given, every
   * dependency not in it must be file:// (loaded relative to the chart) or vendored in charts/.
   */
  dependencies?: Record<string, string> | undefined;
  /** Directory file:// dependencies must resolve into. */
  root?: string | undefined;
}

export interface PackagedChart {
  path: string;
  name: string;
  version: string;
}

/**
 * Where a release op runs: the cluster and identity of a kubeconfig file, and the namespace of the
 * release records (Secrets of Helm's storage driver, which the helm CLI reads too).
 */
export interface HelmTarget {
  /** Path of a kubeconfig file (mode 0600); nothing else (no in-cluster config) is used. */
  kubeconfig: string;
  /** Its context; default the current one. */
  context?: string | undefined;
  /** User to impersonate, e.g. system:serviceaccount:<ns>:<name>. */
  impersonate?: string | undefined;
  storageNamespace: string;
  /**
   * Default true: reuse the clients (REST config, discovery, REST mapper) cached for this kubeconfig
   * file (path, mtime, size), context, impersonation and storage namespace; false: fresh ones.
   */
  persistent?: boolean | undefined;
}

export type ReleaseStatus =
  | 'deployed'
  | 'failed'
  | 'pending-install'
  | 'pending-upgrade'
  | 'pending-rollback'
  | 'uninstalling'
  | 'uninstalled'
  | 'superseded'
  | 'unknown';

/** The last run of a test hook; no times and phase '' when it never ran. */
export interface TestHookRun {
  /** RFC 3339, UTC, seconds. */
  lastStarted?: string;
  lastCompleted?: string;
  /** Running, Succeeded, Failed, Unknown or ''. */
  phase: string;
}

/** One release record of Helm's storage. */
export interface ReleaseInfo {
  name: string;
  /** The release's (target) namespace. */
  namespace: string;
  version: number;
  status: ReleaseStatus;
  chartName: string;
  chartVersion: string;
  appVersion: string;
  /**
   * "sha256:<hex>" of the values the release was given, as JSON with sorted keys (no spaces, no
   * trailing newline; none is `{}`): JSON.stringify with sorted keys gives the same text.
   */
  configDigest: string;
  /** "sha256:<hex>" of the whole stored record: changes with any change of it (status, test runs). */
  digest: string;
  /** RFC 3339, UTC, seconds; absent when unset. */
  firstDeployed?: string;
  lastDeployed?: string;
  deleted?: string;
  description: string;
  /** Labels of the record other than Helm's own. */
  labels?: Record<string, string>;
  /** The hooks with the test event, by name; absent when there are none. */
  testHooks?: Record<string, TestHookRun>;
  hasTests: boolean;
}

/** A kustomize patch (strategic merge, or a JSON 6902 list of operations with a target). */
export interface PostRenderPatch {
  patch: string;
  target?:
    | {
        group?: string | undefined;
        version?: string | undefined;
        kind?: string | undefined;
        name?: string | undefined;
        namespace?: string | undefined;
        labelSelector?: string | undefined;
        annotationSelector?: string | undefined;
      }
    | undefined;
}

/**
 * Post-rendering of the manifests Helm rendered: each kustomize entry is one kustomize pass (Flux's
 * spec.postRenderers[].kustomize), in order; then the common labels and annotations are set on the
 * metadata of every object (not on selectors or templates), replacing what the objects had.
 */
export interface PostRender {
  kustomize?:
    | {
        patches?: PostRenderPatch[] | undefined;
        images?:
          | {
              name: string;
              newName?: string | undefined;
              newTag?: string | undefined;
              digest?: string | undefined;
            }[]
          | undefined;
      }[]
    | undefined;
  commonLabels?: Record<string, string> | undefined;
  commonAnnotations?: Record<string, string> | undefined;
}

/**
 * What install and upgrade share. `timeoutMs` (default 5 min) is Helm's, for each wait and hook; the
 * helper cancels the whole op 30 s after it (the ops without a Helm context, their waits).
 */
interface DeployParams {
  target: HelmTarget;
  name: string;
  /** A packaged chart (.tgz) or chart directory. */
  chart: string;
  /** The release's namespace (for upgrade, it must be the release's). */
  namespace: string;
  values: Record<string, unknown>;
  timeoutMs: number;
  /** false: only hooks are waited for; true: all objects, by kstatus (Helm 4's --wait). */
  wait: boolean;
  waitForJobs: boolean;
  disableHooks: boolean;
  disableOpenAPIValidation: boolean;
  disableSchemaValidation: boolean;
  /**
   * Create (default): missing CRDs of crds/ are created (for upgrade, by the helper: Helm's upgrade
   * ignores crds/); CreateReplace: existing ones are replaced as well; Skip: crds/ is ignored.
   */
  crds?: 'Skip' | 'Create' | 'CreateReplace' | (string & {}) | undefined;
  /** Force-conflicts with server-side apply, replace without. */
  force?: boolean | undefined;
  /** Take over fields other managers own (server-side apply only; no replacement without it). */
  forceConflicts?: boolean | undefined;
  description?: string | undefined;
  postRender?: PostRender | undefined;
  /**
   * What Helm post-renders: combined (default, Helm 4: hooks and templates together), separate
   * (hooks apart from templates) or nohooks (templates only, as Helm 3).
   */
  postRenderStrategy?: 'combined' | 'separate' | 'nohooks' | (string & {}) | undefined;
  /** Replaces the chart's version (an OCI chart's version carries the artifact digest). */
  chartVersion?: string | undefined;
  /** Adopt existing objects that lack Helm's ownership metadata. */
  takeOwnership?: boolean | undefined;
  /** Wait by Helm 3's polling instead of kstatus. */
  legacyWait?: boolean | undefined;
}

export interface InstallParams extends DeployParams {
  /** Install over an uninstalled (kept) or failed release of the same name. */
  replace: boolean;
  createNamespace: boolean;
  /** Default true (Helm 4). */
  serverSideApply?: boolean | undefined;
}

export interface UpgradeParams extends DeployParams {
  /** Records kept, 0 for all. */
  maxHistory: number;
  /** Merge the values given over the release's (Helm's --reuse-values); otherwise they replace them. */
  preserveValues: boolean;
  cleanupOnFail: boolean;
  /** Default auto: as the last release was applied (booleans are taken too). */
  serverSideApply?: 'true' | 'false' | 'auto' | boolean | undefined;
}

export interface TestParams {
  target: HelmTarget;
  name: string;
  timeoutMs: number;
  /** Hook names to run only (name) or to skip (!name). */
  filters?: { name?: string[] | undefined; '!name'?: string[] | undefined } | undefined;
}

export interface RollbackParams {
  target: HelmTarget;
  name: string;
  /** 0 or absent: the version before the newest. */
  version?: number | undefined;
  timeoutMs: number;
  wait: boolean;
  waitForJobs: boolean;
  disableHooks: boolean;
  force: boolean;
  forceConflicts?: boolean | undefined;
  legacyWait?: boolean | undefined;
  cleanupOnFail: boolean;
  maxHistory: number;
}

export interface UninstallParams {
  target: HelmTarget;
  name: string;
  timeoutMs: number;
  wait: boolean;
  disableHooks: boolean;
  keepHistory: boolean;
  /** background (default), foreground or orphan. */
  deletionPropagation?: 'background' | 'foreground' | 'orphan' | (string & {}) | undefined;
}

export interface UninstallResult {
  /** The uninstalled record, when kept. */
  info?: ReleaseInfo;
  /** Helm's note on what was kept (resource policy, objects not owned by the release). */
  message: string;
}

export interface ReleaseManifest {
  /** The rendered manifest (without hooks). */
  manifest: string;
  namespace: string;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/** A line longer than this on stdout means the helper is broken: it is killed. */
const MAX_LINE = 16 * 1024 * 1024;
const MAX_STDERR_LINE = 64 * 1024;
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 10_000;

export class HelmHelper {
  readonly #path: string;
  readonly #logger: Logger | undefined;
  readonly #env: Record<string, string>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #child: Child | undefined;
  #starting: Promise<Child> | undefined;
  #exited: Promise<void> | undefined;
  #lastStderr = '';
  /** Exits in a row without an answer in between; sets the delay before the next start. */
  #crashes = 0;
  #lastExitAt = 0;
  #closed = false;

  constructor(opts: HelmHelperOptions) {
    this.#path = opts.path;
    this.#logger = opts.logger?.with({ component: 'helm-helper' });
    this.#env = opts.env ?? {};
  }

  /** The running helper's process id, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Sends one request; resolves with its result, rejects with a HelmHelperError (or the abort reason). */
  async request<T>(op: string, params: object = {}, opts: RequestOptions = {}): Promise<T> {
    const { signal, timeoutMs } = opts;
    signal?.throwIfAborted();
    if (this.#closed) throw new HelmHelperError('Closed', 'helm helper is closed');
    const child = await this.#ensureChild();
    signal?.throwIfAborted();
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(abortReason(signal!, op)));
      const settle = (fn: () => void) => {
        if (!this.#pending.delete(id)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      this.#pending.set(id, {
        resolve: (value) => settle(() => resolve(value as T)),
        reject: (err) => settle(() => reject(err)),
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            settle(() => reject(new HelmHelperError('Timeout', `helm helper ${op} timed out after ${timeoutMs}ms`))),
          timeoutMs,
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.#child !== child) {
        settle(() => reject(new HelmHelperError('HelperExited', 'helm helper exited before the request was sent')));
        return;
      }
      child.stdin.write(`${JSON.stringify({ id, op, params })}\n`);
    });
  }

  parseIndex(params: { path: string; out: string }, opts?: RequestOptions): Promise<IndexSummary> {
    return this.request('index.parse', params, opts);
  }

  inspectChart(params: { path: string }, opts?: RequestOptions): Promise<ChartInfo> {
    return this.request('chart.inspect', params, opts);
  }

  packageChart(params: PackageParams, opts?: RequestOptions): Promise<PackagedChart> {
    return this.request('chart.package', params, opts);
  }

  /** The release's records, newest first, at most `max` (default 10; negative: all); none when not found. */
  history(
    params: { target: HelmTarget; name: string; max?: number | undefined },
    opts?: RequestOptions,
  ): Promise<{ releases: ReleaseInfo[] }> {
    return this.request('release.history', params, opts);
  }

  /**
   * Installs a release. A failure after Helm recorded the release leaves it failed in storage;
   * remediation is the caller's.
   */
  install(params: InstallParams, opts?: RequestOptions): Promise<ReleaseInfo> {
    return this.request('release.install', params, opts);
  }

  /**
   * Upgrades a release (also one whose newest record failed, or one the helm CLI installed). Objects
   * are applied as field manager helm-controller: fields the helm CLI applied (manager "helm") with
   * other values conflict under server-side apply unless `force`.
   */
  upgrade(params: UpgradeParams, opts?: RequestOptions): Promise<ReleaseInfo> {
    return this.request('release.upgrade', params, opts);
  }

  /** Runs the release's test hooks; the record with their runs is saved, failed or not. */
  test(params: TestParams, opts?: RequestOptions): Promise<ReleaseInfo> {
    return this.request('release.test', params, opts);
  }

  /** Rolls back; resolves with the newest release afterwards. */
  rollback(params: RollbackParams, opts?: RequestOptions): Promise<ReleaseInfo> {
    return this.request('release.rollback', params, opts);
  }

  uninstall(params: UninstallParams, opts?: RequestOptions): Promise<UninstallResult> {
    return this.request('release.uninstall', params, opts);
  }

  /** Marks the newest release failed if it is pending-*: NotLocked otherwise. */
  unlock(params: { target: HelmTarget; name: string }, opts?: RequestOptions): Promise<ReleaseInfo> {
    return this.request('release.unlock', params, opts);
  }

  /** The rendered manifest of a version (default the newest). */
  manifest(
    params: { target: HelmTarget; name: string; version?: number | undefined },
    opts?: RequestOptions,
  ): Promise<ReleaseManifest> {
    return this.request('release.manifest', params, opts);
  }

  /** Ends the helper's stdin and waits for it to answer what it has and exit; later requests fail. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#starting?.catch(() => undefined);
    const exited = this.#exited;
    this.#child?.stdin.end();
    await exited;
  }

  #ensureChild(): Promise<Child> {
    if (this.#child) return Promise.resolve(this.#child);
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(): Promise<Child> {
    if (this.#crashes > 0) {
      const backoff = Math.min(BACKOFF_BASE_MS * 2 ** (this.#crashes - 1), BACKOFF_MAX_MS);
      const wait = this.#lastExitAt + backoff - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    if (this.#closed) throw new HelmHelperError('Closed', 'helm helper is closed');
    const child = spawn(this.#path, [], { env: this.#env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#lastStderr = '';
    let failure: Error | undefined;
    // A child that cannot start emits 'error' and then 'close', as one that dies does.
    child.on('error', (err) => {
      failure = err;
    });
    this.#exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.#onExit(child, failure, code, signal);
        resolve();
      });
    });
    // Writes to a dead child fail with EPIPE; its 'close' rejects what was pending.
    child.stdin.on('error', (err) => this.#logger?.debug('writing to helm helper failed', { error: err }));
    splitLines(
      child.stdout,
      MAX_LINE,
      (line) => this.#onLine(line),
      () => {
        this.#logger?.error('helm helper wrote an overlong line; killing it', { pid: child.pid });
        child.kill('SIGKILL');
      },
    );
    splitLines(child.stderr, MAX_STDERR_LINE, (line) => {
      if (line.trim() === '') return;
      this.#lastStderr = line;
      this.#logger?.debug('helm helper stderr', { pid: child.pid, line });
    });
    if (child.pid === undefined) {
      await this.#exited;
      throw new HelmHelperError('HelperUnavailable', `cannot start helm helper: ${failure?.message ?? this.#path}`);
    }
    this.#child = child;
    this.#logger?.debug('started helm helper', { path: this.#path, pid: child.pid });
    return child;
  }

  #onLine(line: string): void {
    let msg: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
    try {
      msg = JSON.parse(line);
    } catch {
      this.#logger?.error('helm helper wrote a line that is not JSON', { line: line.slice(0, 200) });
      return;
    }
    const pending = typeof msg.id === 'number' ? this.#pending.get(msg.id) : undefined;
    if (!pending) return; // aborted or timed out: the answer is not awaited any more
    this.#crashes = 0;
    if (msg.error) {
      const { code, message } = msg.error;
      pending.reject(new HelmHelperError(String(code ?? 'Internal'), String(message ?? 'helm helper failed')));
    } else {
      pending.resolve(msg.result);
    }
  }

  #onExit(child: Child, failure: Error | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child === child) this.#child = undefined;
    this.#lastExitAt = Date.now();
    if (!this.#closed) this.#crashes++;
    this.#logger?.debug('helm helper exited', { pid: child.pid, code, signal, pending: this.#pending.size });
    if (this.#pending.size === 0) return;
    const how = failure ? `failed: ${failure.message}` : `exited with ${signal ? `signal ${signal}` : `code ${code}`}`;
    const err = new HelmHelperError(
      failure ? 'HelperUnavailable' : 'HelperExited',
      `helm helper ${how}${this.#lastStderr ? `: ${this.#lastStderr}` : ''}`,
    );
    for (const pending of [...this.#pending.values()]) pending.reject(err);
  }
}

/** Calls onLine for each line of `stream` (without the newline); onOverflow when a line grows past `max`. */
function splitLines(stream: Readable, max: number, onLine: (line: string) => void, onOverflow?: () => void): void {
  let partial: Buffer[] = [];
  let size = 0;
  let overflowed = false;
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (!overflowed) onLine(partial.length ? Buffer.concat([...partial, piece]).toString('utf8') : piece.toString());
      partial = [];
      size = 0;
      overflowed = false;
      start = nl + 1;
    }
    if (start < chunk.length && !overflowed) {
      partial.push(chunk.subarray(start));
      size += chunk.length - start;
      if (size > max) {
        // Drop the rest of this line: stderr truncates it; stdout asks for the child to be killed.
        if (onOverflow) onOverflow();
        else onLine(Buffer.concat(partial).toString('utf8').slice(0, max));
        partial = [];
        size = 0;
        overflowed = true;
      }
    }
  });
}

function abortReason(signal: AbortSignal, op: string): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`helm helper ${op} was aborted`);
}
