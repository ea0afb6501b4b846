import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { GitRepositoryStatus } from '../../api/source/gitrepository.ts';
import { findCondition } from '../../runtime/conditions.ts';
import type { Informer } from '../../runtime/informer.ts';
import { TransportError, type Transport } from '../git/types.ts';
import type { Storage } from '../storage.ts';
import { SecretError } from './credentials.ts';
import { GitRepositoryReconciler, type GitRepository } from './reconciler.ts';
import type { GitWork } from './work.ts';
import { testContext } from '../../runtime/test-context.ts';

const A = '1111111111111111111111111111111111111111';
const B = '2222222222222222222222222222222222222222';
const DIR = 'gitrepository/ns/repo';

function repo(status: GitRepositoryStatus = {}, spec: Partial<GitRepository['spec']> = {}): GitRepository {
  return {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'GitRepository',
    metadata: { name: 'repo', namespace: 'ns', generation: 1, finalizers: ['finalizers.fluxcd.io'] },
    spec: { url: 'https://git.example/repo.git', interval: '1m', ref: { branch: 'main' }, ...spec },
    status,
  };
}

/** A repository already reconciled at commit A: artifact in status and in storage. */
const stored = (): GitRepositoryStatus => ({
  observedGeneration: 1,
  artifact: {
    path: `${DIR}/${A}.tar.gz`,
    url: `http://storage/${DIR}/${A}.tar.gz`,
    revision: `main@sha1:${A}`,
    digest: 'sha256:aa',
    lastUpdateTime: '2025-12-31T00:00:00Z',
    size: 10,
  },
});

/** Fake I/O that records calls; `head` is the branch tip on the server, `failing` throws. */
function fakeWork(head: string, failing?: { step: keyof GitWork; error: unknown }) {
  const calls: string[] = [];
  const closed = { transports: 0, checkouts: 0 };
  const run = (name: keyof GitWork) => {
    calls.push(name);
    if (failing?.step === name) throw failing.error;
  };
  const work: GitWork = {
    access: async () => {
      run('access');
      return { creds: {}, options: {} as never };
    },
    connect: async () => {
      run('connect');
      const transport = { close: () => void closed.transports++ } as unknown as Transport;
      return { transport, refs: [{ ref: 'refs/heads/main', oid: head }] };
    },
    fetch: async (_t, resolved) => {
      run('fetch');
      return { gitdir: '/tmp/x', commit: resolved.commit!, release: async () => void closed.checkouts++ };
    },
    verify: async () => {
      run('verify');
      return 'verified signature of commit with key abc';
    },
    archive: async () => {
      run('archive');
      return { digest: 'sha256:bb', size: 20 };
    },
    subject: async () => 'second commit',
  };
  return { work, calls, closed };
}

function fakeStorage(present: string[]): Storage {
  return {
    objectDir: (kind: string, ns: string, name: string) => `${kind.toLowerCase()}/${ns}/${name}`,
    exists: async (p: string) => present.includes(p),
    url: (p: string) => `http://storage/${p}`,
    absolute: (p: string) => `/data/${p}`,
    garbageCollect: async () => [],
    removeAll: async () => {},
  } as unknown as Storage;
}

function reconciler(work: GitWork, present: string[] = []) {
  return new GitRepositoryReconciler({
    kubeConfig: {} as KubeConfig,
    storage: fakeStorage(present),
    informer: { get: () => undefined } as unknown as Informer<GitRepository & KubernetesObject>,
    maxSize: 1 << 20,
    work,
  });
}

