// Where the Helm helper acts: a kubeconfig file (this cluster's or a spec.kubeConfig Secret's), the
// account it impersonates and the namespace of the release's storage. Kubeconfig files are written
// once per content, readable by this user only, into a directory removed on stop.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { HelmTarget } from './client.ts';

export class KubeconfigFiles {
  readonly #dir: string;
  readonly #paths = new WeakMap<KubeConfig, string>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The path of a file holding `kc`; the same content gives the same path (and the helper its cached client). */
  pathFor(kc: KubeConfig): string {
    const cached = this.#paths.get(kc);
    if (cached) return cached;
    const text = kc.exportConfig();
    const path = join(this.#dir, `${createHash('sha256').update(text).digest('hex').slice(0, 32)}.json`);
    if (!existsSync(path)) {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, path);
    }
    this.#paths.set(kc, path);
    return path;
  }

  clear(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** The helper's target for a release stored in `storageNamespace`, acting as `serviceAccount` when given. */
export function helmTarget(
  files: KubeconfigFiles,
  kc: KubeConfig,
  opts: { storageNamespace: string; serviceAccount?: { namespace: string; name: string }; persistent: boolean },
): HelmTarget {
  const sa = opts.serviceAccount;
  return {
    kubeconfig: files.pathFor(kc),
    storageNamespace: opts.storageNamespace,
    persistent: opts.persistent,
    ...(sa ? { impersonate: `system:serviceaccount:${sa.namespace}:${sa.name}` } : {}),
  };
}
