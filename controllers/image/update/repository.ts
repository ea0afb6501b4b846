// The git side of an ImageUpdateAutomation run, free of Kubernetes: list the server's refs, fetch
// the branch to work on, check it out into a scratch work tree, run the Setters over it, commit
// what changed (signed when asked) and push the commit to the push branch and refspec. A push the
// server refuses because the branch moved is redone on the new tip (fetch, setters, commit, push),
// never forced: every ref update names the commit it was based on.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { discoverReceivePack, PushRejectedError, sendReceivePack, ZERO_OID } from '../../source/git/push.ts';
import { openTransport } from '../../source/git/transport.ts';
import { type GitCredentials, type Transport, TransportError, type TransportOptions } from '../../source/git/types.ts';
import { listRefs } from '../../source/gitrepository/checkout.ts';
import {
  type AdvertisedRef,
  RefNotFoundError,
  type RefSpec,
  type Resolved,
  resolveRef,
  revisionOf,
} from '../../source/gitrepository/refs.ts';
import {
  type FileTree,
  isManifestName,
  UpdatePathError,
  type UpdateResult,
  updatePathIn,
  updateTree,
} from './files.ts';
import type { PolicyImage } from './setters.ts';
import { type CommitSigner, signCallback } from './sign.ts';

/** The automation's git settings are unusable as given (retrying cannot help). */
export class GitSpecError extends Error {
  override name = 'GitSpecError';
}

/** The push could not be made (the server unreachable, credentials refused, …); `auth` for refused credentials. */
export class PushError extends Error {
  override name = 'PushError';
  readonly auth: boolean;
  constructor(cause: TransportError) {
    super(cause.message);
    this.auth = cause.kind === 'auth';
  }
}

export interface AutomationGitRun {
  url: string;
  creds: GitCredentials;
  options: TransportOptions;
  /** spec.git.checkout.ref, else the GitRepository's spec.ref. */
  checkoutRef: RefSpec | undefined;
  push: { branch?: string; refspec?: string; options?: Record<string, string> };
  /** spec.update.path */
  updatePath: string | undefined;
  /** "<namespace>:<name>" → latest image. */
  policies: ReadonlyMap<string, PolicyImage>;
  author: { name: string; email: string };
  /** Called with what the setters did before anything is committed; throws to commit nothing. */
  check?(result: UpdateResult): void;
  /** The commit message for these changes (throws on a template that cannot render). */
  message(result: UpdateResult): string;
  signer?: CommitSigner;
  /** Called with the checkout revision before anything is fetched; true stops the run there. */
  upToDate?(sourceRevision: string): boolean;
  /** Attempts when the server refuses the push because a ref moved; default 3. */
  maxAttempts?: number;
  /** Test seam: called before each push attempt. */
  beforePush?(attempt: number): Promise<void>;
}

export type AutomationGitResult =
  | { kind: 'up-to-date'; sourceRevision: string }
  | { kind: 'unchanged'; sourceRevision: string; update: UpdateResult }
  | {
      kind: 'pushed';
      /** The checkout revision, or the pushed commit's when it was pushed to the checkout branch. */
      sourceRevision: string;
      commit: string;
      /** Full ref names updated. */
      refs: string[];
      update: UpdateResult;
      attempts: number;
      message: string;
    };

/**
 * Where automations keep the repositories they fetch, one bare repository per URL, so that a run
 * fetches only what is new; and the lock that lets one run at a time work on a repository (runs
 * for the same branch would otherwise race each other's pushes). Without a directory, every run
 * fetches into a scratch repository.
 */
export class RepositoryCache {
  readonly #dir: string | undefined;
  readonly #tails = new Map<string, Promise<void>>();

  constructor(dir?: string) {
    this.#dir = dir;
  }

