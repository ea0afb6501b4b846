import { expect } from 'chai';
import type { KubernetesObject } from '@kubernetes/client-node';
import { Controller, REQUESTED_AT_ANNOTATION, specOrRequestChanged, type ManagedObject } from './controller.ts';
import type { EventRecorder } from './events.ts';
import type { EventHandlers, Informer } from './informer.ts';
import { Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import type { StatusPatcher } from './status.ts';

const base = {
  metadata: { name: 'a', generation: 1, resourceVersion: '1', annotations: {}, finalizers: ['finalizers.fluxcd.io'] },
};
const changed = (metadata: object) => ({ metadata: { ...base.metadata, resourceVersion: '2', ...metadata } });

describe('own-kind predicate', () => {
  it('ignores status-only updates (same generation, new resourceVersion)', () => {
    expect(specOrRequestChanged(base, changed({}))).to.equal(false);
  });

  it('passes spec changes, reconcile requests and deletion; not finalizer changes', () => {
    expect(specOrRequestChanged(base, changed({ generation: 2 }))).to.equal(true);
    expect(specOrRequestChanged(base, changed({ annotations: { [REQUESTED_AT_ANNOTATION]: 'now' } }))).to.equal(true);
    expect(specOrRequestChanged(base, changed({ deletionTimestamp: new Date() }))).to.equal(true);
    expect(specOrRequestChanged(base, changed({ finalizers: [] }))).to.equal(false);
  });

  it('ignores other annotation and label changes', () => {
    expect(specOrRequestChanged(base, changed({ annotations: { team: 'x' }, labels: { a: 'b' } }))).to.equal(false);
  });
});

describe('a reconcile in flight', () => {
  const obj = (generation: number, extra: object = {}): ManagedObject => ({
    metadata: { name: 'a', namespace: 'ns', generation, resourceVersion: String(generation), ...extra },
  });

  /** A controller whose one reconcile waits until told to finish; returns what its signal saw. */
  function running() {
    const handlers: EventHandlers<ManagedObject>[] = [];
    let current = obj(1);
    const informer = {
      on: (h: EventHandlers<ManagedObject>) => void handlers.push(h),
      list: () => [],
      get: () => current,
    } as unknown as Informer<ManagedObject>;
    let finish!: () => void;
    let runs = 0;
    const metrics = new Metrics(false);
    const seen: { started: Promise<AbortSignal> } = { started: undefined as never };
    let started!: (s: AbortSignal) => void;
    seen.started = new Promise((r) => (started = r));
    const controller = new Controller<ManagedObject>({
      name: 'thing',
      resource: { group: 'example.com', version: 'v1', kind: 'Thing', plural: 'things', namespaced: true },
      informer,
      reconciler: {
        reconcile: async (_o, ctx) => {
          // The superseding request runs next; it has nothing to wait for.
          if (runs++ > 0) return { type: 'success', reason: 'Succeeded', message: '' };
          ctx.workingOn('main@sha1:aaa');
          started(ctx.signal);
          await new Promise<void>((r) => (finish = r));
          return { type: 'success', reason: 'Succeeded', message: '' };
        },
      },
      patcher: { patch: async () => undefined } as unknown as StatusPatcher,
      recorder: { record: async () => {} } as unknown as EventRecorder,
      logger: new Logger({ level: 'error', encoding: 'json', write: () => {} }),
      metrics,
      concurrency: 1,
    });
    const update = (next: ManagedObject) => {
      const old = current;
      current = next;
      for (const h of handlers) h.update?.(old as KubernetesObject & ManagedObject, next);
    };
    return { controller, seen, update, metrics, finish: () => finish() };
  }

  it('is superseded by a trigger with another revision, not by its own revision or a finalizer', async () => {
    const { controller, seen, update, metrics, finish } = running();
    controller.start();
    controller.enqueue('ns/a');
    const signal = await seen.started;
    controller.enqueue('ns/a', 'GitRepository/ns/src', 'main@sha1:aaa');
    const adds = async () => (await metrics.queueAdds.get()).values.reduce((n, v) => n + v.value, 0);
    expect(await adds(), 'the reconcile in flight covers that revision: nothing queued').to.equal(1);
    update(obj(1, { finalizers: ['finalizers.fluxcd.io'], resourceVersion: '2' }));
    expect(signal.aborted, 'the same revision, or a finalizer, is no newer request').to.equal(false);
    controller.enqueue('ns/a', 'GitRepository/ns/src', 'main@sha1:bbb');
    expect(signal.aborted).to.equal(true);
    expect(signal.reason).to.equal('GitRepository/ns/src');
    finish();
    await controller.stop(1000);
  });

  it('is superseded by its own new generation, named as the trigger', async () => {
    const { controller, seen, update, finish } = running();
    controller.start();
    controller.enqueue('ns/a');
    const signal = await seen.started;
    update(obj(2));
    expect(signal.reason).to.equal('Thing/ns/a');
    finish();
    await controller.stop(1000);
  });
});
