import { expect } from 'chai';
import { flag, parseOptions, readArgs, usage, UsageError, type FlagGroup } from './options.ts';

const flags = {
  name: flag.string({ help: 'A name.' }),
  mode: flag.string({ default: 'a', oneOf: ['a', 'b'] as const, help: 'A mode.' }),
  'dry-run': flag.bool({ help: 'Do nothing.' }),
  'watch-all': flag.bool({ default: true, help: 'Watch everything.' }),
  workers: flag.int({ default: 4, min: 1, help: 'Workers.' }),
  'max-size': flag.bytes({ default: 1024, help: 'Bytes.' }),
  'requeue-after': flag.duration({ default: '30s', help: 'Delay.' }),
};
const group: FlagGroup<typeof flags> = { title: 'demo controller', named: true, flags };
const parse = (argv: string[]) => parseOptions(group, readArgs(argv, [group]));

describe('options', () => {
  it('gives typed defaults under camelCase names', () => {
    expect(parse([])).to.deep.equal({
      mode: 'a',
      dryRun: false,
      watchAll: true,
      workers: 4,
      maxSize: 1024,
      requeueAfter: 30_000,
    });
  });

  it('reads Go-style values and bare booleans', () => {
    const o = parse([
      '--name',
      'x',
      '-mode=b',
      '--dry-run',
      '--watch-all=false',
      '--workers=8',
      '--max-size=2Mi',
      '--requeue-after',
      '1m30s',
    ]);
    expect(o).to.deep.equal({
      name: 'x',
      mode: 'b',
      dryRun: true,
      watchAll: false,
      workers: 8,
      maxSize: 2 * 1024 * 1024,
      requeueAfter: 90_000,
    });
    expect(parse(['--workers=2', '--workers=3']).workers).to.equal(3);
  });

  it('names the flag and its group on a bad value', () => {
    expect(() => parse(['--requeue-after=abc'])).to.throw(
      'invalid --requeue-after="abc" (demo controller): expected a Go duration such as 30s, 5m or 1h30m',
    );
    expect(() => parse(['--workers=0'])).to.throw(
      'invalid --workers="0" (demo controller): expected a positive integer',
    );
    expect(() => parse(['--workers=1.5'])).to.throw(/expected a positive integer/);
    expect(() => parse(['--max-size=lots'])).to.throw(
      /invalid --max-size="lots" \(demo controller\): expected a number/,
    );
    expect(() => parse(['--dry-run=maybe'])).to.throw(/expected true or false/);
    expect(() => parse(['--mode=c'])).to.throw('invalid --mode="c" (demo controller): expected one of a, b');
    const general: FlagGroup<typeof flags> = { ...group, named: false };
    expect(() => parseOptions(general, readArgs(['--workers=zero'], [general]))).to.throw(
      'invalid --workers="zero": expected a positive integer',
    );
  });

  it('refuses what it cannot read as usage errors', () => {
    expect(() => parse(['--nope'])).to.throw(UsageError, 'unknown flag --nope');
    expect(() => parse(['--name'])).to.throw(UsageError, 'flag --name needs a value');
    expect(() => parse(['stray'])).to.throw(UsageError, 'unexpected argument "stray"');
  });

  it('refuses a flag declared by two groups, unless both share the one declaration', () => {
    const other = { ...group, title: 'other', flags: { name: flag.string({ help: 'another name' }) } };
    expect(() => readArgs([], [group, other])).to.throw('flag --name is declared twice');
    expect(readArgs(['--name=x'], [group, { ...group, title: 'other' }]).get('name')).to.equal('x');
  });

  it('lists the flags by group with kind and default', () => {
    const text = usage('demo', [group]);
    expect(text).to.include('Usage: demo [flags]\n\ndemo controller:\n  --name string\n      A name.\n');
    expect(text).to.include('  --mode string (default "a")\n      A mode. One of a, b.\n');
    expect(text).to.include('  --dry-run\n      Do nothing.\n');
    expect(text).to.include('  --watch-all (default true)\n');
    expect(text).to.include('  --workers int (default 4)\n');
    expect(text).to.include('  --requeue-after duration (default "30s")\n');
  });
});
