import { expect } from 'chai';
import { MAX_MESSAGE_LENGTH, findCondition, removeCondition, setCondition } from './conditions.ts';

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-01T00:05:00Z');

describe('conditions', () => {
  it('stamps lastTransitionTime in seconds precision and keeps it while nothing changes', () => {
    let c = setCondition([], { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'ok' }, t0);
    expect(c[0]!.lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
    c = setCondition(
      c,
      { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'ok', observedGeneration: 2 },
      t1,
    );
    expect(c[0]!.lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
    expect(c[0]!.observedGeneration).to.equal(2);
  });

  it('moves lastTransitionTime when status, reason or message change', () => {
    const base = setCondition([], { type: 'Ready', status: 'True', reason: 'A', message: 'm' }, t0);
    for (const change of [{ status: 'False' as const }, { reason: 'B' }, { message: 'other' }]) {
      const c = setCondition(base, { type: 'Ready', status: 'True', reason: 'A', message: 'm', ...change }, t1);
      expect(c[0]!.lastTransitionTime, JSON.stringify(change)).to.equal('2026-01-01T00:05:00Z');
    }
  });

  it('trims messages to what the API server accepts', () => {
    const c = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'X', message: `  ${'x'.repeat(MAX_MESSAGE_LENGTH + 10)}\n` },
      t0,
    );
    expect(c[0]!.message.length).to.equal(MAX_MESSAGE_LENGTH);
    expect(c[0]!.message.endsWith('...')).to.equal(true);
  });

  it('orders Ready, Reconciling, Stalled, then the rest by name, and removes', () => {
    let c = setCondition([], { type: 'FetchFailed', status: 'True', reason: 'X', message: '' }, t0);
    c = setCondition(c, { type: 'Stalled', status: 'True', reason: 'X', message: '' }, t0);
    c = setCondition(c, { type: 'ArtifactInStorage', status: 'True', reason: 'X', message: '' }, t0);
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'X', message: '' }, t0);
    c = setCondition(c, { type: 'Reconciling', status: 'True', reason: 'X', message: '' }, t0);
    expect(c.map((x) => x.type)).to.deep.equal(['Ready', 'Reconciling', 'Stalled', 'ArtifactInStorage', 'FetchFailed']);
    c = removeCondition(c, 'Stalled');
    expect(findCondition(c, 'Stalled')).to.equal(undefined);
    expect(c).to.have.length(4);
  });
});