describe('GitRepository reconciler', () => {
  it('runs its steps in order', () => {
    expect(reconciler(fakeWork(A).work).recipe.steps.map((s) => s.name)).to.deep.equal([
      'finalizer',
      'validate',
      'storage',
      'credentials',
      'include',
      'resolve',
      'fetch',
      'verify',
      'artifact',
      'publish',
    ]);
  });

  it('builds the first artifact, shows progress for the new generation once, and publishes it', async () => {
    const obj = repo();
    const { work, calls, closed } = fakeWork(A);
    const c = testContext(obj);
    const outcome = await reconciler(work).reconcile(obj, c);
    expect(outcome).to.deep.equal({
      type: 'success',
      reason: 'Succeeded',
      message: `stored artifact for revision 'main@sha1:${A}'`,
      requeueAfterMs: 60_000,
    });
    expect(calls).to.deep.equal(['access', 'connect', 'fetch', 'archive']);
    expect(c.progressed).to.deep.equal(['processing object: new generation 0 -> 1']);
    expect(c.status.artifact).to.deep.include({ revision: `main@sha1:${A}`, digest: 'sha256:bb', size: 20 });
    expect(findCondition(c.status.conditions, 'ArtifactInStorage')).to.include({ status: 'True' });
    expect(c.events).to.deep.equal(["NewArtifact: stored artifact for commit 'second commit'"]);
    expect(closed).to.deep.equal({ transports: 1, checkouts: 1 });
  });

  it('on a resync with nothing new, lists refs and stops: no progress, no fetch, no archive', async () => {
    const obj = repo(stored());
    const { work, calls } = fakeWork(A);
    const c = testContext(obj);
    const outcome = await reconciler(work, [`${DIR}/${A}.tar.gz`]).reconcile(obj, c);
    expect(outcome.type).to.equal('success');
    expect(calls).to.deep.equal(['access', 'connect']);
    expect(c.progressed).to.deep.equal([]);
    expect(c.events).to.deep.equal([]);
  });

  it('says which new upstream revision it builds, once, and drops ArtifactOutdated when done', async () => {
    const obj = repo(stored());
    const { work, calls } = fakeWork(B);
    const c = testContext(obj);
    await reconciler(work, [`${DIR}/${A}.tar.gz`]).reconcile(obj, c);
    expect(c.progressed).to.deep.equal([`building artifact: new upstream revision 'main@sha1:${B}'`]);
    expect(calls).to.include('archive');
    expect(c.status.artifact?.revision).to.equal(`main@sha1:${B}`);
    expect(findCondition(c.status.conditions, 'ArtifactOutdated')).to.equal(undefined);
  });

  it('rebuilds an artifact that is gone from storage', async () => {
    const obj = repo(stored());
    const { work, calls } = fakeWork(A);
    await reconciler(work, []).reconcile(obj, testContext(obj));
    expect(calls).to.include('archive');
  });

  for (const [step, error, reason, condition] of [
    ['access', new SecretError("secret 'ns/creds' not found"), 'AuthenticationFailed', 'FetchFailed'],
    ['connect', new TransportError('auth', 'authentication required'), 'AuthenticationFailed', 'FetchFailed'],
    ['connect', new Error('connect ECONNREFUSED 127.0.0.1:9'), 'GitOperationFailed', 'FetchFailed'],
    ['fetch', new Error('unexpected EOF'), 'GitOperationFailed', 'FetchFailed'],
    ['archive', new Error('ENOSPC'), 'ArchiveOperationFailed', 'StorageOperationFailed'],
  ] as const) {
    it(`${step} failing with ${error.message}: ${reason}, ${condition}=True, the last artifact kept`, async () => {
      const obj = repo(stored());
      const { work, calls, closed } = fakeWork(B, { step, error });
      const c = testContext(obj);
      const outcome = await reconciler(work, [`${DIR}/${A}.tar.gz`]).reconcile(obj, c);
      expect(outcome.type).to.equal('error');
      expect(outcome.reason).to.equal(reason);
      expect(outcome.message).to.include(error.message);
      expect(calls.at(-1)).to.equal(step);
      expect(findCondition(c.status.conditions, condition)).to.include({ status: 'True', reason });
      expect(c.status.artifact).to.deep.equal(stored().artifact);
      const fetched = calls.includes('fetch') && step !== 'fetch';
      expect(closed.checkouts, 'a fetched checkout is always released').to.equal(fetched ? 1 : 0);
      expect(closed.transports, 'an open connection is always closed').to.equal(calls.length > 2 ? 1 : 0);
    });
  }

  it('publishes nothing from a commit whose signature does not verify', async () => {
    const obj = repo(stored(), { verify: { mode: 'HEAD', secretRef: { name: 'keys' } } });
    const { work, calls } = fakeWork(B, { step: 'verify', error: new Error('no valid signature') });
    const c = testContext(obj);
    const outcome = await reconciler(work, [`${DIR}/${A}.tar.gz`]).reconcile(obj, c);
    expect(outcome).to.include({
      type: 'error',
      reason: 'VerificationError',
      message: 'signature verification failed: no valid signature',
      step: 'verify',
    });
    expect(calls).to.not.include('archive');
    expect(findCondition(c.status.conditions, 'SourceVerified')).to.include({ status: 'False' });
    expect(c.status.artifact).to.deep.equal(stored().artifact);
  });

  it('stalls on a spec it cannot use, before any I/O', async () => {
    for (const [spec, reason] of [
      [{ url: 'https://user:pw@git.example/x' }, 'URLInvalid'],
      [{ ref: { semver: '>= not a range' } }, 'InvalidSpec'],
      [{ sparseCheckout: ['../etc'] }, 'InvalidSpec'],
    ] as const) {
      const obj = repo({}, spec as Partial<GitRepository['spec']>);
      const { work, calls } = fakeWork(A);
      const outcome = await reconciler(work).reconcile(obj, testContext(obj));
      expect(outcome, JSON.stringify(spec)).to.include({ type: 'stalled', reason, step: 'validate' });
      expect(calls).to.deep.equal([]);
    }
  });
});
