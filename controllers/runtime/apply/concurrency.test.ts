import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit } from './concurrency.ts';

describe('mapLimit', () => {
  it('keeps the order of the items and never exceeds the limit', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n, i) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(n);
      running--;
      return `${i}:${n}`;
    });
    expect(out).to.deep.equal(['0:5', '1:1', '2:4', '3:2', '4:3']);
    expect(peak).to.equal(2);
  });

  it('handles an empty list and rejects with the first failure', async () => {
    expect(await mapLimit([], 4, async () => 1)).to.deep.equal([]);
    let caught: unknown;
    await mapLimit([1, 2], 4, async (n) => {
      if (n === 2) throw new Error('boom');
      return n;
    }).catch((e: unknown) => (caught = e));
    expect((caught as Error).message).to.equal('boom');
  });
});
