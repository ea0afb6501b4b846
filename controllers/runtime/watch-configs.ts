// ConfigMaps and Secrets labelled for watching (Flux's reconcile.fluxcd.io/watch: Enabled, or
// --watch-configs-label-selector) re-queue the objects that read them when their data changes:
// a Kustomization's substituteFrom, a HelmRelease's valuesFrom, a kubeConfig Secret.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Controller, ManagedObject } from './controller.ts';
import type { Informer } from './informer.ts';
import type { Manager } from './manager.ts';
import { keyOf } from './resource.ts';

const CONFIG_INDEX = 'configs';

type Config = KubernetesObject & { data?: Record<string, string> };

/**
 * `configKeys` lists, for one object, the ConfigMaps and Secrets it reads as "Kind/namespace/name";
 * a change of one of them (matching `selector`) queues that object on `controller`.
 */
export function requeueOnConfigChange<T extends ManagedObject>(
  manager: Manager,
  selector: string,
  objects: Informer<T>,
  configKeys: (obj: T) => string[],
  controller: Controller<T>,
): void {
  objects.addIndex(CONFIG_INDEX, configKeys);
  for (const kind of ['ConfigMap', 'Secret'] as const) {
    const plural = kind === 'ConfigMap' ? 'configmaps' : 'secrets';
    const changed = (c: Config) => {
      const key = `${kind}/${keyOf(c)}`;
      for (const o of objects.byIndex(CONFIG_INDEX, key)) controller.enqueue(keyOf(o), key);
    };
    manager
      .informer<Config>({ group: '', version: 'v1', kind, plural, namespaced: true }, { labelSelector: selector })
      .on({
        add: changed,
        update: (o, n) => {
          if (JSON.stringify(o.data) !== JSON.stringify(n.data)) changed(n);
        },
        delete: changed,
      });
  }
}
