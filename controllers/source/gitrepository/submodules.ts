// spec.recurseSubmodules: every submodule that .gitmodules names and the tree records (a gitlink)
// is fetched at its recorded commit, recursively, into the same object database as the
// repository, so the archive writer packs its tree in place of the gitlink. URLs relative to the
// superproject resolve against its URL, as git does; the transports are opened with the
// repository's own credentials and options, as Flux (go-git) does.
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { TransportError, type Transport } from '../git/types.ts';
import { listRefs } from './checkout.ts';

/** go-git's default recursion depth for submodules. */
export const maxSubmoduleDepth = 10;

export class SubmoduleError extends Error {}

export interface GitmodulesEntry {
  name: string;
  path: string;
  url: string;
}

/** The submodules of a .gitmodules file (git-config syntax); entries without path or url are skipped. */
export function parseGitmodules(text: string): GitmodulesEntry[] {
  const entries = new Map<string, Partial<GitmodulesEntry>>();
  let current: Partial<GitmodulesEntry> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*submodule\s+"((?:[^"\\]|\\.)*)"\s*\]$/.exec(line);
    if (section) {
      const name = section[1]!.replace(/\\(.)/g, '$1');
      current = entries.get(name) ?? { name };
      entries.set(name, current);
      continue;
    }
    if (line.startsWith('[')) {
      current = undefined;
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9-]*)\s*=\s*(.*)$/.exec(line);
    if (!current || !kv) continue;
    const key = kv[1]!.toLowerCase();
    let val = kv[2]!.replace(/\s+[#;].*$/, '').trim();
    if (val.startsWith('"') && val.endsWith('"') && val.length >= 2) val = val.slice(1, -1).replace(/\\(.)/g, '$1');
    if (key === 'path') current.path = val.replace(/\/+$/, '');
    else if (key === 'url') current.url = val;
  }
  return [...entries.values()].filter((e): e is GitmodulesEntry => Boolean(e.path && e.url));
}

/** A submodule URL; `./x` and `../x` are relative to the superproject's URL taken as a directory. */
export function resolveSubmoduleUrl(url: string, parentUrl: string): string {
  if (url.startsWith('./') || url.startsWith('../')) {
    const base = new URL(`${parentUrl.replace(/\/+$/, '')}/`);
    return new URL(url, base).toString().replace(/\/+$/, '');
  }
  if (!/^(https?|ssh):\/\//.test(url)) {
    throw new SubmoduleError(`unsupported submodule URL '${redact(url)}': use http, https, ssh or a relative URL`);
  }
  return url;
}

/** A URL as it may appear in messages. */
function redact(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^@/]*@/i, '$1');
}

export interface FetchSubmodulesOptions {
  gitdir: string;
  /** The superproject's commit, already in `gitdir`. */
  commit: string;
  /** The superproject's URL (spec.url). */
  url: string;
  /** Opens a transport to a submodule URL with the repository's credentials and options. */
  open: (url: string) => Transport;
}

/**
 * Fetches every submodule of `commit`, recursively; returns artifact path → submodule commit for
 * the archive writer. Throws a SubmoduleError naming the submodule when one cannot be fetched.
 */
export async function fetchSubmodules(opts: FetchSubmodulesOptions): Promise<Map<string, string>> {
  const fetched = new Map<string, string>();
  let remotes = 0;
  const visit = async (commit: string, url: string, prefix: string, depth: number): Promise<void> => {
    const modules = await gitmodulesOf(opts.gitdir, commit);
    if (modules.length === 0) return;
    const links = await gitlinks(opts.gitdir, commit);
    for (const m of modules) {
      const oid = links.get(m.path);
      // As go-git: a .gitmodules entry without a gitlink in the tree has nothing to check out.
      if (oid === undefined) continue;
      const path = prefix === '' ? m.path : `${prefix}/${m.path}`;
      if (depth >= maxSubmoduleDepth) {
        throw new SubmoduleError(`submodule '${path}' is nested deeper than ${maxSubmoduleDepth} levels`);
      }
      const subUrl = resolveSubmoduleUrl(m.url, url);
      await fetchOne(opts, `submodule-${remotes++}`, subUrl, oid, path);
      fetched.set(path, oid);
      await visit(oid, subUrl, path, depth + 1);
    }
  };
  await visit(opts.commit, opts.url, '', 0);
  return fetched;
}

async function gitmodulesOf(gitdir: string, commit: string): Promise<GitmodulesEntry[]> {
  try {
    const { blob } = await git.readBlob({ fs, gitdir, oid: commit, filepath: '.gitmodules' });
    return parseGitmodules(Buffer.from(blob).toString('utf8'));
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFoundError') return [];
    throw err;
  }
}

/** Gitlinks of the commit's tree (not inside other submodules): path → recorded commit. */
async function gitlinks(gitdir: string, commit: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  const cache = {};
  const walk = async (oid: string, dir: string): Promise<void> => {
    const { tree } = await git.readTree({ fs, gitdir, oid, cache });
    for (const e of tree) {
      const path = dir === '' ? e.path : `${dir}/${e.path}`;
      if (e.type === 'tree') await walk(e.oid, path);
      else if (e.type === 'commit') links.set(path, e.oid);
    }
  };
  await walk(commit, '');
  return links;
}

async function fetchOne(
  opts: FetchSubmodulesOptions,
  remote: string,
  url: string,
  commit: string,
  path: string,
): Promise<void> {
  const what = `submodule '${path}' (${redact(url)})`;
  let transport: Transport;
  try {
    transport = opts.open(url);
  } catch (err) {
    if (err instanceof TransportError) throw new TransportError(err.kind, `cannot fetch ${what}: ${err.message}`);
    throw new SubmoduleError(`cannot fetch ${what}: ${(err as Error).message}`);
  }
  try {
    const refs = await listRefs(transport);
    // A branch or tag at the recorded commit allows a shallow fetch of just that commit.
    const tip = refs.find(
      (r) => (r.ref.startsWith('refs/heads/') || r.ref.startsWith('refs/tags/')) && (r.peeled ?? r.oid) === commit,
    );
    await git.addRemote({ fs, gitdir: opts.gitdir, remote, url: transport.url, force: true });
    await git.fetch({
      fs,
      http: transport.http,
      gitdir: opts.gitdir,
      remote,
      ...(tip ? { ref: tip.ref, singleBranch: true, depth: 1 } : { singleBranch: false }),
      tags: !tip,
    });
  } catch (err) {
    // The transport's kind (auth, unreachable, …) still picks the reason.
    if (err instanceof TransportError) throw new TransportError(err.kind, `cannot fetch ${what}: ${err.message}`);
    throw new SubmoduleError(`cannot fetch ${what}: ${(err as Error).message}`);
  } finally {
    transport.close();
  }
  try {
    await git.readCommit({ fs, gitdir: opts.gitdir, oid: commit });
  } catch {
    throw new SubmoduleError(`${what}: commit '${commit}' not found in any branch or tag of the submodule`);
  }
}
