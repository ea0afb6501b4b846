// Charts in OCI registries, as Helm stores them: one repository per chart under the HelmRepository's
// URL, tags holding versions ('+' written '_'), the chart in the layer of Helm's chart media type.
// The credentials and TLS settings are the HelmRepository's.
import type { KubeConfig } from '@kubernetes/client-node';
import { failed } from '../../runtime/outcome.ts';
import { Reason } from '../../runtime/reasons.ts';
import { strictNewVersion } from '../../runtime/semver.ts';
import { readSecret } from '../gitrepository/credentials.ts';
import type { HelmRepository } from '../helmrepository/reconciler.ts';
import { registryCredentialsFrom, registryTlsFrom, type RegistryCredentials, type RegistryTls } from '../oci/auth.ts';
import { RegistryClient, RegistryError } from '../oci/client.ts';
import { childRepository, InvalidReferenceError, parseOciUrl, repositoryName } from '../oci/reference.ts';
import { parseDuration } from '../../runtime/duration.ts';
import { selectVersion, tagToVersion, versionToTag } from './versions.ts';

export const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

export interface PulledChart {
  version: string;
  tag: string;
  /** Downloads the chart layer to `dest`, verified against its digest. */
  pull(dest: string, maxSize: number): Promise<void>;
}

/** Maps a registry failure to Flux's reasons; nothing of the credentials is in the message. */
export function registryFailure(err: unknown, what: string): Error {
  if (err instanceof RegistryError) {
    return failed(err.kind === 'auth' ? Reason.AuthenticationFailed : Reason.ChartPullError, `${what}: ${err.message}`);
  }
  if (err instanceof InvalidReferenceError) return failed(Reason.ChartPullError, `${what}: ${err.message}`);
  return err as Error;
}

export class OciCharts {
  readonly #kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  /** The chart `chart` under a HelmRepository of type oci, in the version `range` picks. */
  resolve(repo: HelmRepository, chart: string, range: string | undefined, signal: AbortSignal) {
    return this.resolveUrl(repo.spec.url, chart, range, repo, signal);
  }

  /** The chart `chart` under `url` (oci://host/path), with `repo`'s credentials when given. */
  async resolveUrl(
    url: string,
    chart: string,
    range: string | undefined,
    repo: HelmRepository | undefined,
    signal: AbortSignal,
  ): Promise<PulledChart> {
    const target = (() => {
      try {
        return childRepository(parseOciUrl(url, { repositoryOptional: true }), chart);
      } catch (err) {
        throw registryFailure(err, `invalid chart reference '${chart}' under '${url}'`);
      }
    })();
    const client = await this.client(target.registry, repo);
    const name = repositoryName(target);
    const exact = exactVersion(range);
    let version: string;
    if (exact) {
      version = exact;
    } else {
      const tags = await client.listTags(target.repository, { signal }).catch((err: unknown) => {
        client.close();
        throw registryFailure(err, `failed to list tags of '${name}'`);
      });
      const candidates = tags.map((tag) => ({ version: tagToVersion(tag) }));
      try {
        version = selectVersion(chart, candidates, range).version;
      } catch (err) {
        client.close();
        throw err;
      }
    }
    const tag = versionToTag(version);
    return {
      version,
      tag,
      pull: async (dest, maxSize) => {
        try {
          const manifest = await client.manifest(target.repository, tag, { signal });
          const layer = manifest.json.layers?.find((l) => l.mediaType === HELM_CHART_LAYER);
          if (!layer) {
            throw failed(
              Reason.ChartPullError,
              `'${name}:${tag}' is not a Helm chart: no layer of media type ${HELM_CHART_LAYER}`,
            );
          }
          await client.blobToFile(target.repository, layer.digest, dest, { signal, maxSize });
        } catch (err) {
          throw registryFailure(err, `failed to pull chart '${name}:${tag}'`);
        } finally {
          client.close();
        }
      },
    };
  }

  private async client(registry: string, repo: HelmRepository | undefined): Promise<RegistryClient> {
    const ns = repo?.metadata?.namespace ?? '';
    let credentials: RegistryCredentials | undefined;
    let tls: RegistryTls | undefined;
    if (repo?.spec.secretRef) {
      const secret = await readSecret(this.#kc, ns, repo.spec.secretRef.name);
      credentials = registryCredentialsFrom(secret, registry);
      if (!repo.spec.certSecretRef) tls = registryTlsFrom(secret);
    }
    if (repo?.spec.certSecretRef) tls = registryTlsFrom(await readSecret(this.#kc, ns, repo.spec.certSecretRef.name));
    return new RegistryClient(registry, {
      credentials,
      tls,
      insecure: repo?.spec.insecure === true,
      timeoutMs: parseDuration(repo?.spec.timeout ?? '60s'),
      userAgent: 'tide-source-controller',
    });
  }
}

/** A range that names one exact version (`1.2.3`, `v1.2.3`): its tag is asked for directly, as Helm does. */
function exactVersion(range: string | undefined): string | undefined {
  const text = range?.trim() ?? '';
  if (text === '') return undefined;
  try {
    strictNewVersion(text.replace(/^v/, ''));
    return text;
  } catch {
    return undefined;
  }
}
