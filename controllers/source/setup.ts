// The source controller: GitRepository, HelmRepository, HelmChart and OCIRepository, their artifact
// storage and the HTTP server consumers download artifacts from, and the Helm helper process.
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelmHelper } from '../helm/client.ts';
import { resourceTypeOf } from '../api/kind.ts';
import { GitRepositoryKind } from '../api/source/gitrepository.ts';
import { HelmChartKind } from '../api/source/helmchart.ts';
import { HelmRepositoryKind } from '../api/source/helmrepository.ts';
import { closeServer, parseAddress } from '../runtime/http.ts';
import { flag, type Options } from '../runtime/options.ts';
import { keyOf } from '../runtime/resource.ts';
import { defineController, reconcilesRules, sharedFlags, type SetupContext } from '../runtime/setup.ts';
import { GitRepositoryReconciler, type GitRepository } from './gitrepository/reconciler.ts';
import { ChartIndexes } from './helm/index-cache.ts';
import { HelmChartReconciler, type HelmChart } from './helmchart/reconciler.ts';
import { HelmRepositoryReconciler, type HelmRepository } from './helmrepository/reconciler.ts';
import { setupOCIRepository } from './ocirepository/setup.ts';
import { Storage } from './storage.ts';

const INCLUDE_INDEX = 'spec.include';
const CHART_SOURCE_INDEX = 'spec.sourceRef';

export const sourceFlags = {
  'storage-path': flag.string({ default: 'data', help: 'Directory the artifacts are stored in.' }),
  'storage-addr': flag.string({ default: ':9090', help: 'The address the artifact HTTP server binds to.' }),
  'storage-adv-addr': flag.string({
    help: 'host:port of artifact URLs; defaults to the hostname and the --storage-addr port.',
  }),
  'artifact-retention-records': flag.int({ default: 2, min: 1, help: 'How many artifacts of one object are kept.' }),
  'git-max-size': flag.bytes({
    default: 1024 ** 3,
    help: 'Bytes a fetch may download and an artifact may unpack to.',
  }),
  'helm-index-max-size': flag.bytes({
    default: 50 * 1024 ** 2,
    help: 'Bytes a Helm repository index may have.',
  }),
  'helm-chart-max-size': flag.bytes({ default: 10 * 1024 ** 2, help: 'Bytes a downloaded Helm chart may have.' }),
  'helm-helper-path': sharedFlags['helm-helper-path'],
};

export type SourceOptions = Options<typeof sourceFlags>;

export async function setupSource({ manager, options }: SetupContext<SourceOptions>): Promise<void> {
  const addr = options.storageAddr;
  const { port } = parseAddress('--storage-addr', addr);
  const storage = new Storage({
    root: options.storagePath,
    advertisedBase: `http://${options.storageAdvAddr ?? `${hostname()}:${port}`}`,
    retention: options.artifactRetentionRecords,
  });
  let server: Server | undefined;
  manager.onStart(async () => {
    server = await storage.listen(addr);
  });
  manager.onStop(() => closeServer(server));
  const helmHelper = new HelmHelper({ path: options.helmHelperPath, logger: manager.logger });
  const indexDir = mkdtempSync(join(tmpdir(), 'tide-helm-index-'));
  manager.onStop(async () => {
    await helmHelper.close();
    rmSync(indexDir, { recursive: true, force: true });
  });
  const indexes = new ChartIndexes(helmHelper, indexDir);

  const rt = resourceTypeOf(GitRepositoryKind);
  const informer = manager.informer<GitRepository>(rt);
  informer.addIndex(INCLUDE_INDEX, (o) =>
    (o.spec?.include ?? []).map((i) => `${o.metadata?.namespace}/${i.repository.name}`),
  );
  const controller = manager.addController<GitRepository>({
    name: 'gitrepository',
    resource: rt,
    fieldManager: 'source-controller',
    reconciler: new GitRepositoryReconciler({
      kubeConfig: manager.kubeConfig,
      storage,
      informer,
      maxSize: options.gitMaxSize,
    }),
    isSuspended: (o) => o.spec?.suspend === true,
    revision: (o) => o.status?.artifact?.revision,
  });
  // A new artifact of an included repository rebuilds the repositories that include it.
  informer.on({
    update(oldObj, newObj) {
      if (oldObj.status?.artifact?.digest === newObj.status?.artifact?.digest) return;
      for (const dependent of informer.byIndex(INCLUDE_INDEX, keyOf(newObj))) controller.enqueue(keyOf(dependent));
    },
  });

  const helmRepositories = manager.informer<HelmRepository>(resourceTypeOf(HelmRepositoryKind));
  manager.addController<HelmRepository>({
    name: 'helmrepository',
    resource: resourceTypeOf(HelmRepositoryKind),
    fieldManager: 'source-controller',
    reconciler: new HelmRepositoryReconciler({
      kubeConfig: manager.kubeConfig,
      storage,
      indexes,
      maxIndexSize: options.helmIndexMaxSize,
    }),
    isSuspended: (o) => o.spec?.suspend === true,
    revision: (o) => o.status?.artifact?.revision,
  });

  const charts = manager.informer<HelmChart>(resourceTypeOf(HelmChartKind));
  charts.addIndex(CHART_SOURCE_INDEX, (o) => [
    `${o.spec?.sourceRef?.kind}/${o.metadata?.namespace}/${o.spec?.sourceRef?.name}`,
  ]);
  const chartController = manager.addController<HelmChart>({
    name: 'helmchart',
    resource: resourceTypeOf(HelmChartKind),
    fieldManager: 'source-controller',
    reconciler: new HelmChartReconciler({
      kubeConfig: manager.kubeConfig,
      storage,
      indexes,
      helm: helmHelper,
      helmRepositories,
      gitRepositories: informer,
      maxChartSize: options.helmChartMaxSize,
      maxIndexSize: options.helmIndexMaxSize,
      maxSourceSize: options.gitMaxSize,
    }),
    isSuspended: (o) => o.spec?.suspend === true,
    revision: (o) => o.status?.artifact?.revision,
  });
  // A new artifact of a source rebuilds the charts made from it.
  const chartsOf = (kind: string) => ({
    update(oldObj: { status?: { artifact?: { revision?: string } } }, newObj: GitRepository | HelmRepository) {
      if (oldObj.status?.artifact?.revision === newObj.status?.artifact?.revision) return;
      const key = `${kind}/${keyOf(newObj)}`;
      for (const chart of charts.byIndex(CHART_SOURCE_INDEX, key)) chartController.enqueue(keyOf(chart));
    },
  });
  informer.on(chartsOf('GitRepository'));
  helmRepositories.on(chartsOf('HelmRepository'));
  // Parsed indexes no repository publishes any more are dropped.
  helmRepositories.on({
    update(oldObj, newObj) {
      if (oldObj.status?.artifact?.digest === newObj.status?.artifact?.digest) return;
      const current = helmRepositories.list().flatMap((o) => o.status?.artifact?.digest ?? []);
      void indexes.retain(current);
    },
  });
  await setupOCIRepository({ manager, storage, options });
}

export const source = defineController({
  name: 'source',
  flags: sourceFlags,
  setup: setupSource,
  rbac: {
    rules: [
      ...reconcilesRules('source.toolkit.fluxcd.io', [
        'gitrepositories',
        'helmrepositories',
        'helmcharts',
        'ocirepositories',
      ]),
      // Credentials, TLS and proxy Secrets; an OCIRepository's ServiceAccount for its image pull Secrets.
      { apiGroups: [''], resources: ['secrets', 'serviceaccounts'], verbs: ['get'] },
    ],
  },
});
