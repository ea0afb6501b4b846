import { expect } from 'chai';
import { formatDuration, parseDuration } from './duration.ts';

describe('durations', () => {
  it('parses Go durations', () => {
    expect(parseDuration('750ms')).to.equal(750);
    expect(parseDuration('30s')).to.equal(30_000);
    expect(parseDuration('1h30m')).to.equal(5_400_000);
    expect(parseDuration('1.5s')).to.equal(1500);
    expect(parseDuration('0')).to.equal(0);
  });

  it('rejects anything else with the value in the message', () => {
    for (const bad of ['', '10', '5 m', '1d', 'm5', '1m-']) {
      expect(() => parseDuration(bad), bad).to.throw(/invalid duration/);
    }
  });

  it('formats round values', () => {
    expect(formatDuration(3_600_000)).to.equal('1h');
    expect(formatDuration(120_000)).to.equal('2m');
    expect(formatDuration(750)).to.equal('750ms');
  });
});
