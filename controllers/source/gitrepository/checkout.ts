// The git side of a GitRepository reconcile, free of Kubernetes: list the server's refs, fetch
// one commit into a bare object database (shallow when the ref allows it, never a work tree).
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import type { Transport } from '../git/types.ts';
import type { AdvertisedRef, Resolved } from './refs.ts';

export class CommitNotFoundError extends Error {}

export async function listRefs(transport: Transport): Promise<AdvertisedRef[]> {
  return git.listServerRefs({ http: transport.http, url: transport.url, protocolVersion: 1, peelTags: true });
}

/** Fetches what `resolved` names into an empty `gitdir`; returns the commit to build. */
export async function fetchCommit(gitdir: string, transport: Transport, resolved: Resolved): Promise<string> {
  await git.init({ fs, gitdir, bare: true, defaultBranch: 'main' });
  // isomorphic-git maps fetched refs through the remote's refspec, so it needs a remote even
  // though nothing here reads remote-tracking refs.
  await git.addRemote({ fs, gitdir, remote: 'origin', url: transport.url });
  await git.fetch({
    fs,
    http: transport.http,
    gitdir,
    remote: 'origin',
    ...(resolved.fetchRef ? { ref: resolved.fetchRef, singleBranch: true } : { singleBranch: false }),
    ...(resolved.shallow ? { depth: 1 } : {}),
    tags: false,
  });
  const commit = resolved.commit!;
  try {
    await git.readCommit({ fs, gitdir, oid: commit });
  } catch {
    throw new CommitNotFoundError(`commit '${commit}' not found`);
  }
  return commit;
}