  /** Runs `fn` with the repository of `url` (created when missing), one caller per URL at a time. */
  async with<T>(url: string, fn: (gitdir: string) => Promise<T>): Promise<T> {
    const previous = this.#tails.get(url);
    let release!: () => void;
    const tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#tails.set(url, tail);
    await previous;
    const scratch = this.#dir ? undefined : await mkdtemp(join(tmpdir(), 'tide-image-update-'));
    const gitdir = scratch ?? join(this.#dir!, createHash('sha256').update(url).digest('hex').slice(0, 32));
    try {
      await git.init({ fs, gitdir, bare: true, defaultBranch: 'main' });
      return await fn(gitdir);
    } catch (err) {
      // A run cut short may leave a half-written pack behind: the next one starts afresh.
      if (!scratch && !isExpected(err)) await rm(gitdir, { recursive: true, force: true });
      throw err;
    } finally {
      if (scratch) await rm(scratch, { recursive: true, force: true });
      if (this.#tails.get(url) === tail) this.#tails.delete(url);
      release();
    }
  }
}

/** Failures that say nothing about the state of the cached repository. */
function isExpected(err: unknown): boolean {
  return (
    err instanceof PushRejectedError ||
    err instanceof PushError ||
    err instanceof GitSpecError ||
    err instanceof UpdatePathError ||
    err instanceof TransportError ||
    err instanceof RefNotFoundError ||
    (err instanceof Error && ['TemplateError', 'ReconcileError', 'SigningKeyError'].includes(err.name))
  );
}

const noCache = new RepositoryCache();

export async function runAutomationGit(
  run: AutomationGitRun,
  cache: RepositoryCache = noCache,
): Promise<AutomationGitResult> {
  if (run.push.refspec) parseRefspec(run.push.refspec);
  const path = updatePathIn(run.updatePath);
  const transport = openTransport(run.url, run.creds, run.options);
  try {
    // Whether there is anything to do is known from the refs alone, without waiting for the lock.
    const first = checkoutOf(run, await listRefs(transport));
    if (run.upToDate?.(first.revision)) return { kind: 'up-to-date', sourceRevision: first.revision };
    return await cache.with(run.url, async (gitdir) => {
      await git.addRemote({ fs, gitdir, remote: 'origin', url: transport.url, force: true });
      const maxAttempts = run.maxAttempts ?? 3;
      for (let attempt = 1; ; attempt++) {
        const result = await attemptOnce(run, transport, gitdir, path, attempt);
        if (result.kind !== 'retry') return result;
        if (attempt >= maxAttempts) {
          throw new PushRejectedError(`push refused ${attempt} times because the branch kept moving: ${result.reason}`);
        }
      }
    });
  } finally {
    transport.close();
  }
}

interface CheckoutInfo {
  checkout: Resolved;
  checkoutBranch: string | undefined;
  pushBranch: string | undefined;
  revision: string;
}

function checkoutOf(run: AutomationGitRun, advertised: AdvertisedRef[]): CheckoutInfo {
  const checkout = resolveRef(run.checkoutRef, advertised);
  const checkoutBranch = checkout.fetchRef?.startsWith('refs/heads/')
    ? checkout.fetchRef.slice('refs/heads/'.length)
    : undefined;
  const pushBranch = run.push.branch || checkoutBranch;
  if (!pushBranch && !run.push.refspec) {
    throw new GitSpecError(
      'nothing to push to: the checkout ref is not a branch, ' +
        'so spec.git.push.branch or spec.git.push.refspec must be set',
    );
  }
  return { checkout, checkoutBranch, pushBranch, revision: revisionOf(checkout.revisionName, checkout.commit!) };
}

async function attemptOnce(
  run: AutomationGitRun,
  transport: Transport,
  gitdir: string,
  updatePath: string,
  attempt: number,
): Promise<AutomationGitResult | { kind: 'retry'; reason: string }> {
  const advertised = await listRefs(transport);
  const { checkout, checkoutBranch, pushBranch, revision: checkoutRevision } = checkoutOf(run, advertised);

  // Work on the push branch when it exists apart from the checkout branch (as Flux switches to
  // it), so that earlier automation commits there are built upon rather than replaced.
  const pushRef = pushBranch ? `refs/heads/${pushBranch}` : undefined;
  const existingPush = pushRef && pushBranch !== checkoutBranch ? advertised.find((r) => r.ref === pushRef) : undefined;
  const baseRef = existingPush ? existingPush.ref : checkout.fetchRef;
  const base = existingPush ? existingPush.oid : checkout.commit!;
  if (!(await hasCommit(gitdir, base))) {
    await git.fetch({
      fs,
      http: transport.http,
      gitdir,
      remote: 'origin',
      ...(baseRef ? { ref: baseRef, singleBranch: true } : { singleBranch: false }),
      tags: false,
    });
  }

  // The Setters read and write the commit's tree directly: nothing is checked out.
  const baseTree = (await git.readCommit({ fs, gitdir, oid: base })).commit.tree;
  const files = gitFileTree(gitdir, baseTree, updatePath);
  const update = await updateTree(files, run.policies);
  run.check?.(update);
  if (update.updated.length === 0) return { kind: 'unchanged', sourceRevision: checkoutRevision, update };

  const message = run.message(update);
  const tree = await writeChanges(gitdir, baseTree, files.written);
  const signer = run.signer;
  const who = { name: run.author.name, email: run.author.email, timestamp: Math.floor(Date.now() / 1000) };
  const commit = await git.commit({
    fs,
    gitdir,
    tree,
    parent: [base],
    noUpdateBranch: true,
    message,
    author: who,
    committer: who,
    // isomorphic-git signs only when given a signingKey; the signer holds the real one.
    ...(signer ? { onSign: signCallback(signer), signingKey: 'held by the signer' } : {}),
  });

  const receive = await discoverReceivePack(transport).catch(pushError);
  const updates: { ref: string; old: string; new: string }[] = [];
  if (pushRef) {
    // The ref must still be where this commit was based (or absent, for a branch created here).
    const basedOn = existingPush || pushBranch === checkoutBranch ? base : ZERO_OID;
    updates.push({ ref: pushRef, old: basedOn, new: commit });
  }
  if (run.push.refspec) {
    const { src, dst } = parseRefspec(run.push.refspec);
    const value = await refspecSource(src, { pushBranch, checkoutBranch, commit, checkout: checkout.commit!, gitdir });
    const old = receive.refs.get(dst) ?? ZERO_OID;
    if (old !== ZERO_OID && old !== value && !(await isAncestor(gitdir, old, value))) {
      throw new PushRejectedError(
        `refspec destination '${dst}' holds commit ${old}, which the new commit does not contain; not forcing`,
      );
    }
    if (!updates.some((u) => u.ref === dst)) updates.push({ ref: dst, old, new: value });
  }
  const pack = await packFor(gitdir, commit, base);
  await run.beforePush?.(attempt);
  try {
    await sendReceivePack(transport, {
      updates,
      pack,
      capabilities: receive.capabilities,
      ...(run.push.options ? { options: run.push.options } : {}),
    });
  } catch (caught) {
    const err = caught instanceof TransportError ? new PushError(caught) : caught;
    // Refused because a ref moved since it was read: redo the work on the new tip. Refused for
    // any other reason (a hook, a protected branch): retrying would not help.
    if (err instanceof PushRejectedError) {
      const now = (await discoverReceivePack(transport)).refs;
      if (updates.some((u) => (now.get(u.ref) ?? ZERO_OID) !== u.old)) return { kind: 'retry', reason: err.message };
    }
    throw err;
  }
  const sourceRevision =
    pushBranch && pushBranch === checkoutBranch ? revisionOf(checkout.revisionName, commit) : checkoutRevision;
  return {
    kind: 'pushed',
    sourceRevision,
    commit,
    refs: updates.map((u) => u.ref),
    update,
    attempts: attempt,
    message,
  };
}

function pushError(err: unknown): never {
  throw err instanceof TransportError ? new PushError(err) : err;
}

/** `src:dst` of spec.git.push.refspec, with short destinations taken as branches. */
export function parseRefspec(refspec: string): { src: string; dst: string } {
  if (refspec.startsWith('+'))
    throw new GitSpecError(`spec.git.push.refspec '${refspec}': forced refspecs are refused`);
  const parts = refspec.split(':');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new GitSpecError(`spec.git.push.refspec '${refspec}' is not of the form <src>:<dst>`);
  }
  const dst = parts[1].startsWith('refs/') ? parts[1] : `refs/heads/${parts[1]}`;
  if (/[\s~^?*[\\]|\.\.|@\{/.test(dst))
    throw new GitSpecError(`spec.git.push.refspec '${refspec}': invalid destination`);
  return { src: parts[0], dst };
}

/** What the refspec's source names in the work repository: the new commit, or the checkout. */
async function refspecSource(
  src: string,
  at: { pushBranch?: string; checkoutBranch?: string; commit: string; checkout: string; gitdir: string },
): Promise<string> {
  const short = src.replace(/^refs\/heads\//, '');
  if (src === 'HEAD' || short === at.pushBranch) return at.commit;
  if (short === at.checkoutBranch) return at.checkout;
  throw new GitSpecError(
    `spec.git.push.refspec source '${src}' is neither HEAD, the push branch nor the checkout branch`,
  );
}

async function isAncestor(gitdir: string, ancestor: string, oid: string): Promise<boolean> {
  try {
    return await git.isDescendent({ fs, gitdir, oid, ancestor, depth: -1 });
  } catch {
    return false;
  }
}

async function hasCommit(gitdir: string, oid: string): Promise<boolean> {
  try {
    await git.readCommit({ fs, gitdir, oid });
    return true;
  } catch {
    return false;
  }
}

/** The manifest files of a git tree under `path`, read from and written to memory (`written`). */
function gitFileTree(gitdir: string, root: string, path: string): FileTree & { written: Map<string, string> } {
  const blobs = new Map<string, string>();
  const written = new Map<string, string>();
  const walk = async (oid: string, prefix: string, out: string[]): Promise<void> => {
    for (const e of (await git.readTree({ fs, gitdir, oid })).tree) {
      const p = `${prefix}${e.path}`;
      if (e.type === 'tree') await walk(e.oid, `${p}/`, out);
      // Regular files only: links (120000) are not followed, submodules (160000) not entered.
      else if (e.type === 'blob' && e.mode !== '120000' && isManifestName(e.path)) {
        blobs.set(p, e.oid);
        out.push(p);
      }
    }
  };
  return {
    written,
    async files() {
      let oid = root;
      for (const part of path ? path.split('/') : []) {
        const entry = (await git.readTree({ fs, gitdir, oid })).tree.find((e) => e.path === part);
        if (entry?.type !== 'tree') return [];
        oid = entry.oid;
      }
      const out: string[] = [];
      await walk(oid, path ? `${path}/` : '', out);
      return out;
    },
    async read(p) {
      const { blob } = await git.readBlob({ fs, gitdir, oid: blobs.get(p)! });
      return Buffer.from(blob).toString('utf8');
    },
    async write(p, text) {
      written.set(p, text);
    },
  };
}

/** The tree `root` with the files of `changes` (path → content) replaced; only the trees on their paths rewritten. */
async function writeChanges(gitdir: string, root: string, changes: ReadonlyMap<string, string>): Promise<string> {
  const rewrite = async (oid: string, prefix: string): Promise<string> => {
    const entries = (await git.readTree({ fs, gitdir, oid })).tree;
    const next = [];
    for (const e of entries) {
      const p = `${prefix}${e.path}`;
      const content = changes.get(p);
      if (e.type === 'blob' && content !== undefined) {
        next.push({ ...e, oid: await git.writeBlob({ fs, gitdir, blob: Buffer.from(content, 'utf8') }) });
      } else if (e.type === 'tree' && [...changes.keys()].some((k) => k.startsWith(`${p}/`))) {
        next.push({ ...e, oid: await rewrite(e.oid, `${p}/`) });
      } else {
        next.push(e);
      }
    }
    return git.writeTree({ fs, gitdir, tree: next });
  };
  return rewrite(root, '');
}

/** A pack with the commit and the trees and blobs it has that `parent`'s tree has not. */
async function packFor(gitdir: string, commit: string, parent: string): Promise<Uint8Array> {
  const oids = new Set<string>([commit]);
  const tree = (await git.readCommit({ fs, gitdir, oid: commit })).commit.tree;
  const parentTree = (await git.readCommit({ fs, gitdir, oid: parent })).commit.tree;
  const walk = async (oid: string, old: string | undefined): Promise<void> => {
    if (oid === old || oids.has(oid)) return;
    oids.add(oid);
    const entries = (await git.readTree({ fs, gitdir, oid })).tree;
    const before = old
      ? new Map((await git.readTree({ fs, gitdir, oid: old })).tree.map((e) => [e.path, e]))
      : undefined;
    for (const e of entries) {
      const prev = before?.get(e.path);
      if (prev?.oid === e.oid) continue;
      if (e.type === 'tree') await walk(e.oid, prev?.type === 'tree' ? prev.oid : undefined);
      else if (e.type === 'blob') oids.add(e.oid);
    }
  };
  await walk(tree, parentTree);
  const { packfile } = await git.packObjects({ fs, gitdir, oids: [...oids], write: false });
  return packfile!;
}
