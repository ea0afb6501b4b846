// The I/O of a GitRepository reconcile, behind one interface so that the reconciler's steps, their
// order and the status they leave can be tested without servers: Secrets and the proxy, the
// transport, ref listing, fetching (with submodules), signature checks and the artifact tarball.
import type { KubeConfig } from '@kubernetes/client-node';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git from 'isomorphic-git';
import type { GitRepositorySpec } from '../../api/source/gitrepository.ts';
import { writeArtifact } from '../git/archive.ts';
import { openTransport } from '../git/transport.ts';
import type { GitCredentials, Transport, TransportOptions } from '../git/types.ts';
import type { Storage } from '../storage.ts';
import { CommitNotFoundError, fetchCommit, listRefs } from './checkout.ts';
import { pgpKeysFrom, providerCredentials, readSecret } from './credentials.ts';
import { mergeIncludes, type IncludeSource } from './include.ts';
import { proxyFor } from './proxy.ts';
import type { AdvertisedRef, Resolved } from './refs.ts';
import { checkSparseDirs, sparseDirs } from './sparse.ts';
import { fetchSubmodules } from './submodules.ts';

export { CommitNotFoundError };

/** How to reach the server: credentials and transport options (timeout, size limit, proxy). */
export interface Access {
  creds: GitCredentials;
  options: TransportOptions;
}

/** A fetched commit in a scratch object database, removed by release(). */
export interface Checkout {
  gitdir: string;
  commit: string;
  /** spec.recurseSubmodules: path in the artifact → commit. */
  submodules?: Map<string, string>;
  release(): Promise<void>;
}

export interface GitWork {
  /** spec.proxySecretRef and spec.secretRef (with spec.provider) read and turned into access. */
  access(namespace: string, spec: GitRepositorySpec, timeoutMs: number): Promise<Access>;
  /** Opens a transport to the repository and lists its refs. */
  connect(url: string, access: Access): Promise<{ transport: Transport; refs: AdvertisedRef[] }>;
  /** Fetches the resolved commit, its submodules when asked, and checks the sparse directories. */
  fetch(transport: Transport, resolved: Resolved, spec: GitRepositorySpec, access: Access): Promise<Checkout>;
  /** Checks signatures against the keys of spec.verify.secretRef; returns what was verified. */
  verify(namespace: string, spec: GitRepositorySpec, checkout: Checkout, resolved: Resolved): Promise<string>;
  /** Writes the artifact tarball at `path` in storage, with the included artifacts merged in. */
  archive(
    path: string,
    checkout: Checkout,
    spec: GitRepositorySpec,
    includes: IncludeSource[],
  ): Promise<{ digest: string; size: number }>;
  /** The first line of the commit's message, for the NewArtifact event. */
  subject(checkout: Checkout): Promise<string>;
}

export function gitWork(kc: KubeConfig, storage: Storage, maxSize: number): GitWork {
  return {
    access: (namespace, spec, timeoutMs) => gitAccess(kc, namespace, spec, timeoutMs, maxSize),

    async connect(url, access) {
      const transport = openTransport(url, access.creds, access.options);
      try {
        return { transport, refs: await listRefs(transport) };
      } catch (err) {
        transport.close();
        throw err;
      }
    },

    async fetch(transport, resolved, spec, access) {
      const gitdir = await mkdtemp(join(tmpdir(), 'tide-git-'));
      const release = () => rm(gitdir, { recursive: true, force: true });
      try {
        const commit = await fetchCommit(gitdir, transport, resolved);
        const submodules = spec.recurseSubmodules
          ? await fetchSubmodules({
              gitdir,
              commit,
              url: spec.url,
              open: (url) => openTransport(url, access.creds, access.options),
            })
          : undefined;
        const dirs = sparseDirs(spec.sparseCheckout);
        if (dirs) await checkSparseDirs(gitdir, commit, dirs);
        return { gitdir, commit, ...(submodules ? { submodules } : {}), release };
      } catch (err) {
        await release();
        throw err;
      }
    },

    async verify(namespace, spec, { gitdir, commit }, resolved) {
      const mode = verificationMode(spec);
      const armoredKeys = pgpKeysFrom(await readSecret(kc, namespace, spec.verify!.secretRef.name));
      // openpgp costs ~20 MB of memory: loaded only by controllers that verify signatures.
      const { verifyCommit, verifyTag } = await import('../git/verify.ts');
      const verified: string[] = [];
      if (mode === 'Tag' || mode === 'TagAndHEAD') {
        if (!resolved.tagObject) {
          throw new Error(`tag '${resolved.revisionName}' is a lightweight tag; only annotated tags carry a signature`);
        }
        const sig = await verifyTag({ fs, gitdir, tagOid: resolved.tagObject, armoredKeys });
        verified.push(`tag '${resolved.revisionName}' with key ${sig.keyId}`);
      }
      if (mode === 'HEAD' || mode === 'TagAndHEAD') {
        const sig = await verifyCommit({ fs, gitdir, commit, armoredKeys });
        verified.push(`commit '${commit}' with key ${sig.keyId}`);
      }
      return `verified signature of ${verified.join(' and ')}`;
    },

    archive(path, { gitdir, commit, submodules }, spec, includes) {
      const pack = (out: string) =>
        writeArtifact({
          fs,
          gitdir,
          commit,
          out,
          ...(spec.ignore !== undefined ? { specIgnore: spec.ignore } : {}),
          maxBytes: maxSize,
          sparse: sparseDirs(spec.sparseCheckout),
          submodules,
        });
      return storage.writeAtomic(path, async (tmp) => {
        if (includes.length === 0) return pack(tmp);
        const own = `${tmp}.own`;
        try {
          await pack(own);
          return await mergeIncludes(own, includes, tmp);
        } finally {
          await rm(own, { force: true });
        }
      });
    },

    async subject({ gitdir, commit }) {
      const { commit: c } = await git.readCommit({ fs, gitdir, oid: commit });
      return c.message.split('\n')[0] ?? '';
    },
  };
}

/**
 * How to reach a GitRepository's server: spec.proxySecretRef and spec.secretRef (with
 * spec.provider) read and turned into credentials and transport options. Also what an
 * ImageUpdateAutomation pushes with.
 */
export async function gitAccess(
  kc: KubeConfig,
  namespace: string,
  spec: Pick<GitRepositorySpec, 'url' | 'secretRef' | 'proxySecretRef' | 'provider'>,
  timeoutMs: number,
  maxBytes?: number,
): Promise<Access> {
  const proxy = await proxyFor(kc, namespace, spec.proxySecretRef);
  const options = {
    timeoutMs,
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    signal: AbortSignal.timeout(timeoutMs),
    ...(proxy ? { proxy } : {}),
  };
  if (!spec.secretRef) return { creds: {}, options };
  const secret = await readSecret(kc, namespace, spec.secretRef.name);
  const creds = await providerCredentials(secret, spec.url, spec.provider, {
    timeoutMs,
    ...(proxy ? { proxy } : {}),
  });
  return { creds, options };
}

/** spec.verify.mode, with Flux's deprecated lower-case `head`. */
export function verificationMode(spec: GitRepositorySpec): 'HEAD' | 'Tag' | 'TagAndHEAD' {
  const mode = spec.verify?.mode;
  return mode === 'Tag' || mode === 'TagAndHEAD' ? mode : 'HEAD';
}
