import { expect } from 'chai';
import { memoryEnv, memoryFlags, userSizedHeap } from './memory.ts';

const GiB = 1024 * 1024 * 1024;
const machine = 24 * GiB;

describe('memory defaults', () => {
  it('a small young generation, and no old-generation limit without a memory limit', () => {
    expect(memoryFlags({ execArgv: [], totalMemory: machine })).to.deep.equal(['--max-semi-space-size=8']);
    expect(memoryFlags({ execArgv: [], memoryLimit: 0, totalMemory: machine })).to.deep.equal([
      '--max-semi-space-size=8',
    ]);
  });

  it('an old-generation limit of 75% of a container memory limit', () => {
    expect(memoryFlags({ execArgv: [], memoryLimit: 512 * 1024 * 1024, totalMemory: machine })).to.deep.equal([
      '--max-semi-space-size=8',
      '--max-old-space-size=384',
    ]);
    expect(memoryFlags({ execArgv: ['--inspect'], memoryLimit: 1.5 * GiB, totalMemory: machine })).to.deep.equal([
      '--max-semi-space-size=8',
      '--max-old-space-size=1152',
    ]);
  });

  it('no limit from a "limit" at least as large as the machine (cgroup v1 unlimited, 2^64)', () => {
    expect(memoryFlags({ execArgv: [], memoryLimit: 2 ** 64, totalMemory: machine })).to.deep.equal([
      '--max-semi-space-size=8',
    ]);
    expect(memoryFlags({ execArgv: [], memoryLimit: machine, totalMemory: machine })).to.deep.equal([
      '--max-semi-space-size=8',
    ]);
  });

  it('nothing when the user sized the heap, on the command line or in NODE_OPTIONS', () => {
    const limit = { memoryLimit: GiB, totalMemory: machine };
    expect(memoryFlags({ execArgv: ['--max-old-space-size=2048'], ...limit })).to.deep.equal([]);
    expect(memoryFlags({ execArgv: ['--max_semi_space_size=32'], ...limit })).to.deep.equal([]);
    expect(memoryFlags({ execArgv: [], nodeOptions: '--enable-source-maps --max-old-space-size=900', ...limit })).to.be
      .empty;
    expect(memoryFlags({ execArgv: ['--max-heap-size=512'], ...limit })).to.deep.equal([]);
  });

  it('tells heap flags from others', () => {
    expect(userSizedHeap(['--import=x.mjs', '--inspect'], '--enable-source-maps')).to.equal(false);
    expect(userSizedHeap([], '  --max-old-space-size=100  ')).to.equal(true);
    expect(userSizedHeap(['--max-old-space-size-x=1'])).to.equal(false);
    expect(userSizedHeap(['--min-semi-space-size=1'])).to.equal(true);
    expect(userSizedHeap(['--max-old-space-size-percentage=50'])).to.equal(true);
    expect(userSizedHeap(['--max-old-space-size', '300'])).to.equal(true);
  });

  it('limits glibc malloc arenas in the restarted process unless the user chose, and marks it', () => {
    expect(memoryEnv({ PATH: '/bin' })).to.deep.equal({
      PATH: '/bin',
      MALLOC_ARENA_MAX: '2',
      TIDE_NODE_DEFAULTS: 'applied',
    });
    expect(memoryEnv({ MALLOC_ARENA_MAX: '8' }).MALLOC_ARENA_MAX).to.equal('8');
  });
});
