import { expect } from 'chai';
import { findCondition } from './conditions.ts';
import {
  JITTER_FRACTION,
  applyOutcome,
  failed,
  jitter,
  outcomeOf,
  progressStatus,
  queueDecision,
  stalled,
  superseded,
  waiting,
} from './outcome.ts';

const now = new Date('2026-01-01T00:00:00Z');

describe('outcome table', () => {
  it('success: Ready=True, no Reconciling/Stalled, observedGeneration stamped, requeue after interval ±5%', () => {
    const before = applyOutcome({}, { type: 'error', reason: 'GitOperationFailed', message: 'boom' }, 3, now);
    const s = applyOutcome(
      before,
      { type: 'success', reason: 'Succeeded', message: 'stored', requeueAfterMs: 60_000 },
      3,
      now,
    );
    expect(findCondition(s.conditions, 'Ready')).to.include({
      status: 'True',
      reason: 'Succeeded',
      observedGeneration: 3,
    });
    expect(findCondition(s.conditions, 'Reconciling')).to.equal(undefined);
    expect(findCondition(s.conditions, 'Stalled')).to.equal(undefined);
    expect(s.observedGeneration).to.equal(3);
    const d = queueDecision({ type: 'success', reason: 'Succeeded', message: '', requeueAfterMs: 60_000 }, () => 1);
    expect(d).to.deep.equal({ action: 'requeue-after', afterMs: 63_000 });
  });

  it('error: Ready=False with the step reason, Reconciling=True, generation not observed, backoff', () => {
    const o = outcomeOf(failed('GitOperationFailed', 'connection refused'));
    const s = applyOutcome({ observedGeneration: 1 }, o, 2, now);
    expect(findCondition(s.conditions, 'Ready')).to.include({
      status: 'False',
      reason: 'GitOperationFailed',
      message: 'connection refused',
    });
    expect(findCondition(s.conditions, 'Reconciling')).to.include({ status: 'True', reason: 'ProgressingWithRetry' });
    expect(s.observedGeneration).to.equal(1);
    expect(queueDecision(o)).to.deep.equal({ action: 'backoff' });
    expect(queueDecision(outcomeOf(failed('BuildFailed', 'x', 60_000)))).to.deep.equal(
      { action: 'backoff', maxMs: 60_000 },
      'capped by a retry interval',
    );
  });

  it('stalled: Ready=False and Stalled=True, generation observed, no requeue', () => {
    const o = outcomeOf(stalled('InvalidSpec', 'semver range "x" does not parse'));
    const s = applyOutcome({}, o, 4, now);
    expect(findCondition(s.conditions, 'Stalled')).to.include({ status: 'True', reason: 'InvalidSpec' });
    expect(findCondition(s.conditions, 'Reconciling')).to.equal(undefined);
    expect(s.observedGeneration).to.equal(4);
    expect(queueDecision(o)).to.deep.equal({ action: 'none' });
  });

  it('stalled with a recheck time: still Stalled, looked at again after that time', () => {
    const o = outcomeOf(stalled('RetriesExceeded', 'Failed to install after 1 attempt(s)', 600_000));
    expect(findCondition(applyOutcome({}, o, 1, now).conditions, 'Stalled')).to.include({ status: 'True' });
    expect(queueDecision(o)).to.deep.equal({ action: 'requeue-after', afterMs: 600_000 });
  });

  it('waiting: Ready=False with the waiting reason, requeue after the given time without jitter', () => {
    const o = outcomeOf(waiting('DependencyNotReady', "dependency 'x' is not ready", 30_000));
    const s = applyOutcome({}, o, 1, now);
    expect(findCondition(s.conditions, 'Ready')).to.include({ status: 'False', reason: 'DependencyNotReady' });
    expect(queueDecision(o)).to.deep.equal({ action: 'requeue-after', afterMs: 30_000 });
  });

  it('unclassified errors become error outcomes with the fallback reason', () => {
    expect(outcomeOf(new Error('x'), 'BuildFailed')).to.deep.equal({
      type: 'error',
      reason: 'BuildFailed',
      message: 'x',
    });
    expect(outcomeOf('plain')).to.include({ type: 'error', reason: 'ReconciliationFailed' });
  });

  it('jitter stays within ±5% and spreads values', () => {
    const values = Array.from({ length: 1000 }, () => jitter(100_000));
    expect(Math.min(...values)).to.be.at.least(100_000 * (1 - JITTER_FRACTION));
    expect(Math.max(...values)).to.be.at.most(100_000 * (1 + JITTER_FRACTION));
    expect(new Set(values).size).to.be.greaterThan(100);
    expect(jitter(100_000, () => 0)).to.equal(95_000);
    expect(jitter(100_000, () => 0.5)).to.equal(100_000);
  });

  it('superseded: Ready=False, Reconciling=True Progressing, generation not observed, nothing scheduled', () => {
    const o = outcomeOf(superseded('HealthCheckCanceled', 'New reconciliation triggered by GitRepository/ns/repo'));
    const s = applyOutcome({ observedGeneration: 1 }, o, 2, now);
    expect(findCondition(s.conditions, 'Ready')).to.include({ status: 'False', reason: 'HealthCheckCanceled' });
    expect(findCondition(s.conditions, 'Reconciling')).to.include({ status: 'True', reason: 'Progressing' });
    expect(s.observedGeneration).to.equal(1);
    expect(queueDecision(o)).to.deep.equal({ action: 'none' });
  });

  it('progress: Reconciling=True Progressing with the message, Ready=Unknown, Stalled gone', () => {
    const stalledBefore = applyOutcome({}, outcomeOf(stalled('InvalidSpec', 'x')), 1, now);
    const s = progressStatus(stalledBefore, 'Fetching manifests for revision main@sha1:ab', 2, now);
    expect(findCondition(s.conditions, 'Reconciling')).to.include({
      status: 'True',
      reason: 'Progressing',
      message: 'Fetching manifests for revision main@sha1:ab',
      observedGeneration: 2,
    });
    expect(findCondition(s.conditions, 'Ready')).to.include({ status: 'Unknown', reason: 'Progressing' });
    expect(findCondition(s.conditions, 'Stalled')).to.equal(undefined);
  });
});
