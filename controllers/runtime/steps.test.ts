import { expect } from 'chai';
import { findCondition, type Condition } from './conditions.ts';
import { failed, ReconcileError, stalled } from './outcome.ts';
import { runSteps, type Recipe } from './steps.ts';

const now = () => new Date('2026-01-01T00:00:00Z');

class AuthError extends Error {}

function recipe(ran: string[], failAt?: { step: string; throws: unknown }): Recipe<{ n: number }> {
  const step = (name: string, condition?: string) => ({
    name,
    reason: `${name[0]!.toUpperCase()}${name.slice(1)}Failed`,
    ...(condition ? { condition } : {}),
    run: (state: { n: number }) => {
      ran.push(name);
      if (failAt?.step === name) throw failAt.throws;
      state.n++;
    },
  });
  return {
    steps: [step('credentials', 'FetchFailed'), step('fetch', 'FetchFailed'), step('store', 'StorageOperationFailed')],
    success: (s) => ({ type: 'success', reason: 'Succeeded', message: `${s.n} steps` }),
    classify: (err) => (err instanceof AuthError ? failed('AuthenticationFailed', err.message) : undefined),
  };
}

const stale = (type: string): Condition => ({
  type,
  status: 'True',
  reason: 'Old',
  message: 'from the last reconcile',
  lastTransitionTime: '2025-01-01T00:00:00Z',
});

describe('step runner', () => {
  it('runs every step in order and returns the recipe success, clearing each passed step condition', async () => {
    const ran: string[] = [];
    const status = { conditions: [stale('FetchFailed'), stale('StorageOperationFailed')] };
    const outcome = await runSteps(recipe(ran), { n: 0 }, { status, now });
    expect(ran).to.deep.equal(['credentials', 'fetch', 'store']);
    expect(outcome).to.deep.equal({ type: 'success', reason: 'Succeeded', message: '3 steps' });
    expect(status.conditions).to.deep.equal([]);
  });

  it('stops at the first failure, names the step, and marks its condition with the reason', async () => {
    const ran: string[] = [];
    const status: { conditions?: Condition[] } = {};
    const outcome = await runSteps(
      recipe(ran, { step: 'fetch', throws: new Error('connection refused') }),
      { n: 0 },
      { status, now },
      4,
    );
    expect(ran).to.deep.equal(['credentials', 'fetch']);
    expect(outcome).to.deep.equal({
      type: 'error',
      reason: 'FetchFailed',
      message: 'connection refused',
      step: 'fetch',
    });
    expect(findCondition(status.conditions, 'FetchFailed')).to.include({
      status: 'True',
      reason: 'FetchFailed',
      message: 'connection refused',
      observedGeneration: 4,
    });
  });

  it('maps domain errors through classify, and anything else thrown to the step reason', async () => {
    const classified = await runSteps(
      recipe([], { step: 'credentials', throws: new AuthError('wrong password') }),
      { n: 0 },
      { status: {}, now },
    );
    expect(classified).to.include({ type: 'error', reason: 'AuthenticationFailed', step: 'credentials' });
    const odd = await runSteps(recipe([], { step: 'store', throws: 42 }), { n: 0 }, { status: {}, now });
    expect(odd).to.include({ type: 'error', reason: 'StoreFailed', message: '42', step: 'store' });
  });

  it('passes a thrown outcome through as it is; a stalled step leaves its condition alone', async () => {
    const status: { conditions?: Condition[] } = {};
    const outcome = await runSteps(
      recipe([], { step: 'fetch', throws: stalled('InvalidSpec', 'bad ref') }),
      { n: 0 },
      { status, now },
    );
    expect(outcome).to.deep.equal({ type: 'stalled', reason: 'InvalidSpec', message: 'bad ref', step: 'fetch' });
    expect(findCondition(status.conditions, 'FetchFailed')).to.equal(undefined);
    expect(new ReconcileError('waiting', 'X', 'y', 5).requeueAfterMs).to.equal(5);
  });
});
