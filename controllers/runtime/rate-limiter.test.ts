import { expect } from 'chai';
import { FakeClock } from './clock.ts';
import {
  ExponentialFailureLimiter,
  MaxOfLimiter,
  TokenBucketLimiter,
  defaultControllerRateLimiter,
} from './rate-limiter.ts';

describe('rate limiters', () => {
  it('doubles per key from the base up to the cap, independently per key', () => {
    const l = new ExponentialFailureLimiter(750, 15 * 60_000);
    const waits = Array.from({ length: 14 }, () => l.when('a'));
    expect(waits.slice(0, 5)).to.deep.equal([750, 1500, 3000, 6000, 12000]);
    expect(waits[10]).to.equal(750 * 1024);
    expect(waits[11]).to.equal(15 * 60_000);
    expect(waits[13]).to.equal(15 * 60_000);
    expect(l.when('b')).to.equal(750);
    expect(l.retries('a')).to.equal(14);
  });

  it('starts over after forget', () => {
    const l = new ExponentialFailureLimiter(750, 15 * 60_000);
    l.when('a');
    l.when('a');
    l.forget('a');
    expect(l.retries('a')).to.equal(0);
    expect(l.when('a')).to.equal(750);
  });

  it('token bucket allows a burst, then spaces requests at qps', () => {
    const clock = new FakeClock();
    const b = new TokenBucketLimiter(10, 3, clock);
    expect([b.when(), b.when(), b.when()]).to.deep.equal([0, 0, 0]);
    expect(b.when()).to.be.closeTo(100, 1e-9);
    expect(b.when()).to.be.closeTo(200, 1e-9);
    clock.advance(1000);
    expect(b.when()).to.equal(0);
  });

  it('the controller limiter waits for the longer of both', () => {
    const clock = new FakeClock();
    const max = new MaxOfLimiter(new ExponentialFailureLimiter(10, 1000), new TokenBucketLimiter(1, 1, clock));
    expect(max.when('a')).to.equal(10);
    expect(max.when('a')).to.equal(1000);
    const def = defaultControllerRateLimiter(clock, { minRetryDelayMs: 100, maxRetryDelayMs: 400 });
    expect([def.when('x'), def.when('x'), def.when('x'), def.when('x')]).to.deep.equal([100, 200, 400, 400]);
  });
});
