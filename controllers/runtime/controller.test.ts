import { expect } from 'chai';
import { REQUESTED_AT_ANNOTATION, specOrRequestChanged } from './controller.ts';

const base = {
  metadata: { name: 'a', generation: 1, resourceVersion: '1', annotations: {}, finalizers: ['finalizers.fluxcd.io'] },
};
const changed = (metadata: object) => ({ metadata: { ...base.metadata, resourceVersion: '2', ...metadata } });

describe('own-kind predicate', () => {
  it('ignores status-only updates (same generation, new resourceVersion)', () => {
    expect(specOrRequestChanged(base, changed({}))).to.equal(false);
  });

  it('passes spec changes, reconcile requests, deletion and finalizer changes', () => {
    expect(specOrRequestChanged(base, changed({ generation: 2 }))).to.equal(true);
    expect(specOrRequestChanged(base, changed({ annotations: { [REQUESTED_AT_ANNOTATION]: 'now' } }))).to.equal(true);
    expect(specOrRequestChanged(base, changed({ deletionTimestamp: new Date() }))).to.equal(true);
    expect(specOrRequestChanged(base, changed({ finalizers: [] }))).to.equal(true);
  });

  it('ignores other annotation and label changes', () => {
    expect(specOrRequestChanged(base, changed({ annotations: { team: 'x' }, labels: { a: 'b' } }))).to.equal(false);
  });
});
