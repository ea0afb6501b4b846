import { expect } from 'chai';
import { FakeClock } from './clock.ts';
import { WorkQueue } from './queue.ts';
import { ExponentialFailureLimiter } from './rate-limiter.ts';

function newQueue(clock = new FakeClock()) {
  const counts = { adds: 0, retries: 0, depth: 0 };
  const q = new WorkQueue(clock, new ExponentialFailureLimiter(100, 1000), {
    added: () => counts.adds++,
    retried: () => counts.retries++,
    depth: (n) => (counts.depth = n),
    waited() {},
    worked() {},
  });
  return { q, clock, counts };
}

describe('WorkQueue', () => {
  it('dedupes keys that are waiting', async () => {
    const { q } = newQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).to.equal(2);
    expect(await q.get()).to.equal('a');
    expect(await q.get()).to.equal('b');
    expect(q.len()).to.equal(0);
  });

  it('puts a key first when asked, moving it forward if it waits already', async () => {
    const { q } = newQueue();
    for (const k of ['a', 'b', 'c']) q.add(k);
    q.add('c', true);
    q.add('d', true);
    q.add('b');
    expect(q.len()).to.equal(4);
    const order = [];
    for (let i = 0; i < 4; i++) order.push(await q.get());
    expect(order).to.deep.equal(['d', 'c', 'a', 'b']);
    // A key being processed is requeued once done, wherever `first` says.
    q.add('a', true);
    expect(q.len()).to.equal(0);
    q.done('a');
    expect(await q.get()).to.equal('a');
  });

  it('never hands a key being processed to a second worker, and merges adds into one requeue', async () => {
    const { q } = newQueue();
    q.add('a');
    const first = await q.get();
    q.add('a');
    q.add('a');
    expect(q.len()).to.equal(0, 'a is processing, so it must not be queued again yet');
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).to.equal(undefined);
    q.done(first!);
    await Promise.resolve();
    expect(second).to.equal('a');
    q.done('a');
    expect(q.len()).to.equal(0, 'the two adds during processing were merged into one');
  });

  it('a waiting worker gets a key as soon as it is added', async () => {
    const { q } = newQueue();
    const got = q.get();
    q.add('x');
    expect(await got).to.equal('x');
  });

  it('addAfter adds when the delay passes, keeping the sooner of two delays', () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 1000);
    q.addAfter('a', 300);
    q.addAfter('a', 5000);
    clock.advance(299);
    expect(q.len()).to.equal(0);
    clock.advance(1);
    expect(q.len()).to.equal(1);
    clock.advance(10_000);
    expect(q.len()).to.equal(1, 'the later delays were dropped');
  });

  it('addRateLimited backs off exponentially until forget', () => {
    const { q, clock, counts } = newQueue();
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.numRequeues('a')).to.equal(2);
    clock.advance(100);
    expect(q.len()).to.equal(1, 'the first retry came after 100ms; the 200ms one is dropped as later');
    q.forget('a');
    expect(q.numRequeues('a')).to.equal(0);
    expect(counts.retries).to.equal(2);
  });

  it('addRateLimited never waits longer than maxMs', async () => {
    const { q, clock } = newQueue();
    // Uncapped the delays would be 100, 200, 400, 800ms.
    for (const expected of [100, 200, 250, 250]) {
      q.addRateLimited('b', 250);
      clock.advance(expected - 1);
      expect(q.len()).to.equal(0);
      clock.advance(1);
      expect(q.len()).to.equal(1, `retried after ${expected}ms`);
      q.done((await q.get())!);
    }
  });

  it('shutDown releases waiting workers and waits for in-flight keys', async () => {
    const { q } = newQueue();
    q.add('a');
    const key = await q.get();
    const idle = q.get();
    let drained = false;
    const done = q.shutDown().then(() => (drained = true));
    expect(await idle).to.equal(undefined);
    await Promise.resolve();
    expect(drained).to.equal(false);
    q.done(key!);
    await done;
    expect(drained).to.equal(true);
    q.add('b');
    expect(q.len()).to.equal(0, 'no adds after shutdown');
  });

  it('reports depth and adds to its observer', async () => {
    const { q, counts } = newQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(counts).to.include({ adds: 2, depth: 2 });
    await q.get();
    expect(counts.depth).to.equal(1);
  });

  it('reports the work in progress: summed and longest, in seconds', async () => {
    const { q, clock } = newQueue();
    expect(q.inProgress()).to.deep.equal({ unfinishedSeconds: 0, longestSeconds: 0 });
    q.add('a');
    q.add('b');
    await q.get();
    clock.advance(3000);
    await q.get();
    clock.advance(1000);
    expect(q.inProgress()).to.deep.equal({ unfinishedSeconds: 5, longestSeconds: 4 });
    q.done('a');
    expect(q.inProgress()).to.deep.equal({ unfinishedSeconds: 1, longestSeconds: 1 });
  });

  it('drops a delayed add that has not fired', async () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 1000);
    q.cancelDelayed('a');
    clock.advance(2000);
    expect(q.len()).to.equal(0);
    q.addAfter('a', 500);
    clock.advance(500);
    expect(q.len()).to.equal(1);
  });
});
