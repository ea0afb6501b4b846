import type { KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { Metrics } from './metrics.ts';

type Obj = KubernetesObject & {
  spec?: { suspend?: boolean };
  status?: { conditions?: { type: string; status: string }[]; artifact?: { revision: string } };
};

const gitRepository = { group: 'source.toolkit.fluxcd.io', version: 'v1', kind: 'GitRepository' } as const;

function object(name: string, ready: string | undefined, revision?: string, suspend?: boolean): Obj {
  return {
    metadata: { name, namespace: 'apps' },
    spec: suspend === undefined ? {} : { suspend },
    status: {
      conditions: ready ? [{ type: 'Ready', status: ready }] : [],
      ...(revision ? { artifact: { revision } } : {}),
    },
  };
}

/** A metrics registry reporting the objects of `cache` (by name), and a scrape of gotk_resource_info. */
function tracked(opts: { active?: () => boolean } = {}) {
  const metrics = new Metrics(false);
  const cache = new Map<string, Obj>();
  metrics.trackResources<Obj>({
    resource: { ...gitRepository, plural: 'gitrepositories', namespaced: true },
    objects: () => cache.values(),
    isSuspended: (o) => o.spec?.suspend === true,
    revision: (o) => o.status?.artifact?.revision,
    active: opts.active ?? (() => true),
  });
  const scrape = async () => {
    const { values } = await metrics.resourceInfo.get();
    return values.map((v) => ({ ...v.labels, value: v.value }));
  };
  return { metrics, cache, scrape };
}

describe('gotk_resource_info', () => {
  it('reports each cached object once with value 1, its readiness, suspension and revision', async () => {
    const { cache, scrape } = tracked();
    cache.set('a', object('a', 'True', 'main@sha1:aaa'));
    cache.set('b', object('b', 'False', undefined, false));
    expect(await scrape()).to.deep.equal([
      {
        customresource_group: 'source.toolkit.fluxcd.io',
        customresource_version: 'v1',
        customresource_kind: 'GitRepository',
        kind: 'GitRepository',
        name: 'a',
        namespace: 'apps',
        ready: 'True',
        suspended: 'false',
        revision: 'main@sha1:aaa',
        value: 1,
      },
      {
        customresource_group: 'source.toolkit.fluxcd.io',
        customresource_version: 'v1',
        customresource_kind: 'GitRepository',
        kind: 'GitRepository',
        name: 'b',
        namespace: 'apps',
        ready: 'False',
        suspended: 'false',
        value: 1,
      },
    ]);
  });

  it('says Unknown for an object without a Ready condition', async () => {
    const { cache, scrape } = tracked();
    cache.set('new', object('new', undefined));
    const [series] = await scrape();
    expect(series?.ready).to.equal('Unknown');
  });

  it('replaces the series when readiness, suspension or revision change', async () => {
    const { cache, scrape } = tracked();
    cache.set('a', object('a', 'Unknown'));
    expect((await scrape()).map((s) => [s.ready, s.suspended, s.revision])).to.deep.equal([
      ['Unknown', 'false', undefined],
    ]);
    cache.set('a', object('a', 'True', 'main@sha1:aaa'));
    expect((await scrape()).map((s) => [s.ready, s.suspended, s.revision])).to.deep.equal([
      ['True', 'false', 'main@sha1:aaa'],
    ]);
    cache.set('a', object('a', 'True', 'main@sha1:bbb', true));
    expect((await scrape()).map((s) => [s.ready, s.suspended, s.revision])).to.deep.equal([
      ['True', 'true', 'main@sha1:bbb'],
    ]);
  });

  it('drops the series of a deleted object', async () => {
    const { cache, scrape } = tracked();
    cache.set('a', object('a', 'True'));
    cache.set('b', object('b', 'True'));
    expect(await scrape()).to.have.length(2);
    cache.delete('a');
    expect((await scrape()).map((s) => s.name)).to.deep.equal(['b']);
  });

  it('reports nothing while the process does not lead', async () => {
    let leading = false;
    const { cache, scrape } = tracked({ active: () => leading });
    cache.set('a', object('a', 'True'));
    expect(await scrape()).to.deep.equal([]);
    leading = true;
    expect(await scrape()).to.have.length(1);
  });

  it('appears in the exposition text as a gauge', async () => {
    const { metrics, cache } = tracked();
    cache.set('a', object('a', 'False'));
    const text = await metrics.registry.metrics();
    expect(text).to.include('# TYPE gotk_resource_info gauge');
    expect(text).to.match(/^gotk_resource_info\{[^}]*name="a",namespace="apps",ready="False",suspended="false"\} 1$/m);
  });
});

describe('the exposition', () => {
  it('names only counters *_total, as `promtool check metrics` requires', async () => {
    const text = await new Metrics().registry.metrics();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]);
    expect(types.map(([name]) => name)).to.include('nodejs_active_handles');
    expect(types.filter(([name, type]) => name.endsWith('_total') && type !== 'counter')).to.deep.equal([]);
  });
});
