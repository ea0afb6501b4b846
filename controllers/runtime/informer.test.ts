import { expect } from 'chai';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { Informer, LAST_APPLIED_ANNOTATION, trimForCache } from './informer.ts';

const configMaps = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };
const managedFields = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }] as never;

describe('trimForCache', () => {
  it('drops managedFields and the last-applied annotation, keeps every other annotation', () => {
    const obj: KubernetesObject = {
      metadata: {
        name: 'a',
        namespace: 'ns',
        resourceVersion: '7',
        managedFields,
        annotations: { [LAST_APPLIED_ANNOTATION]: '{"big":"copy"}', 'reconcile.fluxcd.io/requestedAt': 'now' },
        labels: { app: 'a' },
      },
    };
    const trimmed = trimForCache(obj);
    expect(trimmed).to.equal(obj);
    expect(obj.metadata).to.deep.equal({
      name: 'a',
      namespace: 'ns',
      resourceVersion: '7',
      annotations: { 'reconcile.fluxcd.io/requestedAt': 'now' },
      labels: { app: 'a' },
    });
    expect('managedFields' in obj.metadata!).to.equal(false);
  });

  it('leaves objects without them as they are', () => {
    const annotations = { a: 'b' };
    const obj: KubernetesObject = { metadata: { name: 'a', annotations } };
    trimForCache(obj);
    expect(obj.metadata!.annotations).to.equal(annotations);
    expect(trimForCache({ kind: 'X' })).to.deep.equal({ kind: 'X' });
  });
});

describe('the informer store', () => {
  type Upsert = { upsert(obj: KubernetesObject): void };
  const object = (rv: string, extra: object = {}): KubernetesObject => ({
    metadata: { name: 'a', namespace: 'ns', resourceVersion: rv, managedFields, ...extra },
  });

  it('holds trimmed objects and hands trimmed objects to its handlers', () => {
    const inf = new Informer(new KubeConfig(), configMaps);
    const seen: KubernetesObject[] = [];
    inf.on({ add: (o) => seen.push(o), update: (_o, n) => seen.push(n) });
    (inf as unknown as Upsert).upsert(object('1'));
    (inf as unknown as Upsert).upsert(object('2'));
    expect(seen.map((o) => o.metadata?.managedFields)).to.deep.equal([undefined, undefined]);
    expect(inf.get('ns/a')!.metadata).to.not.have.property('managedFields');
  });

  it('keeps the newest copy of an unchanged object (a relist) without telling the handlers', () => {
    const inf = new Informer(new KubeConfig(), configMaps);
    let events = 0;
    inf.on({ add: () => events++, update: () => events++ });
    const first = object('1');
    const relisted = object('1');
    (inf as unknown as Upsert).upsert(first);
    (inf as unknown as Upsert).upsert(relisted);
    expect(events).to.equal(1);
    expect(inf.get('ns/a')).to.equal(relisted);
  });
});
