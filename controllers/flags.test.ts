import { expect } from 'chai';
import { parseFlags } from './flags.ts';
import { selectControllers } from './registry.ts';

describe('tide-controller flags', () => {
  it('has Flux defaults', () => {
    const f = parseFlags([]);
    expect(f).to.include({
      controllers: 'all',
      'metrics-addr': ':8080',
      'health-addr': ':9440',
      'watch-all-namespaces': 'true',
      'log-encoding': 'json',
      'min-retry-delay': '750ms',
      'max-retry-delay': '15m',
      'enable-leader-election': 'false',
    });
  });

  it('accepts Go-style booleans and values', () => {
    const f = parseFlags([
      '--enable-leader-election',
      '--watch-all-namespaces=false',
      '--concurrent',
      '8',
      '--log-level=debug',
    ]);
    expect(f).to.include({
      'enable-leader-election': 'true',
      'watch-all-namespaces': 'false',
      concurrent: '8',
      'log-level': 'debug',
    });
  });

  it('rejects unknown flags and bad booleans', () => {
    expect(() => parseFlags(['--nope'])).to.throw(/nope/);
    expect(() => parseFlags(['--enable-leader-election=maybe'])).to.throw(/expected true or false/);
  });

  it('rejects unknown controller names', () => {
    expect(() => selectControllers('source,foo')).to.throw(/unknown foo/);
  });
});
