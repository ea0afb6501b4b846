// For GitRepository tests: create, read and patch GitRepositories and Secrets in the test's
// namespace, wait for Ready or for a failure, and download and unpack the artifact.
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { resourceTypeOf, type KindDefinition } from '../../controllers/api/kind.ts';
import { GitRepositoryKind, type GitRepositorySpec } from '../../controllers/api/source/gitrepository.ts';
import { findCondition } from '../../controllers/runtime/conditions.ts';
import type { ManagedObject } from '../../controllers/runtime/controller.ts';
import type { GitRepository } from '../../controllers/source/gitrepository/reconciler.ts';
import { eventually } from './eventually.ts';

/** Unpacks a .tar.gz into path → content of its regular files. */
export async function untar(gz: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        if (h.type === 'file') files.set(h.name, Buffer.concat(chunks).toString('utf8'));
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(gunzipSync(gz));
  await done;
  return files;
}

export interface SourceHelpersOptions<Spec> {
  /** The cluster, read at each call (it is set in `before`). */
  kc: () => KubeConfig;
  /** The test's namespace, read at each call (it changes with every test). */
  ns: () => string;
  /** Spec fields every created GitRepository gets unless the test sets them; `interval: 1h` always. */
  defaults?: Partial<Spec>;
  /** Whether download() also checks the artifact's size against status.artifact.size. */
  checkSize?: boolean;
  /** The reason of Ready=True that ready() waits for; 'Succeeded' unless given. */
  readyReason?: string | RegExp;
}

export interface NotReadyOptions {
  /** Waits for this reconcile request to be handled too. */
  requestedAt?: string;
  /** Also requires Stalled with the same reason, for the current generation. */
  stalled?: boolean;
}

type SourceStatus = {
  artifact?: { url: string; digest?: string; size?: number; revision: string; path: string };
  lastHandledReconcileAt?: string;
};

export type GitRepositoryHelpersOptions = SourceHelpersOptions<GitRepositorySpec>;

/** Helpers for GitRepositories bound to the test's cluster and namespace. */
export function gitRepositoryHelpers(opts: GitRepositoryHelpersOptions) {
  return sourceHelpers<GitRepository, GitRepositorySpec>(GitRepositoryKind, opts);
}

/** Helpers for objects of a source kind, bound to the test's cluster and namespace. */
export function sourceHelpers<T extends ManagedObject<SourceStatus & NonNullable<ManagedObject['status']>>, Spec>(
  kind: KindDefinition,
  opts: SourceHelpersOptions<Spec>,
) {
  type Obj = T;
  const rt = resourceTypeOf(kind);
  const { kc, ns, defaults = {}, checkSize = false, readyReason = 'Succeeded' } = opts;
  const api = () => kc().makeApiClient(CustomObjectsApi);
  const ref = (name: string) => ({ group: rt.group, version: rt.version, plural: rt.plural, namespace: ns(), name });

  async function create(name: string, spec: Partial<Spec>, labels?: Record<string, string>): Promise<void> {
    await api().createNamespacedCustomObject({
      group: rt.group,
      version: rt.version,
      plural: rt.plural,
      namespace: ns(),
      body: {
        apiVersion: `${rt.group}/${rt.version}`,
        kind: rt.kind,
        metadata: { name, labels },
        spec: { interval: '1h', ...defaults, ...spec },
      },
    });
  }

  async function get(name: string): Promise<Obj> {
    return (await api().getNamespacedCustomObject(ref(name))) as Obj;
  }

  async function patchSpec(name: string, spec: object): Promise<void> {
    await api().patchNamespacedCustomObject(
      { ...ref(name), body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Sets reconcile.fluxcd.io/requestedAt to now; returns the value. */
  async function requestReconcile(name: string): Promise<string> {
    const at = new Date().toISOString();
    await api().patchNamespacedCustomObject(
      { ...ref(name), body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': at } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return at;
  }

  /** Creates the Secret, or replaces it if it exists. */
  async function secret(name: string, data: Record<string, string>): Promise<void> {
    const core = kc().makeApiClient(CoreV1Api);
    const body = { metadata: { name, namespace: ns() }, stringData: data };
    try {
      await core.createNamespacedSecret({ namespace: ns(), body });
    } catch {
      await core.replaceNamespacedSecret({ name, namespace: ns(), body });
    }
  }

  /** Waits until Ready is True for the current generation (and, if given, the request was handled). */
  async function ready(name: string, requestedAt?: string): Promise<Obj> {
    return eventually(
      async () => {
        const o = await get(name);
        const c = findCondition(o.status?.conditions, 'Ready');
        expect(c?.observedGeneration, `${name} generation`).to.equal(o.metadata?.generation);
        if (requestedAt) expect(o.status?.lastHandledReconcileAt).to.equal(requestedAt);
        expect(c, `${name} Ready: ${c?.reason}: ${c?.message}`).to.include({ status: 'True' });
        expect(c?.reason, `${name} Ready: ${c?.reason}: ${c?.message}`).to.match(
          typeof readyReason === 'string' ? new RegExp(`^${readyReason}$`) : readyReason,
        );
        return o;
      },
      { timeoutMs: 60_000 },
    );
  }

  /**
   * Waits until Ready is False with `reason` (after `requestedAt`, if given; and Stalled with the
   * same reason for the current generation, if asked).
   */
  async function notReady(name: string, reason: string, options: NotReadyOptions = {}): Promise<Obj> {
    const { requestedAt, stalled = false } = options;
    return eventually(
      async () => {
        const o = await get(name);
        if (requestedAt) expect(o.status?.lastHandledReconcileAt).to.equal(requestedAt);
        const c = findCondition(o.status?.conditions, 'Ready');
        expect(c, `${name} Ready: ${c?.reason}: ${c?.message}`).to.include({ status: 'False', reason });
        if (stalled) {
          expect(findCondition(o.status?.conditions, 'Stalled')).to.include({ status: 'True', reason });
          expect(o.status?.observedGeneration).to.equal(o.metadata?.generation);
        }
        return o;
      },
      { timeoutMs: 60_000 },
    );
  }

  /** Downloads the artifact in status and checks its digest (and size, if asked). */
  async function downloadRaw(o: Obj): Promise<Buffer> {
    const res = await fetch(o.status!.artifact!.url);
    expect(res.status).to.equal(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).to.equal(o.status!.artifact!.digest);
    if (checkSize) expect(body.length).to.equal(o.status!.artifact!.size);
    return body;
  }

  /** Downloads the artifact in status, checks it and unpacks it. */
  async function download(o: Obj): Promise<Map<string, string>> {
    return untar(await downloadRaw(o));
  }

  /** The namespace's events as `<reason>: <message>`. */
  async function eventMessages(): Promise<string[]> {
    const events = await kc().makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns() });
    return events.items.map((e) => `${e.reason}: ${e.message}`);
  }

  return {
    api,
    ref,
    create,
    get,
    patchSpec,
    requestReconcile,
    secret,
    ready,
    notReady,
    download,
    downloadRaw,
    eventMessages,
  };
}
