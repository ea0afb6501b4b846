// spec.kubeConfig.secretRef: a Kustomization or HelmRelease acts on another cluster, with a
// kubeconfig kept in a Secret of its namespace. Like Flux without --insecure-kubeconfig-exec, only self-contained
// kubeconfigs are accepted: no exec or auth-provider plugins and no file paths on the
// controller's disk. Messages name the Secret and key, never their content.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { errorMessage, unlessNotFound } from './api-errors.ts';
import { shareConnections } from './kubeconfig.ts';

export interface KubeConfigSecretRef {
  name: string;
  key?: string;
}

/** The kubeconfig could not be read or is not allowed; retried, since the Secret may be fixed. */
export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

const DEFAULT_KEYS = ['value', 'value.yaml'];

type Named<K extends string> = { name?: string } & Record<K, Record<string, unknown> | undefined>;

/**
 * What a kubeconfig may not use, read from the raw document before client-node sees it (client-node
 * reads `token-file` while parsing): each would run a program or read a file of the controller.
 */
function refusal(doc: unknown): string | undefined {
  if (typeof doc !== 'object' || doc === null) return 'it is not a kubeconfig';
  const config = doc as { users?: Named<'user'>[]; clusters?: Named<'cluster'>[] };
  for (const entry of config.users ?? []) {
    const user = entry?.user ?? {};
    if (user.exec) return `user '${entry.name}' uses an exec credential plugin, which is not allowed`;
    if (user['auth-provider']) return `user '${entry.name}' uses an auth-provider plugin, which is not allowed`;
    for (const key of ['token-file', 'tokenFile', 'client-certificate', 'client-key']) {
      if (user[key]) return `user '${entry.name}' refers to a file on disk (${key}); inline the data instead`;
    }
  }
  for (const entry of config.clusters ?? []) {
    if (entry?.cluster?.['certificate-authority'])
      return `cluster '${entry.name}' refers to a CA file on disk; use certificate-authority-data`;
  }
  return undefined;
}

/** Reads and checks kubeconfigs from Secrets; one KubeConfig (and connection pool) per Secret version. */
export class RemoteClusters {
  private readonly core: CoreV1Api;
  private readonly cache = new Map<string, { resourceVersion: string; kc: KubeConfig }>();

  constructor(local: KubeConfig) {
    this.core = local.makeApiClient(CoreV1Api);
  }

  async kubeConfigFor(namespace: string, ref: KubeConfigSecretRef): Promise<KubeConfig> {
    const where = `kubeconfig Secret '${namespace}/${ref.name}'`;
    const secret = await unlessNotFound(this.core.readNamespacedSecret({ name: ref.name, namespace })).catch(
      (err: unknown) => {
        throw new KubeConfigError(`reading ${where}: ${errorMessage(err)}`);
      },
    );
    if (!secret) throw new KubeConfigError(`${where} not found`);
    const id = `${namespace}/${ref.name}/${ref.key ?? ''}`;
    const cached = this.cache.get(id);
    if (cached && cached.resourceVersion === secret.metadata?.resourceVersion) return cached.kc;

    const data = secret.data ?? {};
    const key = ref.key ?? DEFAULT_KEYS.find((k) => data[k] !== undefined);
    if (!key || data[key] === undefined)
      throw new KubeConfigError(`${where} has no key ${ref.key ? `'${ref.key}'` : "'value' or 'value.yaml'"}`);
    const text = Buffer.from(data[key], 'base64').toString('utf8');
    const invalid = new KubeConfigError(`${where} key '${key}' does not hold a valid kubeconfig`);
    let doc: unknown;
    try {
      doc = parse(text, { logLevel: 'error' });
    } catch {
      throw invalid;
    }
    const refused = refusal(doc);
    if (refused) throw new KubeConfigError(`${where} key '${key}': ${refused}`);
    const kc = new KubeConfig();
    try {
      kc.loadFromString(text);
    } catch {
      throw invalid;
    }
    if (!kc.getCurrentCluster())
      throw new KubeConfigError(`${where} key '${key}': it has no current context with a cluster`);
    shareConnections(kc);
    this.cache.set(id, { resourceVersion: secret.metadata?.resourceVersion ?? '', kc });
    return kc;
  }
}
