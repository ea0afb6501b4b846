import { expect } from 'chai';
import { digestOf, formatDuration, HISTORY_LENGTH, recordSnapshot } from './history.ts';

describe('status.history', () => {
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

  it('adds an entry per digest and result, newest first, and counts repeats in place', () => {
    let h = recordSnapshot(undefined, {
      digest: 'sha256:a',
      status: 'ReconciliationSucceeded',
      at: at(1),
      durationMs: 1500,
      metadata: { revision: 'main@sha1:1' },
    });
    h = recordSnapshot(h, { digest: 'sha256:b', status: 'HealthCheckFailed', at: at(2), durationMs: 250 });
    h = recordSnapshot(h, {
      digest: 'sha256:a',
      status: 'ReconciliationSucceeded',
      at: at(3),
      durationMs: 2000,
      metadata: { revision: 'main@sha1:1' },
    });
    expect(h).to.deep.equal([
      {
        digest: 'sha256:a',
        firstReconciled: '2026-01-01T00:00:01Z',
        lastReconciled: '2026-01-01T00:00:03Z',
        lastReconciledDuration: '2s',
        lastReconciledStatus: 'ReconciliationSucceeded',
        totalReconciliations: 2,
        metadata: { revision: 'main@sha1:1' },
      },
      {
        digest: 'sha256:b',
        firstReconciled: '2026-01-01T00:00:02Z',
        lastReconciled: '2026-01-01T00:00:02Z',
        lastReconciledDuration: '250ms',
        lastReconciledStatus: 'HealthCheckFailed',
        totalReconciliations: 1,
      },
    ]);
    // The same manifests with another result are another entry.
    h = recordSnapshot(h, { digest: 'sha256:a', status: 'PruneFailed', at: at(4), durationMs: 10 });
    expect(h.map((s) => `${s.digest} ${s.lastReconciledStatus}`)).to.deep.equal([
      'sha256:a PruneFailed',
      'sha256:a ReconciliationSucceeded',
      'sha256:b HealthCheckFailed',
    ]);
  });

  it(`keeps the last ${HISTORY_LENGTH}`, () => {
    let h = recordSnapshot(undefined, { digest: 'sha256:0', status: 'x', at: at(0), durationMs: 1 });
    for (let i = 1; i < 8; i++) h = recordSnapshot(h, { digest: `sha256:${i}`, status: 'x', at: at(i), durationMs: 1 });
    expect(h.map((s) => s.digest)).to.deep.equal(['sha256:7', 'sha256:6', 'sha256:5', 'sha256:4', 'sha256:3']);
  });

  it('digests objects in order and formats durations as Go does', () => {
    // Known values, computed outside this code: `printf '{"a":1}\n{"b":2}\n' | sha256sum` and of nothing.
    expect(digestOf([{ a: 1 }, { b: 2 }])).to.equal(
      'sha256:3881dc2ee848fe04d776737c86afbc783e482e7c5be6431d3aab36fa8fa2c928',
    );
    expect(digestOf([])).to.equal('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(digestOf([{ a: 1 }, { b: 2 }])).to.not.equal(digestOf([{ b: 2 }, { a: 1 }]));
    // Objects are separated: two objects are not the digest of one object holding both.
    expect(digestOf([{ a: 1 }, { b: 2 }])).to.not.equal(digestOf([{ a: 1, b: 2 }]));
    expect([0, 999, 1000, 1500, 61_250, 3_723_000].map(formatDuration)).to.deep.equal([
      '0ms',
      '999ms',
      '1s',
      '1.5s',
      '1m1.25s',
      '1h2m3s',
    ]);
  });
});
